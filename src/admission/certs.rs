//! The webhook's serving certificate. The operator is its own certificate authority: it makes a
//! CA and a serving certificate signed by it, keeps them (and the seal key) in one Secret in its
//! namespace so every replica serves the same, writes the CA into the webhook configurations'
//! `caBundle`, and makes a new pair when a third of the validity is left. The CA's private key
//! is dropped right after signing: nothing else can ever be signed with it. During a rotation
//! `ca.crt` holds the new CA and the previous one, so the API server trusts replicas still
//! serving the old certificate until they reload.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// How long a CA and serving certificate are valid.
pub const VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 24);

/// What the webhook Secret holds.
#[derive(Clone, PartialEq)]
pub struct Material {
    /// PEM: the current CA, then the previous one during a rotation.
    pub ca_bundle: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: Timestamp,
    /// The names the certificate is valid for.
    pub hosts: Vec<String>,
    /// The seal key (see `seal`); kept across rotations.
    pub seal_key: Vec<u8>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("not_after", &self.not_after)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

const CA: &str = "ca.crt";
const CERT: &str = "tls.crt";
const KEY: &str = "tls.key";
const SEAL: &str = "seal.key";
const NOT_AFTER: &str = "not-after";
const HOSTS: &str = "hosts";

fn time(t: Timestamp) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| e.to_string())
}

/// A new CA and serving certificate for `hosts` (DNS names or IP addresses), valid from an hour
/// ago (clock skew) for [`VALIDITY`]. `previous_ca` stays in the bundle; `seal_key` is kept.
pub fn issue(
    hosts: &[String],
    now: Timestamp,
    previous_ca: Option<&str>,
    seal_key: Vec<u8>,
) -> Result<Material, String> {
    let e = |e: rcgen::Error| format!("cannot make the webhook certificate: {e}");
    let not_before = time(now - SignedDuration::from_hours(1))?;
    let not_after_ts = now + VALIDITY;
    let not_after = time(not_after_ts)?;

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("passcode-operator webhook CA {}", now.as_second()),
    );
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;

    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(e)?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "passcode-operator webhook");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_key = KeyPair::generate().map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(e)?;
    // The CA's key goes with `issuer` here: nothing else is ever signed with it.
    drop(issuer);

    let mut ca_bundle = ca_cert.pem();
    if let Some(previous) = previous_ca.and_then(first_pem) {
        ca_bundle.push_str(&previous);
    }
    Ok(Material {
        ca_bundle,
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        not_after: not_after_ts,
        hosts: hosts.to_vec(),
        seal_key,
    })
}

/// The first PEM block of a bundle (the CA that was current).
fn first_pem(bundle: &str) -> Option<String> {
    let end = "-----END CERTIFICATE-----";
    bundle
        .find(end)
        .map(|i| format!("{}\n", &bundle[..i + end.len()]))
}

/// A fresh 32-byte seal key.
pub fn new_seal_key() -> Result<Vec<u8>, String> {
    let mut key = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| "no randomness for the seal key".to_owned())?;
    Ok(key)
}

/// Whether to make a new pair: a third of the validity or less is left, or the names changed.
pub fn due(m: &Material, hosts: &[String], now: Timestamp) -> bool {
    let left = m.not_after.duration_since(now);
    left < VALIDITY / 3 || m.hosts != hosts
}

/// What to do with the webhook Secret as read.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// It holds usable material: serve that.
    Keep(Material),
    /// Write this (make or replace the Secret), then serve it. `restored`: the Secret was gone
    /// and this is the material the replica already held (its seal key and CA), written back so
    /// the replicas keep one key and the API server keeps trusting the CA.
    Write { material: Material, restored: bool },
}

/// Decides from the Secret's data (`None`: no Secret) and the material this replica holds
/// (`None` at startup). A key is only minted when neither the Secret nor the replica has one.
pub fn next(
    data: Option<&BTreeMap<String, ByteString>>,
    held: Option<&Material>,
    hosts: &[String],
    now: Timestamp,
) -> Result<Next, String> {
    let current = data.and_then(from_data);
    if let Some(m) = current.as_ref().filter(|m| !due(m, hosts, now)) {
        return Ok(Next::Keep(m.clone()));
    }
    if data.is_none()
        && let Some(held) = held
    {
        let material = if due(held, hosts, now) {
            issue(hosts, now, Some(&held.ca_bundle), held.seal_key.clone())?
        } else {
            held.clone()
        };
        return Ok(Next::Write {
            material,
            restored: true,
        });
    }
    let seal_key = match (&current, held) {
        (Some(m), _) => m.seal_key.clone(),
        // A Secret without a readable seal key keeps any key bytes it has, so records sealed
        // before stay readable; else the key this replica holds.
        (None, _) => match data
            .and_then(|d| d.get(SEAL))
            .map(|k| k.0.clone())
            .filter(|k| k.len() >= 32)
        {
            Some(k) => k,
            None => match held {
                Some(h) => h.seal_key.clone(),
                None => new_seal_key()?,
            },
        },
    };
    let previous = current.as_ref().or(held).map(|m| m.ca_bundle.as_str());
    Ok(Next::Write {
        material: issue(hosts, now, previous, seal_key)?,
        restored: false,
    })
}

