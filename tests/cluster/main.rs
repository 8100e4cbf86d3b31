//! Integration tests against a real kube-apiserver, one per test binary, started by the test kit
//! (`testkit::cluster`).

mod admission;
mod alerts;
mod argocd;
mod bad_inputs;
mod chart;
mod crds;
mod credentials;
mod exactly_once;
mod faults;
mod notifications;
mod plugin;
mod policies;
mod rbac;
mod recreated;
mod replicas;
mod resets;
mod security;
