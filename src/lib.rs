//! passcode-operator: resets Android passcodes through the Android Management API, declaratively
//! and exactly once.

pub mod admission;
pub mod amapi;
pub mod api;
pub mod check;
pub mod controller;
pub mod failpoint;
pub mod metrics;
pub mod notifications;
pub mod passcode;
pub mod plugin;
pub mod reconcile;
pub mod server;
pub mod simulator;
pub mod telemetry;

/// Installs ring as the process's one rustls crypto provider (idempotent). Every TLS client in
/// the binary (kube, reqwest, yup-oauth2) then uses the same one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
