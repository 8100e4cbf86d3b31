//! The simulated service account: a real RSA key and a Google service-account key file for it, so
//! clients authenticate exactly as they would against Google (sign a JWT, trade it at `/token`).
//!
//! A key file written by an earlier run is reused, so an operator started with that file keeps
//! working across simulator restarts.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use jsonwebtoken::DecodingKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::{Digest, Sha256};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The service account's identity (the simulated Google Cloud project).
pub const PROJECT_ID: &str = "amapi-simulator";
pub const CLIENT_EMAIL: &str = "passcode-operator@amapi-simulator.iam.gserviceaccount.com";

const KEY_BITS: usize = 2048;

pub struct ServiceAccount {
    private_pem: Zeroizing<String>,
    private_key_id: String,
    client_id: String,
    /// Verifies assertions signed with the private key.
    pub decoding_key: DecodingKey,
}

impl ServiceAccount {
    /// A fresh 2048-bit key.
    pub fn generate() -> anyhow::Result<Self> {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
            .context("generating the service account's RSA key")?;
        Self::from_key(&key)
    }

    /// Reuses the key of a service-account file written earlier, or generates one when the file
    /// does not exist. A file that exists but holds no usable key is an error, not overwritten.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::generate(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a service-account key file", path.display()))?;
        let Some(pem) = file.get("private_key").and_then(Value::as_str) else {
            bail!("{} has no private_key", path.display());
        };
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
            anyhow::anyhow!(
                "{}: private_key is not a PKCS#8 RSA key: {e}",
                path.display()
            )
        })?;
        Self::from_key(&key)
    }

    fn from_key(key: &RsaPrivateKey) -> anyhow::Result<Self> {
        let private_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the private key")?;
        let public = RsaPublicKey::from(key);
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .context("encoding the public key")?;
        let der = public
            .to_public_key_der()
            .context("encoding the public key")?;
        let digest = Sha256::digest(der.as_bytes());
        let private_key_id: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
        // Google's client ids are 21 digits; derive a stable one from the key.
        let client_id: String = digest
            .iter()
            .skip(20)
            .chain(digest.iter())
            .take(21)
            .enumerate()
            .map(|(i, b)| char::from(b'0' + if i == 0 { 1 + b % 9 } else { b % 10 }))
            .collect();
        let decoding_key = DecodingKey::from_rsa_pem(public_pem.as_bytes())
            .context("loading the public key for JWT checks")?;
        Ok(ServiceAccount {
            private_pem,
            private_key_id,
            client_id,
            decoding_key,
        })
    }

    /// The key file a Google client is given, with `token_uri` pointing at the simulator.
    pub fn key_file(&self, base_url: &str, token_uri: &str) -> String {
        let file = json!({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": self.private_key_id,
            "private_key": self.private_pem.as_str(),
            "client_email": CLIENT_EMAIL,
            "client_id": self.client_id,
            // Not served: nothing in the JWT-bearer flow uses them, and they must not point at Google.
            "auth_uri": format!("{base_url}o/oauth2/auth"),
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": format!("{base_url}oauth2/v1/certs"),
            "client_x509_cert_url": format!("{base_url}robot/v1/metadata/x509/{CLIENT_EMAIL}"),
            "universe_domain": "googleapis.com",
        });
        serde_json::to_string_pretty(&file).expect("a key file serializes")
    }
}

/// Writes a key file readable by its owner only.
pub fn write_key_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: tighten it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("sim-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sa.json");
        let _ = std::fs::remove_file(&path);

        let first = ServiceAccount::load_or_generate(&path).unwrap();
        let file = first.key_file("http://127.0.0.1:1/", "http://127.0.0.1:1/token");
        write_key_file(&path, &file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let parsed: Value = serde_json::from_str(&file).unwrap();
        assert_eq!(parsed["type"], "service_account");
        assert_eq!(parsed["token_uri"], "http://127.0.0.1:1/token");
        assert!(
            parsed["private_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_eq!(parsed["client_id"].as_str().unwrap().len(), 21);

        let again = ServiceAccount::load_or_generate(&path).unwrap();
        assert_eq!(
            again.private_key_id, first.private_key_id,
            "the key is reused"
        );

        std::fs::write(&path, "not json").unwrap();
        assert!(ServiceAccount::load_or_generate(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
