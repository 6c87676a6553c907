//! The proxy-wasm glue: the root context and the request callbacks. All host calls go through
//! [`abi`], our own thin layer over the proxy-wasm ABI 0.2.1 (no SDK: see `abi`'s docs and
//! DEVELOPERS.md for why and what it saves).
//!
//! # Contexts
//! A VM holds one root context per plugin configuration that shares it (usually one). Each
//! root parses its configuration once in `on_configure` and keeps one [`vm::Vm`]
//! (`Rc<RefCell<_>>`, with the immutable compiled config as an `Rc`). A request has **no
//! state of its own** unless it waits: `proxy_on_request_headers` finds its root (the one
//! named by the `proxy_on_context_create` Envoy makes just before it), decides, and is done.
//! Only two kinds of request leave an entry behind, both dropped in `proxy_on_done`:
//! a paused request (a waiter in its root's `Vm`, keyed by context id) and a request answered
//! locally from its headers whose body is still to come (so its body callbacks keep pausing).
//!
//! # Where the JWKS I/O runs, and why
//! An HTTP-call response is delivered to the context that dispatched the call, and a fetch
//! dispatched from a request's context would die with that request (client gone, timeout), so
//! **every fetch is dispatched by the root context**:
//!
//! - Per root, one [`vm::Vm`] holds the compiled configuration, one JWKS state machine
//!   ([`crate::jwks::IssuerKeys`]) per rule, the outstanding fetches and the **waiters**
//!   (paused requests).
//! - A request whose keys are not ready registers as a waiter (its tokens, the rule, the keys'
//!   generation, a deadline = the rule's `timeout`) and returns `Pause`. It then enqueues to
//!   a **VM-unique shared queue** the root registered (named after the VM nonce), so the
//!   root's `on_queue_ready` runs promptly and dispatches the fetch; the root's tick (1 s,
//!   100 ms while waiters exist) is the fallback and enforces deadlines.
//! - When the keys' generation moves (a fetch finished, own or a peer VM's) or a deadline
//!   passes, the root takes the waiter out (releasing every `RefCell` borrow), switches the
//!   host to the request with `set_effective_context(id)`, re-decides it with the same code as
//!   the request callback ([`request::decide`]) and resumes it or sends the 401/403, then
//!   switches back. A waiter whose stream is gone is simply dropped: `proxy_on_done` removes
//!   it when the stream ends, and should one survive, the host refuses
//!   `set_effective_context` (or the resume / local reply, which is then only logged). A
//!   deadline gives 401 "JWKS unavailable": never a 5xx, never a fake key.
//! - Across worker VMs, the state machine coordinates through proxy shared data (a CAS-guarded
//!   lease, so one VM fetches per refresh, and a shared record of the last good JWKS that the
//!   others adopt, re-parsing only when it changed); the root polls it on every tick.
//!
//! Paused requests are resumed or answered only from `on_tick` / `on_queue_ready` (an HTTP-call
//! response enqueues a wake-up instead of resuming directly), and no `RefCell` of ours is
//! borrowed across a host call that could re-enter the module (resume, local reply), so even a
//! host that delivered a resumed request's callbacks synchronously would be safe (Envoy defers
//! them anyway).
//!
//! Per request (the lean path): remove client-sent output headers, read only the headers some
//! rule reads (by name, never the whole map), answer a token seen before from the per-VM
//! verified-token cache ([`crate::cache`]), and read the clock only when there is a token.
//! The per-request counters (cache hit/miss, allowed, no_token) are counted in the VM and exported as
//! deltas on the root's tick; rarer ones (denials, fetches) are host metrics at once.
//!
//! Time comes only from the host (`get_current_time_nanoseconds`), never `SystemTime::now()`.

mod abi;
mod attrs;
pub mod auth;
mod metrics;
mod request;
mod vm;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};

use crate::config::{CompiledConfig, KeySource};
use crate::jwks::{self, JwksUri, Poll};
use abi::{Action, BufferType, MapType};
use metrics::Metrics;
use request::Finish;
use vm::{FetchKind, HostStore, Pending, Vm};

/// Regular tick: refresh ahead of expiry, backoff retries, adopting peers' keys, exporting the
/// counters kept in the VM.
const TICK: Duration = Duration::from_secs(1);
/// Tick while requests wait for keys (deadline granularity).
const FAST_TICK: Duration = Duration::from_millis(100);
/// The first tick after configuration starts the first fetch.
const FIRST_TICK: Duration = Duration::from_millis(20);

