//! JWKS lifecycle as a host-free state machine (fresh / stale / fetching / backing off).
//! The proxy-wasm glue in `host/` only performs the I/O this module asks for.
