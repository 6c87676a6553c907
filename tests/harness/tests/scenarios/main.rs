//! Every harness scenario lives in this one test binary (each `tests/*.rs` would relink wasmtime),
//! and each module is compiled once per binary (see `meshguard_harness::compile`).
//!
//! - `probe`: the harness itself, proven with the tiny `mgprobe` filter (testdata/probe).
//! - `meshguard`: the real meshguard.wasm.
//! - `host_calls`: meshguard's ABI crossings per request on the benchmark's path, pinned exactly.
//! - `fuzz_replay`: the fuzz corpora through the real meshguard.wasm.
// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

mod binding;
mod dpop;
mod fuzz_replay;
mod host_calls;
mod meshguard;
mod peer;
mod probe;
mod tokens;

/// `target/wasm32-unknown-unknown/release/<name>.wasm` of the workspace, or `$env` if set.
fn wasm_path(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"))
}

pub fn probe_wasm() -> PathBuf {
    wasm_path("MESHGUARD_PROBE_WASM", "mgprobe")
}

pub fn meshguard_wasm() -> PathBuf {
    wasm_path("MESHGUARD_WASM", "meshguard")
}
