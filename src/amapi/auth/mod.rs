//! Google credentials for AMAPI and Pub/Sub, in each way Google gives a workload access:
//!
//! | mode | chosen by | library |
//! |---|---|---|
//! | key file | a file of `type` `service_account` | yup-oauth2 (JWT bearer grant at the file's `token_uri`) |
//! | Workload Identity Federation | a file of `type` `external_account` | google-cloud-auth (STS, then IAM Credentials when impersonating) |
//! | impersonation | a file of `type` `impersonated_service_account` | google-cloud-auth |
//! | metadata server (GKE Workload Identity, Compute Engine) | no file | google-cloud-auth (`GCE_METADATA_HOST` honoured) |
//!
//! Errors name the file and what is wrong, quoting Google's error text; never a token or a key.

mod key_file;
mod keyless;

use std::path::Path;

use serde_json::Value;

use super::AmapiError;
use key_file::KeyFile;
use keyless::{Config, Keyless};

/// The OAuth scope of the Android Management API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidmanagement";

/// How the operator gets its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    KeyFile,
    WorkloadIdentityFederation,
    Impersonation,
    MetadataServer,
}

impl Mode {
    /// The mode a credentials file's `type` names (Google's values).
    pub fn of_type(kind: &str) -> Option<Mode> {
        match kind {
            "service_account" => Some(Mode::KeyFile),
            "external_account" => Some(Mode::WorkloadIdentityFederation),
            "impersonated_service_account" => Some(Mode::Impersonation),
            _ => None,
        }
    }

    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::KeyFile => "service-account key file",
            Mode::WorkloadIdentityFederation => "Workload Identity Federation",
            Mode::Impersonation => "service-account impersonation",
            Mode::MetadataServer => "metadata server",
        }
    }
}

/// Hands out access tokens, cached until shortly before they expire.
pub struct Credentials {
    mode: Mode,
    identity: String,
    source: Source,
}

enum Source {
    KeyFile(KeyFile),
    Keyless(Keyless),
}

impl Credentials {
    /// With a file: the mode its `type` names; without one: the metadata server, as Google's
    /// libraries do when `GOOGLE_APPLICATION_CREDENTIALS` is unset on GKE or Compute Engine.
    /// `token_uri` overrides a key file's.
    pub async fn load(path: Option<&Path>, token_uri: Option<&str>) -> Result<Self, AmapiError> {
        match path {
            Some(path) => Self::from_file(path, token_uri).await,
            None => Self::metadata_server().await,
        }
    }