thread_local! {
    /// The contexts of this VM (a wasm VM is single-threaded: one per VM).
    static CONTEXTS: Contexts = Contexts::default();
}

/// What the VM keeps about its contexts. Every borrow here is short and makes no host call.
#[derive(Default)]
struct Contexts {
    /// Root contexts in creation order.
    roots: RefCell<Vec<Rc<MeshguardRoot>>>,
    /// The last request context created and its root: Envoy creates a request's context right
    /// before its `proxy_on_request_headers`, so this answers "which root" without a map.
    last_stream: Cell<(u32, u32)>,
    /// Request context → root, recorded only while the VM has more than one root.
    streams: RefCell<HashMap<u32, u32>>,
    /// Requests answered locally from their headers whose body or trailers are still to come.
    answered: RefCell<Vec<u32>>,
}

/// The root context with this id.
fn root(id: u32) -> Option<Rc<MeshguardRoot>> {
    CONTEXTS.with(|c| {
        let roots = c.roots.try_borrow().ok()?;
        roots.iter().find(|r| r.context_id == id).cloned()
    })
}

/// The root a request context belongs to.
fn root_of_stream(context_id: u32) -> Option<Rc<MeshguardRoot>> {
    CONTEXTS.with(|c| {
        let roots = c.roots.try_borrow().ok()?;
        if let [only] = roots.as_slice() {
            return Some(Rc::clone(only));
        }
        let (last, last_root) = c.last_stream.get();
        let id = if last == context_id {
            Some(last_root)
        } else {
            c.streams
                .try_borrow()
                .ok()
                .and_then(|s| s.get(&context_id).copied())
        };
        match id {
            Some(id) => roots.iter().find(|r| r.context_id == id).cloned(),
            // Created while the oldest root was the only one.
            None => roots.first().cloned(),
        }
    })
}

fn on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        if parent_id == 0 {
            abi::init();
            if let Ok(mut roots) = c.roots.try_borrow_mut() {
                roots.push(Rc::new(MeshguardRoot {
                    context_id,
                    vm: RefCell::new(None),
                    tick: Cell::new(None),
                }));
            }
            return;
        }
        c.last_stream.set((context_id, parent_id));
        if c.roots.try_borrow().is_ok_and(|r| r.len() > 1)
            && let Ok(mut streams) = c.streams.try_borrow_mut()
        {
            streams.insert(context_id, parent_id);
        }
    });
}

fn on_configure(root_id: u32, config_size: usize) -> bool {
    root(root_id).is_some_and(|r| r.on_configure(config_size))
}

fn on_tick(root_id: u32) {
    if let Some(root) = root(root_id) {
        root.pump();
    }
}

fn on_queue_ready(root_id: u32, queue_id: u32) {
    // Drain the wake-ups (their content is irrelevant).
    while let Ok(Some(_)) = abi::dequeue_shared_queue(queue_id) {}
    if let Some(root) = root(root_id) {
        root.pump();
    }
}

fn on_http_call_response(root_id: u32, token: u32, num_headers: usize, body_size: usize) {
    if let Some(root) = root(root_id) {
        root.on_http_call_response(token, num_headers, body_size);
    }
}

/// The end of a context. A root: release its fetch leases and flush its counters. A request:
/// forget whatever it left behind (nothing, for a request decided at once).
fn on_done(context_id: u32) -> bool {
    let ended_root = CONTEXTS.with(|c| {
        let mut roots = c.roots.try_borrow_mut().ok()?;
        let at = roots.iter().position(|r| r.context_id == context_id)?;
        Some(roots.remove(at))
    });
    if let Some(root) = ended_root {
        root.on_done();
        return true;
    }
    CONTEXTS.with(|c| {
        if let Ok(mut streams) = c.streams.try_borrow_mut()
            && !streams.is_empty()
        {
            streams.remove(&context_id);
        }
        if let Ok(mut answered) = c.answered.try_borrow_mut()
            && !answered.is_empty()
        {
            answered.retain(|&id| id != context_id);
        }
        // A request that goes away while waiting (client gone, stream reset): drop its waiter.
        if let Ok(roots) = c.roots.try_borrow() {
            for root in roots.iter() {
                if let Some(vm) = root.vm()
                    && let Ok(mut state) = vm.try_borrow_mut()
                    && !state.waiters.is_empty()
                {
                    state.waiters.retain(|w| w.context_id != context_id);
                }
            }
        }
    });
    true
}

struct MeshguardRoot {
    context_id: u32,
    vm: RefCell<Option<Rc<RefCell<Vm>>>>,
    tick: Cell<Option<Duration>>,
}

