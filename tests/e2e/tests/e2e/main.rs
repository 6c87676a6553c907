//! End-to-end: the real meshguard.wasm in a real Envoy. One test binary; each `#[test]` is a group
//! of cases sharing one Envoy (startup costs seconds).
// Test code: failing loudly is the point here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod binding;
mod common;
mod compare;
mod config;
mod demo;
mod differential;
mod dpop;
mod faults;
mod goldens;
mod https;
mod jwks;
mod meshguard;
mod native;
mod parity;
mod policies;
mod svid;
