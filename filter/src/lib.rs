//! meshguard: a proxy-wasm HTTP filter that verifies JWTs and enforces Istio-style
//! authorization policies over JWT claims and the peer's SPIFFE identity.
//!
//! Data flows one way: request → [`extract`] → [`jose`] (verify) → claims → [`policy`] →
//! [`output`] (headers / 401 / 403). Everything except [`host`] is free of proxy-wasm so it is
//! unit-tested and fuzzed natively; [`host`] is the thin glue that performs the I/O.

pub mod binding;
pub mod cache;
pub mod config;
pub mod dpop;
pub mod extract;
mod hex;
pub mod jose;
pub mod jwks;
pub mod output;
pub mod peer;
pub mod policy;

pub mod engine;
pub mod host;
