//! Integration tests against a real kube-apiserver started by the test support.

mod support;

mod argocd;
mod bad_inputs;
mod crds;
mod env;
mod faults;
mod policies;
mod rbac;
mod replicas;
mod resets;
mod security;