impl MeshguardRoot {
    fn vm(&self) -> Option<Rc<RefCell<Vm>>> {
        self.vm.try_borrow().ok().and_then(|vm| vm.clone())
    }

    fn on_http_call_response(&self, token_id: u32, num_headers: usize, body_size: usize) {
        self.on_fetch_response(token_id, num_headers, body_size);
        // Re-decide the waiters from `on_queue_ready` rather than here, so a resumed request
        // never runs inside the callback of the fetch (Envoy defers either way).
        let queue = self
            .vm()
            .and_then(|vm| vm.try_borrow().ok().and_then(|s| s.wake_queue));
        match queue {
            Some(queue) if abi::enqueue_shared_queue(queue, b"f").is_ok() => {}
            _ => self.pump(),
        }
    }

    /// The plugin or VM is going away: export the last counter deltas, and release any fetch
    /// lease this VM holds so a peer VM fetches at its next poll instead of waiting for the
    /// lease to lapse.
    fn on_done(&self) {
        if let Some(vm) = self.vm() {
            if let Ok(mut state) = vm.try_borrow_mut() {
                state.flush_counters();
            }
            abandon_fetches(&vm);
        }
    }

    fn on_configure(&self, plugin_configuration_size: usize) -> bool {
        let bytes = abi::buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        let config = match CompiledConfig::from_json(&bytes) {
            Ok(config) => Rc::new(config),
            Err(e) => {
                error!("meshguard: invalid configuration: {e}");
                return false;
            }
        };
        for warning in config.policies.warnings() {
            warn!("meshguard: {warning}");
        }
        if let Some(old) = self.vm.try_borrow_mut().ok().and_then(|mut vm| vm.take()) {
            abandon_fetches(&old);
            // A reconfiguration: requests waiting under the old configuration are answered.
            let waiters = match old.try_borrow_mut() {
                Ok(mut state) => {
                    state.flush_counters();
                    std::mem::take(&mut state.waiters)
                }
                Err(_) => Vec::new(),
            };
            for waiter in waiters {
                if abi::set_effective_context(waiter.context_id).is_ok() {
                    request::deny(
                        &waiter.config,
                        None,
                        &crate::output::Denial::JwksUnavailable,
                        &auth::Subject::default(),
                    );
                }
            }
            let _ = abi::set_effective_context(self.context_id);
        }
        let me = vm::allocate_vm_nonce();
        let wake_queue = abi::register_shared_queue(&format!("meshguard/wake/{me}")).ok();
        let state = Vm::new(Rc::clone(&config), me, wake_queue);
        let remote = state.has_remote();
        info!(
            "meshguard: configured {} jwtRules ({} fetched), vm {me}",
            config.rules.len(),
            config
                .rules
                .iter()
                .filter(|r| !matches!(r.keys, KeySource::Inline(_)))
                .count()
        );
        if let Ok(mut vm) = self.vm.try_borrow_mut() {
            *vm = Some(Rc::new(RefCell::new(state)));
        }
        // Fetch from the first tick, not from here: Envoy configures (and at once destroys)
        // VMs that never serve, and a fetch dispatched from one of those would be lost while
        // its lease kept every other VM from fetching until it lapsed. A request arriving
        // before the first tick wakes the root through the queue anyway.
        // Without fetches the tick still exports the counters kept in the VM (`no_token`
        // counts under any configuration).
        let first = if remote { FIRST_TICK } else { TICK };
        if abi::set_tick_period(first).is_ok() {
            self.tick.set(Some(first));
        }
        true
    }
}

/// Releases the fetch leases this VM holds (see [`crate::jwks::IssuerKeys::abandon`]).
fn abandon_fetches(vm: &Rc<RefCell<Vm>>) {
    let (Ok(mut state), Some(now)) = (vm.try_borrow_mut(), vm::now_ms()) else {
        return;
    };
    let me = state.me;
    for keys in state.keys.iter_mut() {
        keys.abandon(now, &mut HostStore, me);
    }
    state.pending.clear();
}

