//! Helpers shared by integration tests; each test binary uses only some of them.
#![allow(dead_code)]

pub mod discovery;
pub mod sim;
