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
    /// Run the operator: reconcile PasscodeResets and WorkProfilePasscodePolicies.
    Run(Box<RunArgs>),
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

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file; without it the in-cluster configuration (or ~/.kube/config) is used.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Google credentials file (JSON), its `type` choosing how tokens are got: service_account (a
    /// key), external_account (Workload Identity Federation, optionally impersonating a service
    /// account) or impersonated_service_account. Default: GOOGLE_APPLICATION_CREDENTIALS; with
    /// neither, the metadata server (GKE Workload Identity; GCE_METADATA_HOST is honoured).
    #[arg(long, env = "AMAPI_CREDENTIALS", value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// AMAPI base URL (the simulator's for dry runs).
    #[arg(long, env = "AMAPI_BASE_URL", default_value = passcode_operator::amapi::DEFAULT_BASE_URL)]
    amapi_base_url: String,
    /// OAuth token endpoint of a service-account key file; defaults to the key file's token_uri.
    #[arg(long, env = "AMAPI_TOKEN_URI")]
    token_uri: Option<String>,
    /// Enterprise ids the operator may act on, comma-separated; empty means any.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_ENTERPRISES",
        value_delimiter = ',',
        default_value = ""
    )]
    enterprises: Vec<String>,
    /// Average AMAPI requests per second for the whole process (AMAPI's default project quota is
    /// 1,000 per 100 s).
    #[arg(long, env = "PASSCODE_OPERATOR_AMAPI_RATE", default_value_t = 8.0)]
    amapi_rate: f64,
    /// The share of the AMAPI rate that follow-up polls of commands pending for over 10 s may
    /// use (0.01 to 1). They go only when no call that moves a reset forward is waiting, so fresh
    /// resets keep their latency however many commands are pending.
    #[arg(long, env = "PASSCODE_OPERATOR_POLL_SHARE", default_value_t = 0.25)]
    poll_share: f64,
    /// Pull AMAPI COMMAND notifications from this Pub/Sub subscription
    /// (`projects/PROJECT/subscriptions/SUBSCRIPTION`): completion is pushed, and once
    /// notifications about an enterprise's commands arrive, its pending commands are polled only
    /// as a safety net (at 30 s, then every 40 minutes). The identity needs
    /// roles/pubsub.subscriber on it.
    #[arg(long, env = "PASSCODE_OPERATOR_PUBSUB_SUBSCRIPTION")]
    pubsub_subscription: Option<String>,
    /// Pub/Sub's base URL (the simulator serves it too).
    #[arg(long, env = "PASSCODE_OPERATOR_PUBSUB_URL", default_value = passcode_operator::amapi::pubsub::DEFAULT_BASE_URL)]
    pubsub_url: String,
    /// Resources reconciled at once.
    #[arg(long, env = "PASSCODE_OPERATOR_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PASSCODE_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Elect a leader through a Lease so only one replica acts.
    #[arg(long, env = "PASSCODE_OPERATOR_LEADER_ELECTION", default_value_t = false, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// The operator's own namespace: the leader Lease and the records of resets acted on.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "passcode-operator-system"
    )]
    operator_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_LEASE",
        default_value = "passcode-operator"
    )]
    lease_name: String,
    /// This replica's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How often policies are compared with AMAPI (drift correction).
    #[arg(long, env = "PASSCODE_OPERATOR_POLICY_RESYNC", default_value = "300s", value_parser = parse_duration)]
    policy_resync: std::time::Duration,
    /// How long after a claim its command is looked for on the device's operations. When AMAPI's
    /// answer leaves it open whether a command was created (5xx, a cut connection, a crash), the
    /// reset looks this long, adopts the claim's command if it is listed, and otherwise ends
    /// OutcomeUnknown (never a second command). Attempts are sent only in the first third, each
    /// taking at most a third.
    #[arg(long, env = "PASSCODE_OPERATOR_ADOPTION_WINDOW", default_value = "180s", value_parser = parse_window)]
    adoption_window: std::time::Duration,
    /// Act on PasscodeResets in this namespace only (default: every namespace).
    #[arg(long, env = "PASSCODE_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// Serve the admission webhook (HTTPS) on this address, e.g. 0.0.0.0:8443: it records who
    /// created each reset and who approved it. Off unless given.
    #[arg(long, env = "PASSCODE_OPERATOR_WEBHOOK_LISTEN", value_name = "ADDR")]
    webhook_listen: Option<SocketAddr>,
    /// Register the webhook at this https URL (the operator outside the cluster); default: the
    /// Service named by --webhook-service in the operator's namespace, port 443.
    #[arg(long, env = "PASSCODE_OPERATOR_WEBHOOK_URL", value_name = "URL")]
    webhook_url: Option<String>,
    /// The Service in front of the webhook.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_WEBHOOK_SERVICE",
        default_value = "passcode-operator-webhook"
    )]
    webhook_service: String,
    /// The name of the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration the
    /// operator keeps current (caBundle, where to call).
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_WEBHOOK_CONFIGURATION",
        default_value = "passcode-operator"
    )]
    webhook_configuration: String,
    /// The Secret in the operator's namespace that holds the webhook certificate and seal key.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_WEBHOOK_SECRET",
        default_value = "passcode-operator-webhook"
    )]
    webhook_secret: String,
    /// Restrict the webhooks to namespaces with these labels (`key=value,...`); default: as the
    /// configurations were applied.
    #[arg(long, env = "PASSCODE_OPERATOR_WEBHOOK_NAMESPACE_SELECTOR", value_parser = parse_labels)]
    webhook_namespace_selector: Option<std::collections::BTreeMap<String, String>>,
    /// The operator's ServiceAccount (in its namespace): the one identity that writes
    /// status.requester and status.approval.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_SERVICE_ACCOUNT",
        default_value = "passcode-operator"
    )]
    service_account: String,
    /// What to do with a reset whose requester the webhook did not record (created before it
    /// was registered): refuse it (Failed/RequesterUnknown) or run it marked unknown. refuse
    /// needs --webhook-listen.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_UNKNOWN_REQUESTER",
        value_enum,
        default_value = "run"
    )]
    unknown_requester: UnknownRequesterArg,
    /// Refuse resets that no PasscodeResetScope covers, also when there are no scopes at all
    /// (by default, with no scopes only --enterprises applies).
    #[arg(long, env = "PASSCODE_OPERATOR_REQUIRE_SCOPES", default_value_t = false, action = clap::ArgAction::Set)]
    require_scopes: bool,
    /// Only PasscodeResetScopes matching this label selector apply (several operators in one
    /// cluster).
    #[arg(long, env = "PASSCODE_OPERATOR_SCOPE_SELECTOR")]
    scope_selector: Option<String>,
    /// Log format.
    #[arg(
        long,
        env = "PASSCODE_OPERATOR_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    log_format: passcode_operator::telemetry::LogFormat,
    /// Log level or filter, e.g. info or passcode_operator=debug.
    #[arg(long, env = "PASSCODE_OPERATOR_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum UnknownRequesterArg {
    Refuse,
    Run,
}