/// The Secret's data.
pub fn to_data(m: &Material) -> BTreeMap<String, ByteString> {
    let b = |s: &str| ByteString(s.as_bytes().to_vec());
    BTreeMap::from([
        (CA.to_owned(), b(&m.ca_bundle)),
        (CERT.to_owned(), b(&m.cert_pem)),
        (KEY.to_owned(), b(&m.key_pem)),
        (NOT_AFTER.to_owned(), b(&m.not_after.to_string())),
        (HOSTS.to_owned(), b(&m.hosts.join(","))),
        (SEAL.to_owned(), ByteString(m.seal_key.clone())),
    ])
}

/// Reads the Secret's data; `None` when something is missing or unreadable.
pub fn from_data(data: &BTreeMap<String, ByteString>) -> Option<Material> {
    let s = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let seal_key = data.get(SEAL)?.0.clone();
    if seal_key.len() < 32 {
        return None;
    }
    Some(Material {
        ca_bundle: s(CA)?,
        cert_pem: s(CERT)?,
        key_pem: s(KEY)?,
        not_after: s(NOT_AFTER)?.parse().ok()?,
        hosts: s(HOSTS)?
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        seal_key,
    })
}

/// The rustls certificate and key of `m`.
pub fn certified_key(m: &Material) -> Result<rustls::sign::CertifiedKey, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("webhook certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes())
        .map_err(|e| format!("webhook key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(certs, key, &provider)
        .map_err(|e| format!("webhook certificate and key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn issued_material_round_trips_and_loads() {
        let hosts = vec![
            "passcode-operator-webhook.ns.svc".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let m = issue(&hosts, now(), None, vec![7; 32]).unwrap();
        assert_eq!(m.ca_bundle.matches("BEGIN CERTIFICATE").count(), 1);
        let back = from_data(&to_data(&m)).unwrap();
        assert!(back == m);
        certified_key(&back).unwrap();
        assert!(!format!("{m:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_rotation_keeps_the_previous_ca_and_the_seal_key() {
        let hosts = vec!["a.svc".to_owned()];
        let first = issue(&hosts, now(), None, vec![1; 32]).unwrap();
        let second = issue(
            &hosts,
            now(),
            Some(&first.ca_bundle),
            first.seal_key.clone(),
        )
        .unwrap();
        assert_eq!(second.ca_bundle.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(second.ca_bundle.ends_with(&first.ca_bundle));
        let third = issue(
            &hosts,
            now(),
            Some(&second.ca_bundle),
            second.seal_key.clone(),
        )
        .unwrap();
        assert_eq!(
            third.ca_bundle.matches("BEGIN CERTIFICATE").count(),
            2,
            "only one previous CA"
        );
        assert_eq!(third.seal_key, vec![1; 32]);
    }

    #[test]
    fn rotation_is_due_with_a_third_left_or_new_names() {
        let hosts = vec!["a.svc".to_owned()];
        let m = issue(&hosts, now(), None, vec![1; 32]).unwrap();
        assert!(!due(&m, &hosts, now()));
        assert!(!due(&m, &hosts, now() + VALIDITY / 2));
        assert!(due(
            &m,
            &hosts,
            now() + VALIDITY * 2 / 3 + SignedDuration::from_hours(1)
        ));
        assert!(due(&m, &["b.svc".to_owned()], now()));
    }

    #[test]
    fn a_deleted_secret_gets_back_what_the_replica_holds() {
        let hosts = vec!["a.svc".to_owned()];
        let held = issue(&hosts, now(), None, vec![1; 32]).unwrap();
        // Gone: the held key and CA are written back as they are, nothing new is minted.
        assert_eq!(
            next(None, Some(&held), &hosts, now()).unwrap(),
            Next::Write {
                material: held.clone(),
                restored: true
            }
        );
        // Gone and due: a new certificate, still with the held key, the held CA still trusted.
        let later = now() + VALIDITY;
        let Next::Write { material, restored } = next(None, Some(&held), &hosts, later).unwrap()
        else {
            panic!("a new certificate is written")
        };
        assert!(restored);
        assert_eq!(material.seal_key, held.seal_key);
        assert!(material.ca_bundle.ends_with(&held.ca_bundle));
        // Present: what it holds wins over what the replica holds.
        let other = issue(&hosts, now(), None, vec![2; 32]).unwrap();
        let data = to_data(&other);
        assert_eq!(
            next(Some(&data), Some(&held), &hosts, now()).unwrap(),
            Next::Keep(other)
        );
        // Unreadable (no seal key): the replica's key, not a new one.
        let mut broken = to_data(&held);
        broken.remove(SEAL);
        let Next::Write { material, restored } =
            next(Some(&broken), Some(&held), &hosts, now()).unwrap()
        else {
            panic!()
        };
        assert!(!restored);
        assert_eq!(material.seal_key, held.seal_key);
        // Nothing anywhere (the first start): a new key.
        let Next::Write { material, .. } = next(None, None, &hosts, now()).unwrap() else {
            panic!()
        };
        assert_eq!(material.seal_key.len(), 32);
    }

    #[test]
    fn incomplete_data_is_not_material() {
        let m = issue(&["a".to_owned()], now(), None, vec![1; 32]).unwrap();
        let mut data = to_data(&m);
        data.remove(SEAL);
        assert!(from_data(&data).is_none());
    }
}
