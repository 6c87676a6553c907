//! The proxy-wasm ABI 0.2.1, both directions, and nothing else: the host functions meshguard
//! imports (as `extern "C"` declarations with safe wrappers returning [`HostError`]) and the
//! callbacks it exports. All `unsafe` and every host call of the crate live here; the rest of
//! `host/` calls the safe functions.
//!
//! # Why our own layer instead of the SDK (proxy-wasm 0.2.5)
//! Envoy skips a callback the module does not export, and every exported one is a crossing into
//! V8 per request. The SDK exports all of them (response headers/body/trailers, log, done,
//! delete, …) and its dispatcher keeps a `HashMap` entry and a `Box<dyn HttpContext>` per
//! request; measured on Envoy 1.40 that costs ~1.1 µs per request, about 7 % of the whole
//! budget at the native `jwt_authn` rate (DEVELOPERS.md, docs/performance.md §2). This module
//! exports only what meshguard uses:
//!
//! | export | why |
//! |---|---|
//! | `proxy_abi_version_0_2_1`, `proxy_on_memory_allocate`, `_initialize` | ABI marker, the host's allocator into our memory, logger + panic hook |
//! | `proxy_on_context_create` | a root context appears (per request: one store of two ids) |
//! | `proxy_on_configure`, `proxy_on_tick`, `proxy_on_queue_ready`, `proxy_on_http_call_response` | the root: config, JWKS fetches, paused requests, counters |
//! | `proxy_on_request_headers` | the decision |
//! | `proxy_on_request_body`, `proxy_on_request_trailers` | hold the body of an undecided request (only requests with a body pay them) |
//! | `proxy_on_done` | the root's shutdown (release fetch leases); for a request, drop its waiter if it was paused (a no-op check otherwise) |
//!
//! Not exported: `proxy_on_vm_start` (the host's default is "started"), `proxy_on_delete`
//! (`proxy_on_done` already forgets a request), `proxy_on_log`, every response callback.
//!
//! Host calls never panic here: every status other than OK is a [`HostError`], and the callers
//! decide (an unreadable header is an absent one, a refused metric is not counted, …).

use std::ptr::{NonNull, null, null_mut};
use std::time::Duration;

pub use crate::engine::HostError;

/// A proxy-wasm `WasmResult` status as a result.
fn from_status(status: u32) -> Result<(), HostError> {
    Err(match status {
        0 => return Ok(()),
        1 => HostError::NotFound,
        2 => HostError::BadArgument,
        3 => HostError::SerializationFailure,
        4 => HostError::ParseFailure,
        6 => HostError::InvalidMemoryAccess,
        7 => HostError::Empty,
        8 => HostError::CasMismatch,
        10 => HostError::InternalFailure,
        12 => HostError::Unimplemented,
        other => HostError::Other(other),
    })
}

pub type HostResult<T> = Result<T, HostError>;

/// proxy-wasm log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// The header maps meshguard reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders = 0,
    HttpCallResponseHeaders = 6,
}

/// The buffers meshguard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// What a request callback answers (`proxy_on_request_*`'s return value): `Pause` is
/// Envoy's StopAllIteration (ABI 0.2): later phases wait too.
fn action_code(action: crate::engine::Action) -> u32 {
    match action {
        crate::engine::Action::Continue => 0,
        crate::engine::Action::Pause => 1,
    }
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_register_shared_queue(
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
}

/// Takes ownership of a buffer the host filled through [`proxy_on_memory_allocate`]; `None`
/// when the host returned no buffer (a null pointer).
///
/// # Safety
/// `ptr`/`len` must come from the host's answer to a call that allocated `len` bytes with
/// [`proxy_on_memory_allocate`] (Envoy allocates exactly the size it returns), or be null.
unsafe fn take_buffer(ptr: *mut u8, len: usize) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    if len == 0 {
        // A zero-size allocation is a dangling pointer (nothing to free).
        return Some(Vec::new());
    }
    // SAFETY: allocated by `proxy_on_memory_allocate` with the global allocator, `Layout` of
    // `len` bytes, align 1, fully written by the host: exactly `Vec<u8>`'s own layout.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Serializes header pairs the way the host reads them: count, then (name length, value
/// length) pairs, then each name and value NUL-terminated (all lengths u32 little-endian).
fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = pairs.iter().fold(4, |n, (k, v)| n + 10 + k.len() + v.len());
    let mut out = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// The host's serialized header pairs (the format of [`serialize_pairs`]); a malformed buffer
/// gives the pairs read up to the fault (never a panic).
fn deserialize_pairs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let word = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let Some(count) = word(0) else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    let mut data = count.saturating_mul(8).saturating_add(4);
    for i in 0..count {
        let lens = i
            .checked_mul(8)
            .and_then(|o| Some((word(o + 4)?, word(o + 8)?)));
        let Some((klen, vlen)) = lens else { break };
        let key_end = data.saturating_add(klen);
        let value_start = key_end.saturating_add(1);
        let value_end = value_start.saturating_add(vlen);
        let (Some(key), Some(value)) =
            (bytes.get(data..key_end), bytes.get(value_start..value_end))
        else {
            break;
        };
        pairs.push((String::from_utf8_lossy(key).into_owned(), value.to_vec()));
        data = value_end.saturating_add(1);
    }
    pairs
}

