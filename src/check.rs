//! `passcode-operator check`: judge a passcode read from stdin against requirements, the same way
//! the operator judges a reset's new passcode before it issues anything.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::api::PolicyRequirements;
use crate::passcode::{Governing, Passcode, Requirements, Verdict, judge};

/// Output format of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// A usage or input error: exit code 2, with a message that never contains the passcode.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read requirements file {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("requirements file {path} is not valid: {message}")]
    Requirements { path: String, message: String },
    #[error("cannot read the passcode from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("the passcode read from stdin is not usable: {0}")]
    Passcode(String),
}

/// Loads requirements from a `WorkProfilePasscodePolicy` manifest or a bare requirements mapping.
pub fn load_requirements(path: &Path) -> Result<Requirements, CheckError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    parse_requirements(&text).map_err(|message| CheckError::Requirements {
        path: shown,
        message,
    })
}

/// Parses requirements text (see [`load_requirements`]). Unknown keys are refused so that a typo
/// (`minimumLenght`) cannot silently weaken the check.
pub fn parse_requirements(text: &str) -> Result<Requirements, String> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mapping = match doc.get("kind").and_then(|k| k.as_str()) {
        Some("WorkProfilePasscodePolicy") => doc
            .pointer("/spec/requirements")
            .cloned()
            .ok_or("a WorkProfilePasscodePolicy without spec.requirements")?,
        Some(other) => return Err(format!("kind {other} is not a WorkProfilePasscodePolicy")),
        None => doc,
    };
    let parsed: PolicyRequirements =
        serde_json::from_value(mapping.clone()).map_err(|e| e.to_string())?;
    let known = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    if let (Some(given), Some(known)) = (mapping.as_object(), known.as_object()) {
        let mut unknown: Vec<&str> = given
            .keys()
            .filter(|k| !known.contains_key(*k))
            .map(String::as_str)
            .collect();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            return Err(format!("unknown field(s): {}", unknown.join(", ")));
        }
    }
    Ok(Requirements::from(&parsed))
}

/// Judges `input` (the raw bytes read from stdin) and writes the report. Returns whether it passes.
pub fn report(
    input: Vec<u8>,
    requirements: Option<&Requirements>,
    api_level: Option<u32>,
    output: Output,
    out: &mut dyn Write,
) -> Result<bool, CheckError> {
    let governing =
        Governing::from_requirements(requirements.map(std::slice::from_ref).unwrap_or(&[]));
    let passcode = Passcode::from_stdin(input).map_err(|e| CheckError::Passcode(e.to_string()))?;
    let verdict = judge(Some(passcode.as_bytes()), &governing, api_level);
    drop(passcode);
    write_verdict(&verdict, api_level, output, out).map_err(CheckError::Stdin)?;
    Ok(verdict.passes)
}

fn write_verdict(
    verdict: &Verdict,
    api_level: Option<u32>,
    output: Output,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match output {
        Output::Json => {
            #[derive(Serialize)]
            struct Json<'a> {
                passes: bool,
                metrics: &'a crate::passcode::PasswordMetrics,
                requirements: &'a [crate::passcode::Check],
            }
            let json = Json {
                passes: verdict.passes,
                metrics: &verdict.metrics,
                requirements: &verdict.requirements,
            };
            serde_json::to_writer(&mut *out, &json)?;
            writeln!(out)
        }
        Output::Text => {
            let level = api_level.map_or(String::from("API level not given"), |l| {
                format!("API level {l}")
            });
            if verdict.passes {
                writeln!(out, "The passcode meets every requirement ({level}):")?;
            } else {
                let unmet = verdict.requirements.iter().filter(|c| !c.met).count();
                writeln!(
                    out,
                    "The passcode does not meet {unmet} requirement{} ({level}):",
                    if unmet == 1 { "" } else { "s" }
                )?;
            }
            for check in &verdict.requirements {
                let mark = if check.met { '✓' } else { '✗' };
                writeln!(out, "  {mark} {}", check.description)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passcode::PasswordQuality;

    #[test]
    fn parses_policy_manifest_and_bare_mapping() {
        let policy = "apiVersion: amapi.passcode-operator.io/v1alpha1\nkind: WorkProfilePasscodePolicy\nmetadata: {name: p}\nspec:\n  amapiPolicies: [enterprises/e/policies/p]\n  requirements: {quality: NUMERIC_COMPLEX, minimumLength: 6}\n";
        let r = parse_requirements(policy).unwrap();
        assert_eq!(r.quality, PasswordQuality::NumericComplex);
        assert_eq!(r.minimum_length, Some(6));
        let bare = parse_requirements("quality: COMPLEX\nminimumSymbols: 2\n").unwrap();
        assert_eq!(bare.minimum_symbols, Some(2));
    }

    #[test]
    fn refuses_typos_and_wrong_kinds() {
        let e = parse_requirements("quality: NUMERIC\nminimumLenght: 6\n").unwrap_err();
        assert!(e.contains("minimumLenght"), "{e}");
        assert!(parse_requirements("quality: NUMERICAL\n").is_err());
        assert!(
            parse_requirements("kind: ConfigMap\n")
                .unwrap_err()
                .contains("ConfigMap")
        );
        assert!(parse_requirements(": : :").is_err());
    }
}
