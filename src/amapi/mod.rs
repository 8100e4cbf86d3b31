//! The Android Management API edge: wire models, Google credentials (key file, Workload Identity Federation, metadata server), and a client with one rate
//! limiter, retries where they are safe, and `issueCommand` never sent twice blindly; and a Pub/Sub
//! pull client for AMAPI's notifications, over the same machinery.

pub mod auth;
pub mod base64;
pub mod client;
pub mod error;
pub mod model;
pub mod observe;
pub mod pubsub;
pub mod ratelimit;
pub mod retry;

pub use auth::Credentials;
pub use client::{AmapiClient, ClientOptions, DEFAULT_BASE_URL};
pub use error::AmapiError;
pub use observe::{NoopObserver, Observer};
pub use pubsub::{MalformedMessage, Notification, PubsubClient, PubsubOptions};