fn parse_labels(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(format!("{pair:?} is not key=value")),
        })
        .collect()
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    passcode_operator::api::validation::parse_duration_secs(text)
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is not a duration like 30s, 5m or 1h"))
}

fn parse_window(text: &str) -> Result<std::time::Duration, String> {
    let window = parse_duration(text)?;
    if window < std::time::Duration::from_secs(3) {
        return Err(
            "the adoption window must be at least 3s (180s unless AMAPI is simulated)".into(),
        );
    }
    Ok(window)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(*args),
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

fn run(args: RunArgs) -> ExitCode {
    if let Err(e) = passcode_operator::telemetry::init(args.log_format, &args.log_level) {
        eprintln!("passcode-operator run: {e}");
        return ExitCode::from(2);
    }
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let unknown_requester = match args.unknown_requester {
        UnknownRequesterArg::Refuse => passcode_operator::reconcile::UnknownRequester::Refuse,
        UnknownRequesterArg::Run => passcode_operator::reconcile::UnknownRequester::Run,
    };
    if unknown_requester == passcode_operator::reconcile::UnknownRequester::Refuse
        && args.webhook_listen.is_none()
    {
        eprintln!(
            "passcode-operator run: --unknown-requester refuse needs --webhook-listen: without the webhook no requester is ever recorded, so every reset would be refused"
        );
        return ExitCode::from(2);
    }
    let webhook = args
        .webhook_listen
        .map(|listen| passcode_operator::admission::WebhookConfig {
            listen,
            endpoint: match args.webhook_url.clone().filter(|u| !u.is_empty()) {
                Some(url) => passcode_operator::admission::Endpoint::Url(url),
                None => passcode_operator::admission::Endpoint::Service {
                    name: args.webhook_service.clone(),
                },
            },
            configuration: args.webhook_configuration.clone(),
            namespace_selector: args.webhook_namespace_selector.clone(),
            secret: args.webhook_secret.clone(),
            operator_namespace: args.operator_namespace.clone(),
            operator_username: format!(
                "system:serviceaccount:{}:{}",
                args.operator_namespace, args.service_account
            ),
            check_every: std::time::Duration::from_secs(600),
        });
    let config = passcode_operator::controller::RunConfig {
        kubeconfig: args.kubeconfig,
        credentials: args
            .credentials
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| {
                std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
            }),
        amapi_base_url: args.amapi_base_url,
        token_uri: args.token_uri,
        enterprises: args
            .enterprises
            .into_iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        amapi_rate: args.amapi_rate,
        poll_share: args.poll_share,
        pubsub_subscription: args.pubsub_subscription.filter(|s| !s.is_empty()),
        pubsub_url: args.pubsub_url,
        concurrency: args.concurrency.max(1),
        listen: args.listen,
        leader_election: args.leader_election,
        operator_namespace: args.operator_namespace,
        lease_name: args.lease_name,
        identity,
        policy_resync: args.policy_resync,
        adoption_window: args.adoption_window,
        namespace: args.namespace.filter(|n| !n.is_empty()),
        webhook,
        unknown_requester,
        require_scopes: args.require_scopes,
        scope_selector: args.scope_selector.filter(|s| !s.is_empty()),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("passcode-operator run: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(passcode_operator::controller::run(
        config,
        shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot run");
            eprintln!("passcode-operator run: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}
