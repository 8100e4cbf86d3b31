//! CLI wiring only: each subcommand lives in its own module.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    }
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
