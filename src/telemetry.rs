//! Logging: JSON (for log pipelines) or text, with a level filter. Spans carry the resource's
//! namespace and name; nothing anywhere carries the passcode.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Targets capped at info because their debug output carries tokens or keys.
const QUIET: &[&str] = &[
    "yup_oauth2=info",
    "google_cloud_auth=info",
    "hyper_util=info",
    "reqwest=info",
];

/// Installs the global subscriber. `level` is a tracing filter such as `info` or
/// `passcode_operator=debug,kube=info`.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let mut filter =
        EnvFilter::try_new(level).map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    // The auth libraries log whole token requests and responses at debug: never below info,
    // whatever the level asked for.
    for quiet in QUIET {
        filter = filter.add_directive(quiet.parse().expect("a valid directive"));
    }
    // Colour only on a terminal: escape codes in a file or a pipe are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}
