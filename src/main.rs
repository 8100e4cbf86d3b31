//! CLI wiring only: each subcommand lives in its own module.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};
use passcode_operator::{api, check};

#[derive(Parser)]
#[command(
    name = "passcode-operator",
    version,
    about = "Reset Android passcodes through the Android Management API, declaratively and exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print both CustomResourceDefinitions as YAML.
    Crds,
    /// Judge a passcode read from stdin against requirements; exit 0 when it passes, 1 when not.
    Check {
        /// A WorkProfilePasscodePolicy manifest or a bare requirements mapping (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        requirements: Option<PathBuf>,
        /// The device's Android API level (34 = Android 14 applies AMAPI's 6-digit PIN rule).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        api_level: Option<u32>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: check::Output,
    },
    /// Serve a simulated Android Management API (and Google's token endpoint) for a fleet of
    /// simulated devices, until SIGINT or SIGTERM.
    Simulate {
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
        listen: SocketAddr,
        /// The fleet file (see examples/fleet.yaml).
        #[arg(long, value_name = "FILE")]
        fleet: PathBuf,
        /// Write the service-account key file for the simulator here (mode 0600); a key already
        /// in that file is reused, so clients keep working across restarts.
        #[arg(long, value_name = "FILE")]
        write_credentials: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", api::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Check {
            requirements,
            api_level,
            output,
        } => match run_check(requirements, api_level, output) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("passcode-operator check: {e}");
                ExitCode::from(2)
            }
        },
        Command::Simulate {
            listen,
            fleet,
            write_credentials,
        } => match run_simulator(listen, fleet, write_credentials) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("passcode-operator simulate: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_simulator(
    listen: SocketAddr,
    fleet: PathBuf,
    credentials_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let fleet = Fleet::load(&fleet).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let simulator = Simulator::start(SimulatorConfig {
            listen,
            fleet,
            credentials_path,
        })
        .await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}/", simulator.local_addr())?;
        stdout.flush()?;
        drop(stdout);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        simulator.shutdown().await;
        Ok(())
    })
}

fn run_check(
    requirements: Option<PathBuf>,
    api_level: Option<u32>,
    output: check::Output,
) -> Result<bool, check::CheckError> {
    let requirements = requirements
        .as_deref()
        .map(check::load_requirements)
        .transpose()?;
    // The passcode only ever comes from stdin: never from arguments or the environment, which
    // other users and process listings can see.
    let input = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Passcode: ")
            .map(String::into_bytes)
            .map_err(check::CheckError::Stdin)?
    } else {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(check::CheckError::Stdin)?;
        buf
    };
    check::report(
        input,
        requirements.as_ref(),
        api_level,
        output,
        &mut std::io::stdout().lock(),
    )
}
