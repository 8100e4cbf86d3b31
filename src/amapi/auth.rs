//! Service-account authentication (JWT bearer grant) through yup-oauth2. The key file's
//! `token_uri` is honoured, which is how the simulator stands in for Google; it can also be
//! overridden.

use std::path::Path;

use super::AmapiError;

/// The OAuth scope of the Android Management API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidmanagement";

type Authenticator = yup_oauth2::authenticator::DefaultAuthenticator;

/// Hands out access tokens, cached until shortly before they expire.
pub struct ServiceAccount {
    authenticator: Authenticator,
    client_email: String,
}

impl ServiceAccount {
    /// Reads a Google service-account key file. A missing or unreadable file, or one that is not a
    /// service-account key, is an error that names the file (and never quotes its content).
    pub async fn from_file(path: &Path, token_uri: Option<&str>) -> Result<Self, AmapiError> {
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            AmapiError::Auth(format!(
                "cannot read credentials file {}: {e}",
                path.display()
            ))
        })?;
        let mut key: yup_oauth2::ServiceAccountKey = serde_json::from_str(&text).map_err(|e| {
            AmapiError::Auth(format!(
                "credentials file {} is not a Google service-account key (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        if let Some(uri) = token_uri {
            key.token_uri = uri.to_owned();
        }
        let client_email = key.client_email.clone();
        let authenticator = yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .build()
            .await
            .map_err(|e| AmapiError::Auth(format!("cannot set up the token client: {e}")))?;
        Ok(ServiceAccount {
            authenticator,
            client_email,
        })
    }

    /// The service account's identity, for logs.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// A valid access token for AMAPI; `refresh` forces a new one (after AMAPI answered 401).
    pub async fn token(&self, refresh: bool) -> Result<String, AmapiError> {
        self.token_for(&[SCOPE], refresh).await
    }

    /// A valid access token for `scopes` (one cached per set of scopes, such as AMAPI's and
    /// Pub/Sub's); `refresh` forces a new one.
    pub async fn token_for(&self, scopes: &[&str], refresh: bool) -> Result<String, AmapiError> {
        let result = if refresh {
            self.authenticator.force_refreshed_token(scopes).await
        } else {
            self.authenticator.token(scopes).await
        };
        let token = result.map_err(|e| AmapiError::Auth(e.to_string()))?;
        token
            .token()
            .map(str::to_owned)
            .ok_or_else(|| AmapiError::Auth("the token endpoint returned no access token".into()))
    }
}
