//! A service-account key file (JWT bearer grant) through yup-oauth2. The key file's `token_uri`
//! is honoured, which is how the simulator stands in for Google; it can also be overridden.
//! (google-cloud-auth signs its own JWT access tokens from a key and never calls `token_uri`,
//! so key files stay with yup-oauth2.)

use std::path::Path;

type Authenticator = yup_oauth2::authenticator::DefaultAuthenticator;

pub struct KeyFile {
    authenticator: Authenticator,
    pub client_email: String,
}

impl KeyFile {
    /// `text` is the file's content; errors name the file and never quote its content.
    pub async fn parse(path: &Path, text: &str, token_uri: Option<&str>) -> Result<Self, String> {
        let mut key: yup_oauth2::ServiceAccountKey = serde_json::from_str(text).map_err(|e| {
            format!(
                "credentials file {} is not a Google service-account key ({} at line {}, column {})",
                path.display(),
                // serde's message names a missing field but never a value.
                e.to_string().split(" at line").next().unwrap_or("invalid"),
                e.line(),
                e.column()
            )
        })?;
        if let Some(uri) = token_uri {
            key.token_uri = uri.to_owned();
        }
        let client_email = key.client_email.clone();
        let authenticator = yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .build()
            .await
            .map_err(|e| format!("cannot set up the token client: {e}"))?;
        Ok(KeyFile {
            authenticator,
            client_email,
        })
    }

    pub async fn token_for(&self, scopes: &[&str], refresh: bool) -> Result<String, String> {
        let result = if refresh {
            self.authenticator.force_refreshed_token(scopes).await
        } else {
            self.authenticator.token(scopes).await
        };
        let token = result.map_err(|e| e.to_string())?;
        token
            .token()
            .map(str::to_owned)
            .ok_or_else(|| "the token endpoint returned no access token".into())
    }
}
