//! The cheapest proxy-wasm filters there can be, as reference points for `make bench`
//! (bench/README.md, "abi floors"). Written against the raw ABI (0.2.1) with no SDK, exporting
//! only the callbacks it needs, so Envoy calls into the VM as few times as it can.
//!
//! The plugin configuration picks what a request costs:
//! - `noop`: nothing at all (two VM entries per request: context create + request headers);
//! - `read`: what every JWT filter with Envoy's / Istio's default token locations must do before
//!   any cache lookup: read `authorization` and `:path` (the `access_token` parameter), read the
//!   clock (to re-check `exp`), remove `authorization` (the token is not forwarded);
//! - `memo`: `read` plus what meshguard's hit path adds to it at the least: the read of
//!   `access-control-request-method`, absent on all but CORS preflights (whose tokens are not
//!   verified, as Istio's `jwt_authn`), and a cache hit (one hash of the token text, one hash-map
//!   probe, the stored text compared, `exp` re-checked).
//!
//! Not part of the filter; built by `bench/bench.py` only.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Request header map (proxy-wasm `WasmHeaderMapType::RequestHeaders`).
const REQUEST_HEADERS: u32 = 0;
/// `BufferType::PluginConfiguration`.
const PLUGIN_CONFIGURATION: u32 = 7;
/// `FilterHeadersStatus::Continue`.
const CONTINUE: u32 = 0;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        value: *mut *mut u8,
        value_len: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(now: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        len: *mut usize,
    ) -> u32;
}

/// What a request does.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Noop,
    Read,
    Memo,
}

/// Entries the `memo` cache holds at most (it only needs the benchmark's one steady token).
const MEMO_ENTRIES: usize = 1024;

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Noop) };
    /// `memo`'s cache: a hash of the token text → the text and its `exp` (seconds).
    static MEMO: RefCell<HashMap<u64, (Vec<u8>, u64)>> = RefCell::new(HashMap::new());
    /// Keeps the reads observable so the compiler cannot drop them.
    static SINK: Cell<u64> = const { Cell::new(0) };
}

/// Takes ownership of a host-allocated buffer (allocated through `proxy_on_memory_allocate`).
fn owned(data: *mut u8, len: usize) -> Vec<u8> {
    if data.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: the host filled `len` bytes of a buffer that `proxy_on_memory_allocate` allocated
    // as a `Vec<u8>` of capacity `len`.
    unsafe { Vec::from_raw_parts(data, len, len) }
}

fn header(name: &str) -> Vec<u8> {
    let mut data = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: pointers to locals; the host writes a pointer and a length.
    let status = unsafe {
        proxy_get_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut len,
        )
    };
    if status == 0 {
        owned(data, len)
    } else {
        Vec::new()
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size);
    let data = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    data
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_root: u32, size: usize) -> u32 {
    let mut data = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: pointers to locals; the host writes a pointer and a length.
    let status =
        unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &mut data, &mut len) };
    let config = if status == 0 {
        owned(data, len)
    } else {
        Vec::new()
    };
    match config.as_slice() {
        b"noop" => MODE.set(Mode::Noop),
        b"read" => MODE.set(Mode::Read),
        b"memo" => MODE.set(Mode::Memo),
        _ => return 0,
    }
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(_context: u32, _parent: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(_context: u32, _headers: usize, _eos: u32) -> u32 {
    let mode = MODE.get();
    if mode != Mode::Noop {
        let token = header("authorization");
        let path = header(":path");
        let mut now = 0;
        // SAFETY: a pointer to a local.
        unsafe { proxy_get_current_time_nanoseconds(&mut now) };
        if !token.is_empty() {
            let name = "authorization";
            // SAFETY: a static name.
            unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) };
        }
        if mode == Mode::Memo {
            let preflight = header("access-control-request-method");
            SINK.set(SINK.get() ^ preflight.len() as u64 ^ u64::from(cache_hit(&token, now)));
        }
        SINK.set(SINK.get() ^ now ^ (token.len() + path.len()) as u64);
    }
    CONTINUE
}

/// Whether `token` is cached and unexpired at `now` (ns); caches it (for an hour) when not.
fn cache_hit(token: &[u8], now: u64) -> bool {
    let now = now / 1_000_000_000;
    // FNV-1a: the benchmark's token is the only key, no adversary here.
    let hash = token.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        match memo.get(&hash) {
            Some((text, exp)) if text.as_slice() == token && *exp > now => true,
            _ => {
                if memo.len() < MEMO_ENTRIES {
                    memo.insert(hash, (token.to_vec(), now + 3600));
                }
                false
            }
        }
    })
}
