//! meshguard-harness: Envoy's side of the proxy-wasm ABI 0.2.1, on wasmtime, for running the real
//! `meshguard.wasm` in deterministic, millisecond-fast scenario tests. See `README.md`.
//!
//! ```no_run
//! # fn main() -> wasmtime::Result<()> {
//! use meshguard_harness::Host;
//! let h = Host::load("target/wasm32-unknown-unknown/release/meshguard.wasm")?
//!     .workers(2)
//!     .configure(r#"{"jwtRules": []}"#)?;
//! let r = h.request().header("authorization", "Bearer x").send()?;
//! r.assert_status(401);
//! # Ok(()) }
//! ```
// Test-support code: failing loudly (panicking assertions, indexing into fixed ABI structures) is
// the point here, unlike in the filter, whose panics would take down an Envoy worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod abi;
pub mod calls;
mod host;
mod state;
mod vm;

pub use abi::LogLevel;
pub use calls::{CallKind, Expected, HostCalls};
pub use host::{
    DEFAULT_CLOCK_UNIX_SECS, DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, Exchange, Host, HostBuilder,
    HttpCall, Prop, RequestBuilder, compile, engine, exports,
};
pub use state::{
    DownstreamResponse, Headers, LocalResponse, LogEntry, Metric, MetricKind, UpstreamRequest,
};
pub use wasmtime::{Module, Result};
