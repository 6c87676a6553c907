//! What the engine needs from the proxy: one method per kind of host call, nothing more. The
//! proxy-wasm implementation is `crate::host` (each method one ABI call); the tests implement it
//! with a fake host (`engine::testing`). The engine is generic over it (static dispatch: the
//! module contains one instance, so a request pays no indirection).
//!
//! Every method reports failure as a value and none panics; the engine treats an unreadable
//! header as absent, a refused counter as not counted, a refused local reply as logged.

use std::fmt;
use std::time::Duration;

use crate::jwks::{SharedStore, StoreError};

/// A non-OK status of a host call (proxy-wasm `WasmResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    InvalidMemoryAccess,
    Empty,
    CasMismatch,
    InternalFailure,
    Unimplemented,
    /// A status this ABI version does not name.
    Other(u32),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotFound => f.write_str("host: not found"),
            HostError::BadArgument => f.write_str("host: bad argument"),
            HostError::SerializationFailure => f.write_str("host: serialization failure"),
            HostError::ParseFailure => f.write_str("host: parse failure"),
            HostError::InvalidMemoryAccess => f.write_str("host: invalid memory access"),
            HostError::Empty => f.write_str("host: empty"),
            HostError::CasMismatch => f.write_str("host: CAS mismatch"),
            HostError::InternalFailure => f.write_str("host: internal failure"),
            HostError::Unimplemented => f.write_str("host: unimplemented"),
            HostError::Other(status) => write!(f, "host: status {status}"),
        }
    }
}

impl std::error::Error for HostError {}

/// The proxy, as the request engine uses it. "The request" is the host's current (effective)
/// request context: the one whose callback runs, or the one [`Host::set_effective_context`]
/// selected.
pub trait Host {
    /// A request header by lower-case name (pseudo-headers included); `None` when absent.
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Every request header in order: a header sent twice appears twice (`request_header`
    /// gives only the first value).
    fn request_header_pairs(&self) -> Vec<(String, Vec<u8>)>;
    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn remove_request_header(&self, name: &str) -> Result<(), HostError>;
    /// A property of the request's connection or stream (`["connection", "mtls"]`), in Envoy's
    /// encoding; `None` when absent.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Answers the request locally; it goes no further.
    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    /// Lets a paused request go on.
    fn resume_request(&self) -> Result<(), HostError>;
    /// Makes `context_id` the current request (to decide a paused one); an error when it is gone.
    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError>;

    /// Host time in nanoseconds since the Unix epoch (never `SystemTime::now()`: wasm32 has
    /// no clock of its own).
    fn now_nanos(&self) -> Option<u64>;

    /// Host time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Option<u64> {
        self.now_nanos().map(|nanos| nanos / 1_000_000)
    }
    /// Sets how often the root's tick runs.
    fn set_tick_period(&self, period: Duration) -> Result<(), HostError>;

    /// Proxy shared data (shared by every worker VM of the process) with its CAS value.
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes shared data if `cas` still matches (0: unconditionally).
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError>;
    /// Registers a shared queue of this VM (its `on_queue_ready` runs in the root).
    fn register_queue(&self, name: &str) -> Result<u32, HostError>;
    fn enqueue(&self, queue: u32, value: &[u8]) -> Result<(), HostError>;

    /// Dispatches an HTTP call to `cluster`; the answer arrives as the root's
    /// `on_http_call_response` with the returned token.
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// A header of the HTTP-call response being delivered.
    fn http_response_header(&self, name: &str) -> Option<Vec<u8>>;
    /// The body of the HTTP-call response being delivered (`size` bytes).
    fn http_response_body(&self, size: usize) -> Option<Vec<u8>>;

    /// Defines a counter; `None` when the host refuses (it is then not counted).
    fn define_counter(&self, name: &str) -> Option<u32>;
    fn increment_counter(&self, id: u32, delta: i64);
}

/// Proxy shared data as the JWKS state machine's [`SharedStore`].
pub struct HostStore<'h, H: Host>(pub &'h H);

impl<H: Host> SharedStore for HostStore<'_, H> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.shared_data(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.0
            .set_shared_data(key, value, cas)
            .map_err(|status| match status {
                HostError::CasMismatch => StoreError::CasMismatch,
                other => StoreError::Host(other.to_string()),
            })
    }
}
