//! `kubectl passcode`: the kubectl plugin for the help desk (see `passcode_operator::plugin`).
//! CLI wiring only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use passcode_operator::api::validation::parse_duration_secs;
use passcode_operator::plugin::commands::{self, ResetArgs, Stop};
use passcode_operator::plugin::{Output, cluster, exit};

#[derive(Parser)]
#[command(
    name = "kubectl passcode",
    bin_name = "kubectl passcode",
    version,
    about = "Reset Android passcodes from kubectl: a live checklist, the reset followed to its end, no passcode left behind"
)]
struct Cli {
    /// The namespace (default: the context's).
    #[arg(short, long, global = true, value_name = "NS")]
    namespace: Option<String>,
    /// The kubeconfig context (default: the current one; KUBECONFIG is honoured).
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    /// Output format: text for people, json for scripts (one document on stdout).
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reset a device's passcode: type it against the checklist (or --generate), send, follow to
    /// the end; exit 0 on Succeeded, 1 on Failed.
    Reset {
        /// The AMAPI device name, enterprises/ENTERPRISE/devices/DEVICE.
        device: String,
        /// Lock the work profile (fully managed: the device) right after (LOCK_NOW).
        #[arg(long)]
        lock: bool,
        /// No other admin may change the passcode until the user has entered it (REQUIRE_ENTRY).
        #[arg(long, conflicts_with = "clear")]
        require_entry: bool,
        /// How long the device has to act, such as 30m or 1h30m (1m to 168h; default 10m).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Clear the passcode instead (only when no requirement asks for one).
        #[arg(long, conflicts_with = "generate")]
        clear: bool,
        /// Make a passcode that meets the requirements and is easy to read out; shown once.
        #[arg(long)]
        generate: bool,
        /// Requirements file (a WorkProfilePasscodePolicy or a bare mapping), merged with those
        /// the cluster knows for the device.
        #[arg(long, value_name = "FILE")]
        requirements: Option<PathBuf>,
        /// Stop following after this long (the reset goes on), such as 15m.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
    },
    /// Show a reset (default: the newest in the namespace): phase, reason, what to do, checklist.
    Status { name: Option<String> },
    /// Follow a reset to its end; exit 0 on Succeeded, 1 on Failed. Deletes the Secret the
    /// plugin made for it.
    Wait {
        name: String,
        /// Stop following after this long, such as 15m.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
    },
    /// The resets: name, device, phase, reason, requester, age.
    List {
        /// Of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// The checklist alone: judge a passcode (typed, or from stdin) without sending anything;
    /// exit 0 when it passes, 1 when not.
    Check {
        /// Use the requirements the cluster knows for this device.
        device: Option<String>,
        /// Requirements file (a WorkProfilePasscodePolicy or a bare mapping).
        #[arg(long, value_name = "FILE")]
        requirements: Option<PathBuf>,
        /// The device's Android API level, when not known from the cluster.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        api_level: Option<u32>,
    },
    // approve/deny NAME come with approval (issue 13): they belong here, as their own variants,
    // patching the reset's approval through the API server like any other client.
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration_secs(text)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text}: hours, minutes and seconds such as 15m or 1h30m"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    let connect = || cluster::connect(cli.context.clone(), cli.namespace.clone());
    let result: Result<u8, Stop> = async {
        let target = match &cli.command {
            // `check` without a device needs no cluster.
            Command::Check { device: None, .. } => None,
            _ => Some(
                connect()
                    .await
                    .map_err(|e| Stop(exit::TROUBLE, format!("cannot reach the cluster: {e}")))?,
            ),
        };
        let t = || target.as_ref().expect("connected");
        match cli.command {
            Command::Reset {
                device,
                lock,
                require_entry,
                expires,
                clear,
                generate,
                requirements,
                timeout,
            } => {
                commands::reset(
                    t(),
                    ResetArgs {
                        device,
                        lock,
                        require_entry,
                        expires,
                        clear,
                        generate,
                        requirements,
                        output,
                        timeout,
                    },
                )
                .await
            }
            Command::Status { name } => commands::status(t(), name.as_deref(), output).await,
            Command::Wait { name, timeout } => commands::wait(t(), &name, output, timeout).await,
            Command::List { all_namespaces } => commands::list(t(), all_namespaces, output).await,
            Command::Check {
                device,
                requirements,
                api_level,
            } => {
                commands::check(
                    target.as_ref(),
                    device.as_deref(),
                    requirements.as_ref(),
                    api_level,
                    output,
                )
                .await
            }
        }
    }
    .await;
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Stop(code, message)) => {
            eprintln!("kubectl passcode: {message}");
            ExitCode::from(code)
        }
    }
}