/// A property path as the host reads it: the parts joined by NUL.
fn serialize_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn millis_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// One line to the host's log.
pub fn log(level: LogLevel, message: &str) -> HostResult<()> {
    // SAFETY: pointer and length of a live &str.
    from_status(unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) })
}

/// The host's wall clock, nanoseconds since the Unix epoch.
pub fn now_nanos() -> HostResult<u64> {
    let mut nanos = 0u64;
    // SAFETY: a valid out-pointer to a u64.
    from_status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Sets (or with zero stops) the calling root context's tick.
pub fn set_tick_period(period: Duration) -> HostResult<()> {
    // SAFETY: no pointers.
    from_status(unsafe { proxy_set_tick_period_milliseconds(millis_u32(period)) })
}

/// Up to `max` bytes of a host buffer from `start`; `None` when the host has no such buffer.
pub fn buffer(kind: BufferType, start: usize, max: usize) -> HostResult<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the answer is taken over by `take_buffer`.
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, start, max, &mut ptr, &mut len) };
    match from_status(status) {
        // SAFETY: the host's answer to this call.
        Ok(()) => Ok(unsafe { take_buffer(ptr, len) }),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first value of header `name` (lower-case) in `map`; `None` when absent.
pub fn header(map: MapType, name: &str) -> HostResult<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: valid key slice and out-pointers; the answer is taken over by `take_buffer`.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut ptr, &mut len)
    };
    match from_status(status) {
        // OK with no buffer: the header is present with an empty value.
        // SAFETY: the host's answer to this call.
        Ok(()) => Ok(Some(unsafe { take_buffer(ptr, len) }.unwrap_or_default())),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every header of `map`, in order (a header sent twice appears twice).
pub fn header_pairs(map: MapType) -> HostResult<Vec<(String, Vec<u8>)>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the answer is taken over by `take_buffer`.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut ptr, &mut len) };
    from_status(status)?;
    // SAFETY: the host's answer to this call.
    let bytes = unsafe { take_buffer(ptr, len) }.unwrap_or_default();
    Ok(deserialize_pairs(&bytes))
}

