//! Integration tests against a real kube-apiserver started by the test support.

mod support;

mod argocd;
mod bad_inputs;
mod crds;
mod exactly_once;
// Shared with tests/apiserver_restart.rs, which uses parts this binary does not.
#[allow(dead_code)]
mod env;
mod faults;
mod policies;
mod rbac;
mod recreated;
mod replicas;
mod resets;
mod security;
