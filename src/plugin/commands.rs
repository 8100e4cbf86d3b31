//! Each subcommand's flow. Text goes to stdout; with `-o json` stdout carries exactly one JSON
//! document and the progress lines go to stderr.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::cluster::Target;
use super::exit;
use super::requirements::{self, Known};
use super::summary::{Summary, table};
use super::{Output, entry, spoken};
use crate::api::PasscodeResetSpec;
use crate::api::validation::{
    MAX_EXPIRES_AFTER_SECS, MIN_EXPIRES_AFTER_SECS, device_enterprise, parse_duration_secs,
};
use crate::passcode::{Passcode, generate, judge};

/// An error with the exit code it ends the command with. Never carries the passcode.
#[derive(Debug)]
pub struct Stop(pub u8, pub String);

fn usage(message: impl Into<String>) -> Stop {
    Stop(exit::USAGE, message.into())
}

fn trouble(e: impl std::fmt::Display) -> Stop {
    Stop(exit::TROUBLE, e.to_string())
}

/// What `reset` was asked to do.
pub struct ResetArgs {
    pub device: String,
    pub lock: bool,
    pub require_entry: bool,
    pub expires: Option<String>,
    pub clear: bool,
    pub generate: bool,
    pub requirements: Option<PathBuf>,
    pub output: Output,
    pub timeout: Option<Duration>,
}

/// Where progress goes: stdout for text, stderr when stdout carries JSON.
fn progress(output: Output) -> Box<dyn Write> {
    match output {
        Output::Text => Box::new(std::io::stdout()),
        Output::Json => Box::new(std::io::stderr()),
    }
}

fn clock() -> String {
    jiff::Zoned::now().strftime("%H:%M:%S").to_string()
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// The requirements for `device`: the cluster's knowledge (when a device is named), plus a file.
async fn known_for(
    target: Option<&Target>,
    device: Option<&str>,
    file: Option<&PathBuf>,
    api_level: Option<u32>,
) -> Result<Known, Stop> {
    let file = match file {
        Some(path) => Some((
            path.display().to_string(),
            crate::check::load_requirements(path).map_err(|e| usage(e.to_string()))?,
        )),
        None => None,
    };
    let (reported, policies) = match (target, device) {
        (Some(t), Some(d)) => {
            // The namespace's resets first; a help desk usually works in one.
            let resets = t.list(false).await.map_err(trouble)?;
            (requirements::reported(d, &resets), t.policies().await)
        }
        _ => (None, Vec::new()),
    };
    Ok(requirements::known(
        reported.as_ref(),
        &policies,
        file.as_ref().map(|(p, r)| (p.as_str(), r)),
        api_level,
    ))
}

/// Reads the passcode: typed against the checklist on a terminal, else all of stdin (one trailing
/// newline stripped).
fn read_passcode(header: &str, known: &Known) -> Result<Passcode, Stop> {
    if std::io::stdin().is_terminal() {
        return entry::read(header, known)
            .map_err(trouble)?
            .ok_or_else(|| usage("cancelled; nothing was created"));
    }
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| usage(format!("cannot read the passcode from stdin: {e}")))?;
    Passcode::from_stdin(input)
        .map_err(|e| usage(format!("the passcode read from stdin is not usable: {e}")))
}

/// Draws from the operating system's CSPRNG, uniformly in `0..n` (rejection sampling).
fn csprng(n: usize) -> usize {
    let n = n.max(1) as u64;
    let limit = u64::MAX - u64::MAX % n;
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        let x = u64::from_le_bytes(bytes);
        if x < limit {
            return (x % n) as usize;
        }
    }
}

/// A unique, readable name: the device id, the time, four random characters.
fn reset_name(device: &str) -> String {
    let id: String = device
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(20)
        .collect();
    let when = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    let suffix: String = (0..4)
        .map(|_| b"abcdefghjkmnpqrstuvwxyz23456789"[csprng(31)] as char)
        .collect();
    format!(
        "{}-{when}-{suffix}",
        if id.is_empty() { "device" } else { &id }
    )
}

fn checklist_text(lines: &[(bool, String)]) -> String {
    lines
        .iter()
        .map(|(met, what)| format!("  {} {what}\n", if *met { '✓' } else { '✗' }))
        .collect()
}

