//! Integration tests against a real kube-apiserver started by the test support.

mod support;

mod crds;
mod env;
mod rbac;
mod resets;
