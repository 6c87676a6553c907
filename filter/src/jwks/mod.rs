//! JWKS lifecycle as a host-free state machine: fresh / stale / fetching / backing off.
//!
//! The proxy-wasm glue (`host/`) only performs the I/O this module asks for:
//!
//! ```text
//!   root on_tick / on_queue_ready ──► IssuerKeys::poll(now, store, me) ──► Poll::Fetch ──► dispatch_http_call
//!   on_http_call_response ──► parse_response(..) ──► fetch_succeeded / fetch_failed
//!   request ──► IssuerKeys::lookup(now, store) ──► Ready(keys) | Wait | Unavailable
//!   verify says "unknown kid" ──► IssuerKeys::unknown_kid(now, store) ──► Retry | Wait | RateLimited
//! ```
//!
//! Worker VMs of one Envoy process coordinate through proxy shared data (a [`SharedStore`] with
//! Envoy's CAS semantics) so that the process fetches a JWKS once per refresh, not once per
//! worker:
//! - a small [`Lease`] record per JWKS source says who is fetching, until when, how many fetches
//!   failed in a row (the backoff is process-wide), when the last unknown-`kid` refetch happened
//!   (the rate limit is process-wide), and the version of the latest key record;
//! - a [`SharedRecord`] holds the last good JWKS body with its fetch and expiry times; every VM
//!   re-parses it only when the lease says its version changed.
//!
//! Waiting requests are woken by the host when [`IssuerKeys::generation`] changes: it moves on
//! every new key set and on every finished fetch (good or bad), own or a peer's.

mod fetch;
mod lease;
mod machine;
mod record;
mod store;

pub use fetch::{
    FetchError, JwksUri, MAX_BODY_BYTES, UriError, discovery_uri, max_age_secs, parse_discovery,
    parse_response,
};
pub use lease::{Lease, LeasePhase};
pub use machine::{
    BACKOFF_INITIAL_SECS, BACKOFF_MAX_SECS, DEFAULT_CACHE_DURATION_SECS, DEFAULT_FETCH_TIMEOUT,
    IssuerKeys, KeyParser, KidMiss, Lookup, MAX_AGE_CEILING_SECS, MAX_AGE_FLOOR_SECS, Poll,
    RefreshPolicy, STALE_IF_ERROR_SECS, UNKNOWN_KID_INTERVAL_SECS,
};
pub use record::SharedRecord;
pub use store::{SharedStore, StoreError};

#[cfg(any(test, feature = "test-util"))]
pub use store::MemoryStore;