pub async fn reset(target: &Target, args: ResetArgs) -> Result<u8, Stop> {
    if device_enterprise(&args.device).is_none() {
        return Err(usage(format!(
            "{} is not an AMAPI device name: enterprises/ENTERPRISE/devices/DEVICE",
            args.device
        )));
    }
    if let Some(e) = &args.expires {
        let ok = parse_duration_secs(e)
            .is_some_and(|s| (MIN_EXPIRES_AFTER_SECS..=MAX_EXPIRES_AFTER_SECS).contains(&s));
        if !ok {
            return Err(usage(format!(
                "--expires {e}: hours, minutes and seconds such as 30m or 1h30m, between 1m and 168h"
            )));
        }
    }
    let known = known_for(
        Some(target),
        Some(&args.device),
        args.requirements.as_ref(),
        None,
    )
    .await?;
    let mut out = progress(args.output);

    let passcode = if args.clear {
        None
    } else if args.generate {
        Some(
            generate(&known.governing, known.api_level, &mut csprng)
                .map_err(|e| usage(format!("cannot make a passcode: {e}")))?,
        )
    } else {
        Some(read_passcode(
            &format!(
                "Reset the passcode of {} (namespace {})",
                args.device, target.namespace
            ),
            &known,
        )?)
    };
    let verdict = judge(
        passcode.as_ref().map(Passcode::as_bytes),
        &known.governing,
        known.api_level,
    );
    if !verdict.passes {
        let lines: Vec<(bool, String)> = verdict
            .requirements
            .iter()
            .map(|c| (c.met, c.description.clone()))
            .collect();
        let unmet = lines.iter().filter(|l| !l.0).count();
        match args.output {
            Output::Json => print_json(&json!({
                "sent": false,
                "reason": if args.clear { "PasscodeRequired" } else { "PasscodeInvalid" },
                "requirements": verdict.requirements,
                "sources": known.sources,
            })),
            Output::Text => {
                println!("{}", known.header());
                print!("{}", checklist_text(&lines));
                println!(
                    "Not sent: {} ({unmet} requirement{} not met). Nothing was created.",
                    if args.clear {
                        "the requirements ask for a passcode, so it cannot be cleared"
                    } else {
                        "the passcode does not meet the requirements"
                    },
                    if unmet == 1 { " is" } else { "s are" }
                );
            }
        }
        return Ok(exit::FAILED);
    }

    let spec = PasscodeResetSpec {
        device: args.device.clone(),
        new_passcode: None,
        lock_now: args.lock,
        require_entry: args.require_entry,
        expires_after: args.expires.clone(),
    };
    let mut created = None;
    for _ in 0..3 {
        let name = reset_name(&args.device);
        match target
            .create_reset(&name, spec.clone(), passcode.is_some())
            .await
        {
            Ok(r) => {
                created = Some(r);
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(trouble(format!("cannot create the PasscodeReset: {e}"))),
        }
    }
    let reset = created.ok_or_else(|| trouble("no free name for the PasscodeReset"))?;
    let name = kube::ResourceExt::name_any(&reset);
    if let Some(p) = &passcode
        && let Err(e) = target.create_secret(&reset, p).await
    {
        // Nothing was sent: the reset was waiting for this Secret.
        target.delete_reset(&name).await;
        return Err(trouble(format!(
            "cannot create the Secret with the passcode ({e}); the PasscodeReset was deleted again, nothing was sent"
        )));
    }
    let _ = writeln!(
        out,
        "Created PasscodeReset {}/{name} for {}",
        target.namespace, args.device
    );
    let shown = match (&passcode, args.generate) {
        (Some(p), true) => {
            if args.output == Output::Text {
                println!("New passcode (shown once): {}", p.expose());
                println!("  read out: {}", spoken::spell(p.expose()));
            }
            Some(p.expose().to_owned())
        }
        _ => None,
    };
    drop(passcode);
    let code = follow_to_end(target, &name, args.output, args.timeout, shown).await?;
    Ok(code)
}

/// Follows `name` to its end, prints each step, deletes the plugin's Secret, and says what to do.
async fn follow_to_end(
    target: &Target,
    name: &str,
    output: Output,
    timeout: Option<Duration>,
    generated: Option<String>,
) -> Result<u8, Stop> {
    let mut out = progress(output);
    let mut seen = |s: &Summary| {
        let _ = writeln!(
            out,
            "{}  {:<26} {}",
            clock(),
            s.state(),
            s.message
                .as_deref()
                .unwrap_or("created; the operator has not written a status yet")
        );
    };
    let following = target.follow(name, &mut seen);
    let stopped = |why: String| {
        trouble(format!(
            "{why}; the reset goes on: `kubectl passcode wait {name}` follows it again"
        ))
    };
    let (summary, uid) = tokio::select! {
        r = async {
            match timeout {
                Some(t) => tokio::time::timeout(t, following).await.map_err(|_| stopped(format!("not final after {}s", t.as_secs())))?.map_err(trouble),
                None => following.await.map_err(trouble),
            }
        } => r?,
        _ = tokio::signal::ctrl_c() => return Err(stopped("stopped following".into())),
    };
    let deleted = target.delete_own_secret(&summary, &uid).await;
    let mut out = progress(output);
    match &deleted {
        Ok(true) => {
            let _ = writeln!(
                out,
                "Deleted Secret {}: the passcode is no longer stored in the cluster.",
                summary.secret.as_deref().unwrap_or_default()
            );
        }
        Ok(false) => {}
        Err(e) => {
            let _ = writeln!(
                out,
                "Could not delete Secret {} ({e}); deleting the PasscodeReset deletes it.",
                summary.secret.as_deref().unwrap_or_default()
            );
        }
    }
    let code = if summary.succeeded() {
        exit::OK
    } else {
        exit::FAILED
    };
    match output {
        Output::Json => {
            let mut v = serde_json::to_value(&summary).map_err(trouble)?;
            v["secretDeleted"] =
                json!(matches!(deleted, Ok(true)) || summary.secret_deleted_at.is_some());
            if let Some(p) = generated {
                v["generatedPasscode"] = json!(p);
            }
            print_json(&v);
        }
        Output::Text => {
            if let Some(h) = summary.what_to_do {
                println!(
                    "{}: {h}",
                    if summary.succeeded() {
                        "Done"
                    } else {
                        "What to do"
                    }
                );
            }
        }
    }
    Ok(code)
}

pub async fn wait(
    target: &Target,
    name: &str,
    output: Output,
    timeout: Option<Duration>,
) -> Result<u8, Stop> {
    if target.get(name).await.map_err(trouble)?.is_none() {
        return Err(Stop(
            exit::TROUBLE,
            format!("PasscodeReset {}/{name} not found", target.namespace),
        ));
    }
    follow_to_end(target, name, output, timeout, None).await
}

pub async fn status(target: &Target, name: Option<&str>, output: Output) -> Result<u8, Stop> {
    let obj = match name {
        Some(n) => target.get(n).await.map_err(trouble)?,
        None => target.list(false).await.map_err(trouble)?.pop(),
    };
    let Some(obj) = obj else {
        return Err(Stop(
            exit::TROUBLE,
            match name {
                Some(n) => format!("PasscodeReset {}/{n} not found", target.namespace),
                None => format!("no PasscodeReset in namespace {}", target.namespace),
            },
        ));
    };
    let summary = Summary::from_json(&obj);
    match output {
        Output::Json => print_json(&serde_json::to_value(&summary).map_err(trouble)?),
        Output::Text => print!("{}", summary.describe()),
    }
    Ok(exit::OK)
}

pub async fn list(target: &Target, all_namespaces: bool, output: Output) -> Result<u8, Stop> {
    let rows: Vec<Summary> = target
        .list(all_namespaces)
        .await
        .map_err(trouble)?
        .iter()
        .map(Summary::from_json)
        .collect();
    match output {
        Output::Json => print_json(&serde_json::to_value(&rows).map_err(trouble)?),
        Output::Text if rows.is_empty() => {
            println!("No PasscodeResets in namespace {}.", target.namespace)
        }
        Output::Text => print!("{}", table(&rows, jiff::Timestamp::now(), all_namespaces)),
    }
    Ok(exit::OK)
}

/// `check`: the checklist on its own. With a device the cluster's requirements apply.
pub async fn check(
    target: Option<&Target>,
    device: Option<&str>,
    file: Option<&PathBuf>,
    api_level: Option<u32>,
    output: Output,
) -> Result<u8, Stop> {
    let known = known_for(target, device, file, api_level).await?;
    let passcode = read_passcode("Check a passcode (nothing is sent)", &known)?;
    let verdict = judge(Some(passcode.as_bytes()), &known.governing, known.api_level);
    drop(passcode);
    match output {
        Output::Json => print_json(&json!({
            "passes": verdict.passes,
            "requirements": verdict.requirements,
            "sources": known.sources,
            "apiLevel": known.api_level,
        })),
        Output::Text => {
            println!("{}", known.header());
            let lines: Vec<(bool, String)> = verdict
                .requirements
                .iter()
                .map(|c| (c.met, c.description.clone()))
                .collect();
            print!("{}", checklist_text(&lines));
            println!(
                "{}",
                if verdict.passes {
                    "The passcode meets every requirement."
                } else {
                    "The passcode does not meet the requirements."
                }
            );
        }
    }
    Ok(if verdict.passes {
        exit::OK
    } else {
        exit::FAILED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_unique_and_say_which_device() {
        let a = reset_name("enterprises/LC01demo/devices/3A8F0C2D");
        let b = reset_name("enterprises/LC01demo/devices/3A8F0C2D");
        assert_ne!(a, b);
        assert!(a.starts_with("3a8f0c2d-"), "{a}");
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
    }

    #[test]
    fn the_csprng_draws_every_value_in_range() {
        let mut seen = [false; 7];
        for _ in 0..500 {
            seen[csprng(7)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