    /// Reads a Google credentials file. A missing or unreadable file, one of a type the operator
    /// does not take, or one that cannot work (an unreadable subject token file) is an error that
    /// names the file and never quotes its content.
    pub async fn from_file(path: &Path, token_uri: Option<&str>) -> Result<Self, AmapiError> {
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            AmapiError::Auth(format!(
                "cannot read credentials file {}: {e}",
                path.display()
            ))
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            AmapiError::Auth(format!(
                "credentials file {} is not a Google credentials file: not JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        let kind = json.get("type").and_then(Value::as_str).unwrap_or("");
        let mode = Mode::of_type(kind).ok_or_else(|| {
            AmapiError::Auth(format!(
                "credentials file {} has type {kind:?}; the operator takes service_account (a key \
                 file), external_account (Workload Identity Federation) or \
                 impersonated_service_account, or no file on GKE (the metadata server)",
                path.display()
            ))
        })?;
        let (identity, source) = match mode {
            Mode::KeyFile => {
                let key = KeyFile::parse(path, &text, token_uri)
                    .await
                    .map_err(AmapiError::Auth)?;
                (key.client_email.clone(), Source::KeyFile(key))
            }
            Mode::WorkloadIdentityFederation => {
                let identity = federation_identity(path, &json).await?;
                let config = Config::ExternalAccount(json);
                (identity, Source::Keyless(Keyless::new(config)))
            }
            Mode::Impersonation => {
                let identity = json
                    .get("service_account_impersonation_url")
                    .and_then(Value::as_str)
                    .and_then(keyless::impersonated_email)
                    .ok_or_else(|| {
                        AmapiError::Auth(format!(
                            "credentials file {} has no service_account_impersonation_url naming a service account",
                            path.display()
                        ))
                    })?
                    .to_owned();
                let config = Config::ImpersonatedServiceAccount(json);
                (identity, Source::Keyless(Keyless::new(config)))
            }
            Mode::MetadataServer => unreachable!("no file type names the metadata server"),
        };
        Ok(Credentials {
            mode,
            identity,
            source,
        })
    }

    /// The metadata server's service account (GKE Workload Identity, Compute Engine), at
    /// `GCE_METADATA_HOST` or Google's address. No metadata server is an error saying so.
    pub async fn metadata_server() -> Result<Self, AmapiError> {
        let host = keyless::metadata_host();
        let identity = keyless::metadata_server_email(&host).await.map_err(|e| {
            AmapiError::Auth(format!(
                "no credentials file was given (--credentials, AMAPI_CREDENTIALS or \
                 GOOGLE_APPLICATION_CREDENTIALS), so the metadata server was asked: {e}"
            ))
        })?;
        Ok(Credentials {
            mode: Mode::MetadataServer,
            identity,
            source: Source::Keyless(Keyless::new(Config::MetadataServer)),
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Who the calls are made as, for logs: a service account's email, or the federated
    /// principal when no service account is impersonated.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A valid access token for AMAPI; `refresh` forces a new one (after AMAPI answered 401).
    pub async fn token(&self, refresh: bool) -> Result<String, AmapiError> {
        self.token_for(&[SCOPE], refresh).await
    }

    /// A valid access token for `scopes` (one cached per set of scopes, such as AMAPI's and
    /// Pub/Sub's); `refresh` forces a new one.
    pub async fn token_for(&self, scopes: &[&str], refresh: bool) -> Result<String, AmapiError> {
        let result = match &self.source {
            Source::KeyFile(key) => key.token_for(scopes, refresh).await,
            Source::Keyless(keyless) => keyless.token_for(scopes, refresh).await,
        };
        result.map_err(AmapiError::Auth)
    }

    /// Gets one AMAPI token now, so credentials that cannot work fail at startup with Google's
    /// reason rather than on the first reset.
    pub async fn check(&self) -> Result<(), AmapiError> {
        self.token(false).await.map(drop).map_err(|e| {
            let reason = match e {
                AmapiError::Auth(reason) => reason,
                other => other.to_string(),
            };
            AmapiError::Auth(format!(
                "{} credentials for {} cannot get an access token: {reason}",
                self.mode.as_str(),
                self.identity
            ))
        })
    }
}

/// Who an `external_account` configuration acts as: the impersonated service account, else the
/// federated principal of the subject token (read here, so an unreadable token file is a
/// startup error naming it).
async fn federation_identity(path: &Path, json: &Value) -> Result<String, AmapiError> {
    if let Some(email) = json
        .get("service_account_impersonation_url")
        .and_then(Value::as_str)
        .and_then(keyless::impersonated_email)
    {
        check_subject_token_file(path, json).await?;
        return Ok(email.to_owned());
    }
    let subject = check_subject_token_file(path, json)
        .await?
        .and_then(|token| keyless::jwt_subject(&token));
    let audience = json.get("audience").and_then(Value::as_str).unwrap_or("");
    Ok(subject
        .and_then(|s| keyless::federated_principal(audience, &s))
        .unwrap_or_else(|| format!("a federated identity of {audience}")))
}

/// Reads the subject token file of a file-sourced configuration; `None` for other sources.
async fn check_subject_token_file(
    path: &Path,
    json: &Value,
) -> Result<Option<zeroize::Zeroizing<String>>, AmapiError> {
    let Some(file) = json
        .pointer("/credential_source/file")
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let token = tokio::fs::read_to_string(file).await.map_err(|e| {
        AmapiError::Auth(format!(
            "cannot read the subject token file {file} (credential_source.file of {}): {e}",
            path.display()
        ))
    })?;
    if token.trim().is_empty() {
        return Err(AmapiError::Auth(format!(
            "the subject token file {file} (credential_source.file of {}) is empty",
            path.display()
        )));
    }
    Ok(Some(zeroize::Zeroizing::new(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_type_picks_the_mode() {
        assert_eq!(Mode::of_type("service_account"), Some(Mode::KeyFile));
        assert_eq!(
            Mode::of_type("external_account"),
            Some(Mode::WorkloadIdentityFederation)
        );
        assert_eq!(
            Mode::of_type("impersonated_service_account"),
            Some(Mode::Impersonation)
        );
        for other in [
            "authorized_user",
            "external_account_authorized_user",
            "",
            "gdch",
        ] {
            assert_eq!(Mode::of_type(other), None, "{other}");
        }
    }
}
