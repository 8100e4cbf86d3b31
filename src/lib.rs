//! passcode-operator: resets Android passcodes through the Android Management API, declaratively
//! and exactly once.

pub mod amapi;
pub mod api;
pub mod check;
pub mod passcode;
pub mod simulator;