/// Sets header `name` to `value`, replacing any value it had.
pub fn set_header(map: MapType, name: &str, value: &[u8]) -> HostResult<()> {
    // SAFETY: pointers and lengths of live slices.
    from_status(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every value of header `name`.
pub fn remove_header(map: MapType, name: &str) -> HostResult<()> {
    // SAFETY: pointer and length of a live &str.
    from_status(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// A host property (`["connection", "requested_server_name"]`, …); `None` when absent.
pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let path = serialize_path(path);
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: valid path slice and out-pointers; the answer is taken over by `take_buffer`.
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut ptr, &mut len) };
    match from_status(status) {
        // SAFETY: the host's answer to this call.
        Ok(()) => Ok(unsafe { take_buffer(ptr, len) }),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Proxy shared data: the value (`None` when the key is absent or empty) and its CAS (0 when
/// absent).
pub fn shared_data(key: &str) -> HostResult<(Option<Vec<u8>>, u32)> {
    let (mut ptr, mut len, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: valid key slice and out-pointers; the answer is taken over by `take_buffer`.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) };
    match from_status(status) {
        // SAFETY: the host's answer to this call.
        Ok(()) => Ok((
            unsafe { take_buffer(ptr, len) }.filter(|v| !v.is_empty()),
            cas,
        )),
        Err(HostError::NotFound) => Ok((None, 0)),
        Err(e) => Err(e),
    }
}

/// Writes proxy shared data; `cas` 0 writes unconditionally, otherwise it must match
/// ([`HostError::CasMismatch`]).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    // SAFETY: pointers and lengths of live slices.
    from_status(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Registers a shared queue owned by the calling root context; its id.
pub fn register_shared_queue(name: &str) -> HostResult<u32> {
    let mut id = 0u32;
    // SAFETY: valid name slice and out-pointer.
    from_status(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Takes one item off a queue; `None` when it is empty.
pub fn dequeue_shared_queue(queue: u32) -> HostResult<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the answer is taken over by `take_buffer`.
    let status = unsafe { proxy_dequeue_shared_queue(queue, &mut ptr, &mut len) };
    match from_status(status) {
        // SAFETY: the host's answer to this call.
        Ok(()) => Ok(Some(unsafe { take_buffer(ptr, len) }.unwrap_or_default())),
        Err(HostError::Empty) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Puts one item on a queue (the owner's `proxy_on_queue_ready` runs later).
pub fn enqueue_shared_queue(queue: u32, value: &[u8]) -> HostResult<()> {
    // SAFETY: pointer and length of a live slice.
    from_status(unsafe { proxy_enqueue_shared_queue(queue, value.as_ptr(), value.len()) })
}

/// Resumes the effective context's paused request.
pub fn continue_request() -> HostResult<()> {
    // SAFETY: no pointers. Stream type 0: the HTTP request.
    from_status(unsafe { proxy_continue_stream(0) })
}

/// Answers the effective context's request locally (the host sends it after the callback).
pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
    let headers = serialize_pairs(headers);
    // SAFETY: pointers and lengths of live slices; no details; grpc_status -1 = none.
    from_status(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Dispatches an HTTP call (no body, no trailers) to `cluster`; the token its
/// `proxy_on_http_call_response` will carry.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], timeout: Duration) -> HostResult<u32> {
    let headers = serialize_pairs(headers);
    let trailers = serialize_pairs(&[]);
    let mut token = 0u32;
    // SAFETY: pointers and lengths of live slices, a valid out-pointer.
    from_status(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            null(),
            0,
            trailers.as_ptr(),
            trailers.len(),
            millis_u32(timeout),
            &mut token,
        )
    })?;
    Ok(token)
}

/// Makes later host calls of this callback act on `context_id` (BAD_ARGUMENT: it is gone).
pub fn set_effective_context(context_id: u32) -> HostResult<()> {
    // SAFETY: no pointers.
    from_status(unsafe { proxy_set_effective_context(context_id) })
}

/// Defines (or finds) a counter; its id.
pub fn define_counter(name: &str) -> HostResult<u32> {
    let mut id = 0u32;
    // SAFETY: valid name slice and out-pointer. Metric type 0: counter.
    from_status(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `delta` to a metric.
pub fn increment_metric(id: u32, delta: i64) -> HostResult<()> {
    // SAFETY: no pointers.
    from_status(unsafe { proxy_increment_metric(id, delta) })
}

// ---------------------------------------------------------------------------------------------
// Logging and panics.

/// `log` records to `proxy_log` (max level info, as before).
struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        let message = record.args().to_string();
        // Nothing to do if the host refuses a log line.
        let _ = log(level, &message);
    }

    fn flush(&self) {}
}

/// Installs the logger and the panic hook (idempotent). The hook logs the panic message at
/// critical level: with `panic = "abort"` the VM then traps, and the message is the only trace
/// of why (Envoy logs it; the harness attaches it to the trap).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
        std::panic::set_hook(Box::new(|info| {
            let _ = log(LogLevel::Critical, &info.to_string());
        }));
    }
}

// ---------------------------------------------------------------------------------------------
// Exports. Only the callbacks meshguard needs (see the module docs); each one hands over to the
// safe code in `host/` at once. (Native builds link only what they call: unit tests and the CLI
// never reach these, so the unresolved proxy-wasm imports are dropped with them.)

/// The ABI version marker the host looks for.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host allocates its answers (header values, buffers, …) in our memory through this;
/// [`take_buffer`] takes them back as `Vec<u8>`. A zero size gets a dangling non-null pointer
/// (nothing is allocated); a failed allocation returns null, which the host reports as an error.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let Ok(layout) = std::alloc::Layout::array::<u8>(size) else {
        return null_mut();
    };
    if size == 0 {
        return NonNull::<u8>::dangling().as_ptr();
    }
    // SAFETY: a non-zero size layout.
    unsafe { std::alloc::alloc(layout) }
}

/// Module start (Envoy calls `_initialize` once per VM, before any context).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    init();
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    super::on_context_create(context_id, parent_id);
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(root_id: u32, config_size: usize) -> u32 {
    u32::from(super::on_configure(root_id, config_size))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    super::on_tick(root_id);
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_queue_ready(root_id: u32, queue_id: u32) {
    super::on_queue_ready(root_id, queue_id);
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    super::on_http_call_response(root_id, token, num_headers, body_size);
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    end_of_stream: u32,
) -> u32 {
    action_code(super::on_request_headers(context_id, end_of_stream != 0))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_body(
    context_id: u32,
    _body_size: usize,
    _end_of_stream: u32,
) -> u32 {
    action_code(super::on_request_body(context_id))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _num_trailers: usize) -> u32 {
    action_code(super::on_request_body(context_id))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(context_id: u32) -> u32 {
    u32::from(super::on_done(context_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_serialize_as_the_host_reads_them() {
        let bytes = serialize_pairs(&[("a", "bc"), (":x", "")]);
        let mut want = Vec::new();
        for n in [2u32, 1, 2, 2, 0] {
            want.extend_from_slice(&n.to_le_bytes());
        }
        want.extend_from_slice(b"a\0bc\0:x\0\0");
        assert_eq!(bytes, want);
        assert_eq!(serialize_pairs(&[]), 0u32.to_le_bytes().to_vec());
    }

    #[test]
    fn pairs_round_trip_and_malformed_buffers_stop_cleanly() {
        let bytes = serialize_pairs(&[("x-a", "1"), ("x-a", ""), (":path", "/p")]);
        let pairs = deserialize_pairs(&bytes);
        assert_eq!(
            pairs,
            [
                ("x-a".to_owned(), b"1".to_vec()),
                ("x-a".to_owned(), Vec::new()),
                (":path".to_owned(), b"/p".to_vec())
            ]
        );
        for cut in 0..bytes.len() {
            let head = bytes.get(..cut).unwrap_or_default();
            assert!(deserialize_pairs(head).len() <= 3);
        }
        let mut huge = bytes.clone();
        if let Some(count) = huge.first_mut() {
            *count = 0xff;
        }
        assert!(deserialize_pairs(&huge).len() <= 3);
    }

    #[test]
    fn property_paths_are_nul_joined() {
        assert_eq!(
            serialize_path(&["connection", "mtls"]),
            b"connection\0mtls".to_vec()
        );
        assert_eq!(serialize_path(&[]), Vec::<u8>::new());
    }

    #[test]
    fn statuses_map_to_errors() {
        assert_eq!(from_status(0), Ok(()));
        assert_eq!(from_status(2), Err(HostError::BadArgument));
        assert_eq!(from_status(8), Err(HostError::CasMismatch));
        assert_eq!(from_status(99), Err(HostError::Other(99)));
        assert_eq!(HostError::Other(99).to_string(), "host: status 99");
    }

    #[test]
    fn allocations_come_back_as_vecs() {
        let p = proxy_on_memory_allocate(5);
        assert!(!p.is_null());
        // SAFETY: allocated just above with 5 bytes; written before being read.
        let v = unsafe {
            std::ptr::copy_nonoverlapping(b"hello".as_ptr(), p, 5);
            take_buffer(p, 5)
        };
        assert_eq!(v.as_deref(), Some(&b"hello"[..]));
        // SAFETY: a zero-size answer and a null one.
        unsafe {
            assert_eq!(
                take_buffer(proxy_on_memory_allocate(0), 0),
                Some(Vec::new())
            );
            assert_eq!(take_buffer(null_mut(), 0), None);
        }
    }
}