impl MeshguardRoot {
    /// The root's one step: poll every fetched source (adopt peers' keys, dispatch a due fetch
    /// when we win the lease), then re-decide the waiters whose keys changed or whose deadline
    /// passed, then set the tick period.
    fn pump(&self) {
        let Some(vm) = self.vm() else { return };
        let Some(now) = vm::now_ms() else { return };

        let due: Vec<usize> = {
            let Ok(mut state) = vm.try_borrow_mut() else {
                return;
            };
            let state = &mut *state;
            let me = state.me;
            // A fetch whose callback never came (lost) no longer blocks its rule.
            state.pending.retain(|p| now < p.expires_ms);
            let busy: Vec<usize> = state.pending.iter().map(|p| p.rule).collect();
            let metrics = &state.metrics;
            state
                .keys
                .iter_mut()
                .enumerate()
                .filter(|(rule, _)| !busy.contains(rule))
                .filter_map(|(rule, keys)| {
                    // With keys in hand, a wanted fetch is an unknown-kid refetch.
                    let forced = keys.wants_fetch() && keys.keys(now).is_some();
                    let fetch = keys.poll(now, &mut HostStore, me) == Poll::Fetch;
                    if fetch && forced {
                        Metrics::bump_rule(&metrics.unknown_kid_refetch, Some(rule));
                    }
                    fetch.then_some(rule)
                })
                .collect()
        };
        for rule in due {
            self.start_fetch(&vm, rule, now);
        }

        let ready: Vec<vm::Waiter> = {
            let Ok(mut state) = vm.try_borrow_mut() else {
                return;
            };
            let state = &mut *state;
            let mut ready = Vec::new();
            let mut i = 0;
            while i < state.waiters.len() {
                let moved = state.waiters.get(i).is_some_and(|w| {
                    now >= w.deadline_ms
                        || state
                            .keys
                            .get(w.rule)
                            .is_none_or(|k| k.generation() != w.generation)
                });
                if moved {
                    ready.push(state.waiters.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            ready
        };
        for waiter in ready {
            self.resume(&vm, waiter, now);
        }

        if let Ok(mut state) = vm.try_borrow_mut() {
            state.flush_counters();
        }

        let waiting = vm.try_borrow().is_ok_and(|s| !s.waiters.is_empty());
        // Always a tick: it also exports the counters kept in the VM (cache, allowed, no_token).
        let want = if waiting { FAST_TICK } else { TICK };
        if self.tick.get() != Some(want) && abi::set_tick_period(want).is_ok() {
            self.tick.set(Some(want));
        }
    }

    /// Re-decides a paused request on its behalf.
    fn resume(&self, vm: &Rc<RefCell<Vm>>, waiter: vm::Waiter, now: u64) {
        if abi::set_effective_context(waiter.context_id).is_err() {
            // The request is gone.
            return;
        }
        let finish = if now >= waiter.deadline_ms
            && vm.try_borrow().map_or(true, |s| {
                s.keys
                    .get(waiter.rule)
                    .is_none_or(|k| k.generation() == waiter.generation)
            }) {
            request::deny(
                &waiter.config,
                Some(vm),
                &crate::output::Denial::JwksUnavailable,
                &auth::Subject {
                    rule: Some(waiter.rule),
                    issuer: waiter
                        .config
                        .rules
                        .get(waiter.rule)
                        .map(|r| r.issuer.clone()),
                    ..auth::Subject::default()
                },
            )
        } else {
            request::decide(
                vm,
                &waiter.config,
                waiter.context_id,
                waiter.found,
                waiter.progress,
                now,
            )
        };
        if finish == Finish::Continue
            && let Err(status) = abi::continue_request()
        {
            warn!(
                "meshguard: could not resume request {}: {status}",
                waiter.context_id
            );
        }
        let _ = abi::set_effective_context(self.context_id);
    }

    /// Dispatches the fetch of `rule`'s keys (or its OIDC discovery document first).
    fn start_fetch(&self, vm: &Rc<RefCell<Vm>>, rule: usize, now: u64) {
        let (cluster, uri, kind, timeout) = {
            let Ok(state) = vm.try_borrow() else { return };
            let Some(compiled) = state.config.rules.get(rule) else {
                return;
            };
            match &compiled.keys {
                KeySource::Inline(_) => return,
                KeySource::Remote(source) => (
                    source.cluster.clone(),
                    source.uri.clone(),
                    FetchKind::Jwks,
                    compiled.timeout,
                ),
                KeySource::Discovery(source) => match state.discovered.get(rule).cloned().flatten()
                {
                    Some(jwks_uri) => (
                        source.cluster.clone(),
                        jwks_uri,
                        FetchKind::Jwks,
                        compiled.timeout,
                    ),
                    None => (
                        source.cluster.clone(),
                        source.uri.clone(),
                        FetchKind::Discovery,
                        compiled.timeout,
                    ),
                },
            }
        };
        self.dispatch(vm, rule, &cluster, &uri, kind, timeout, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        vm: &Rc<RefCell<Vm>>,
        rule: usize,
        cluster: &str,
        uri: &JwksUri,
        kind: FetchKind,
        timeout: Duration,
        now: u64,
    ) {
        let headers = [
            (":method", "GET"),
            (":authority", uri.authority.as_str()),
            (":path", uri.path.as_str()),
            (":scheme", uri.scheme.as_str()),
            ("accept", "application/json"),
            ("user-agent", "meshguard"),
        ];
        let result = abi::http_call(cluster, &headers, timeout);
        let Ok(mut state) = vm.try_borrow_mut() else {
            return;
        };
        match result {
            Ok(token) => state.pending.push(Pending {
                token,
                rule,
                kind,
                expires_ms: now
                    .saturating_add(vm::duration_ms(timeout))
                    .saturating_add(vm::CALLBACK_SLACK_MS),
            }),
            Err(status) => {
                warn!(
                    "meshguard: JWKS fetch for jwtRules[{rule}] not dispatched to cluster {cluster:?}: {status}"
                );
                let state = &mut *state;
                Metrics::bump_rule(&state.metrics.fetch_failed, Some(rule));
                let me = state.me;
                if let Some(keys) = state.keys.get_mut(rule) {
                    keys.fetch_failed(now, &mut HostStore, me);
                }
            }
        }
    }

    /// A fetch of ours answered (or failed: Envoy answers a reset/timeout with no headers).
    fn on_fetch_response(&self, token_id: u32, num_headers: usize, body_size: usize) {
        let Some(vm) = self.vm() else { return };
        let Some(now) = vm::now_ms() else { return };
        let pending = {
            let Ok(mut state) = vm.try_borrow_mut() else {
                return;
            };
            let Some(at) = state.pending.iter().position(|p| p.token == token_id) else {
                return;
            };
            state.pending.swap_remove(at)
        };
        // A reset call arrives with no headers, and then Envoy has no response header map at
        // all: reading one answers BAD_ARGUMENT, which the SDK turns into a panic (a dead VM).
        // So with no headers, read none: the fetch simply failed.
        let has_headers = num_headers > 0;
        let status = has_headers
            .then(|| abi::header(MapType::HttpCallResponseHeaders, ":status"))
            .and_then(Result::ok)
            .flatten()
            .and_then(|s| String::from_utf8(s).ok())
            .and_then(|s| s.parse::<u32>().ok());
        let body = if status == Some(200) && body_size <= jwks::MAX_BODY_BYTES {
            abi::buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
        } else {
            None
        };
        let rule = pending.rule;
        let result = jwks::parse_response(status, body.as_deref(), body_size);
        let max_age = has_headers
            .then(|| abi::header(MapType::HttpCallResponseHeaders, "cache-control"))
            .and_then(Result::ok)
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| jwks::max_age_secs(&v));
        let follow_up = {
            let Ok(mut state) = vm.try_borrow_mut() else {
                return;
            };
            apply_fetch_result(&mut state, rule, pending.kind, result, max_age, now)
        };
        // Discovery found the jwks_uri: we still hold the lease, fetch the keys now.
        if let Some((cluster, uri, timeout)) = follow_up {
            self.dispatch(&vm, rule, &cluster, &uri, FetchKind::Jwks, timeout, now);
        }
    }
}

/// Feeds a fetch outcome to the rule's state machine and counters. Returns the JWKS fetch to
/// dispatch next when a discovery document named its `jwks_uri`.
fn apply_fetch_result(
    state: &mut Vm,
    rule: usize,
    kind: FetchKind,
    result: Result<&[u8], jwks::FetchError>,
    max_age: Option<u64>,
    now: u64,
) -> Option<(String, JwksUri, Duration)> {
    let me = state.me;
    let compiled = state.config.rules.get(rule)?;
    let issuer = compiled.issuer.clone();
    let timeout = compiled.timeout;
    let cluster = match &compiled.keys {
        KeySource::Remote(source) | KeySource::Discovery(source) => source.cluster.clone(),
        KeySource::Inline(_) => return None,
    };
    let failed = |state: &mut Vm, why: &dyn std::fmt::Display| {
        Metrics::bump_rule(&state.metrics.fetch_failed, Some(rule));
        warn!("meshguard: JWKS fetch for issuer {issuer} failed: {why}");
        if let Some(keys) = state.keys.get_mut(rule) {
            keys.fetch_failed(now, &mut HostStore, me);
        }
    };
    match (kind, result) {
        (FetchKind::Jwks, Ok(body)) => {
            let keys = state.keys.get_mut(rule)?;
            match keys.fetch_succeeded(now, body, max_age, &mut HostStore, me) {
                Ok(()) => {
                    Metrics::bump_rule(&state.metrics.fetch_ok, Some(rule));
                    info!(
                        "meshguard: JWKS for issuer {issuer} fetched ({} bytes)",
                        body.len()
                    );
                }
                Err(why) => {
                    // fetch_succeeded already recorded the failure (backoff).
                    Metrics::bump_rule(&state.metrics.fetch_failed, Some(rule));
                    warn!("meshguard: JWKS for issuer {issuer} refused: {why}");
                }
            }
            None
        }
        (FetchKind::Discovery, Ok(body)) => {
            let found = jwks::parse_discovery(body).and_then(|uri| {
                JwksUri::parse(&uri).map_err(|e| jwks::FetchError::BadBody(e.to_string()))
            });
            match found {
                Ok(uri) => {
                    if let Some(slot) = state.discovered.get_mut(rule) {
                        *slot = Some(uri.clone());
                    }
                    Some((cluster, uri, timeout))
                }
                Err(e) => {
                    failed(state, &format_args!("OIDC discovery: {e}"));
                    None
                }
            }
        }
        (_, Err(e)) => {
            failed(state, &e);
            None
        }
    }
}

/// Answers the current request locally (fail closed) and remembers it if a body may follow.
fn refuse(context_id: u32, end_of_stream: bool, body: &[u8]) -> Action {
    let _ = abi::send_local_response(401, &[], body);
    answered(context_id, end_of_stream);
    Action::Pause
}

/// A request answered from its headers: if its body or trailers are still to come, their
/// callbacks must keep pausing (see [`on_request_body`]), until `proxy_on_done`.
fn answered(context_id: u32, end_of_stream: bool) {
    if !end_of_stream {
        CONTEXTS.with(|c| {
            if let Ok(mut answered) = c.answered.try_borrow_mut() {
                answered.push(context_id);
            }
        });
    }
}

fn on_request_headers(context_id: u32, end_of_stream: bool) -> Action {
    let Some(vm) = root_of_stream(context_id).and_then(|r| r.vm()) else {
        // Never configured: fail closed.
        return refuse(context_id, end_of_stream, b"meshguard is not configured");
    };
    let Some(config) = vm.try_borrow().ok().map(|s| Rc::clone(&s.config)) else {
        return refuse(context_id, end_of_stream, b"meshguard is busy");
    };
    request::strip_output_headers(&config);
    let mut found = request::find_tokens(&config);
    // Only a request with a token pays for the preflight test (three header reads at most).
    if !found.is_empty()
        && config.bypass_cors_preflight
        && crate::extract::is_cors_preflight(request::header)
    {
        found.clear();
    }
    // No token, no clock needed (one host call less on the common anonymous path).
    let now = if found.is_empty() {
        Some(0)
    } else {
        vm::now_ms()
    };
    let Some(now) = now else {
        return refuse(context_id, end_of_stream, b"host clock unavailable");
    };
    match request::decide(
        &vm,
        &config,
        context_id,
        found,
        auth::Progress::default(),
        now,
    ) {
        Finish::Continue => Action::Continue,
        Finish::Responded => {
            answered(context_id, end_of_stream);
            Action::Pause
        }
        Finish::Waiting => Action::Pause,
    }
}

/// Whether the request is still undecided: registered as a waiter (the root removes it when it
/// resumes or answers the request) or answered locally from its headers.
fn undecided(context_id: u32) -> bool {
    CONTEXTS.with(|c| {
        if c.answered
            .try_borrow()
            .map_or(true, |a| a.contains(&context_id))
        {
            return true;
        }
        let Ok(roots) = c.roots.try_borrow() else {
            return true;
        };
        roots.iter().any(|root| {
            root.vm().is_some_and(|vm| {
                vm.try_borrow().map_or(true, |s| {
                    s.waiters.iter().any(|w| w.context_id == context_id)
                })
            })
        })
    })
}

/// Body and trailers. While the request waits for keys, its body must not move on: for Envoy,
/// `Continue` from the body callback after a paused header callback resumes the stream, which
/// would send an undecided request upstream. `Pause` buffers the body until the root resumes it.
fn on_request_body(context_id: u32) -> Action {
    if undecided(context_id) {
        Action::Pause
    } else {
        Action::Continue
    }
}
