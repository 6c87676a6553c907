//! The proxy-wasm glue: RootContext, HttpContext. The only code that calls proxy-wasm.
//!
//! # Where the JWKS I/O runs, and why
//! The SDK routes an HTTP-call response to the context that was active when
//! `dispatch_http_call` was made, and drops it silently when that context is gone. A fetch
//! dispatched from a request's context would die with that request (client gone, timeout), so
//! **every fetch is dispatched by the root context**:
//!
//! - Per VM, one [`vm::Vm`] (`Rc<RefCell<_>>`) is shared by the root and every HTTP context:
//!   the compiled configuration, one JWKS state machine ([`crate::jwks::IssuerKeys`]) per rule,
//!   the outstanding fetches and the **waiters** (paused requests).
//! - A request whose keys are not ready registers as a waiter (its tokens, the rule, the keys'
//!   generation, a deadline = the rule's `timeout`) and returns `Action::Pause`. It then
//!   enqueues to a **VM-unique shared queue** the root registered (named after the VM nonce),
//!   so the root's `on_queue_ready` runs promptly and dispatches the fetch; the root's tick
//!   (1 s, 100 ms while waiters exist) is the fallback and enforces deadlines.
//! - When the keys' generation moves (a fetch finished, own or a peer VM's) or a deadline
//!   passes, the root takes the waiter out (releasing every `RefCell` borrow), switches the
//!   host to the request with `set_effective_context(id)`, re-decides it with the same code as
//!   the HTTP context ([`request::decide`]) and resumes it or sends the 401/403, then switches
//!   back. A waiter whose context is gone (the host refuses `set_effective_context`) is
//!   dropped. A deadline gives 401 "JWKS unavailable": never a 5xx, never a fake key.
//! - Across worker VMs, the state machine coordinates through proxy shared data (a CAS-guarded
//!   lease, so one VM fetches per refresh, and a shared record of the last good JWKS that the
//!   others adopt, re-parsing only when it changed); the root polls it on every tick.
//!
//! Paused requests are resumed or answered only from `on_tick` / `on_queue_ready` (an HTTP-call
//! response enqueues a wake-up instead of resuming directly): there the SDK's dispatcher holds
//! only its root table borrowed, and our shared state is never borrowed while a host call that
//! could re-enter the module is made, so even a host that delivers a resumed request's callbacks
//! synchronously is safe (Envoy defers them anyway).
//!
//! Per request (the lean path): remove client-sent output headers, read only the headers some
//! rule reads (by name, never the whole map), answer a token seen before from the per-VM
//! verified-token cache ([`crate::cache`]), and read the clock only when there is a token.
//! Counters are host metrics; the cache's are exported as deltas on the root's tick.
//!
//! Time comes only from the host (`get_current_time`). Host calls are made through
//! `proxy_wasm::hostcalls` and their `Result`s checked: the SDK's trait helpers `unwrap`.

mod attrs;
pub mod auth;
mod metrics;
mod request;
mod vm;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

use crate::config::{CompiledConfig, KeySource};
use crate::jwks::{self, JwksUri, Poll};
use metrics::Metrics;
use request::Finish;
use vm::{FetchKind, HostStore, Pending, Vm};

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    start();
}}

/// Regular tick: refresh ahead of expiry, backoff retries, adopting peers' keys.
const TICK: Duration = Duration::from_secs(1);
/// Tick while requests wait for keys (deadline granularity).
const FAST_TICK: Duration = Duration::from_millis(100);
/// The first tick after configuration starts the first fetch.
const FIRST_TICK: Duration = Duration::from_millis(20);

/// Registers meshguard's root context with the proxy-wasm SDK (the module's `_initialize`).
pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(MeshguardRoot {
            context_id,
            vm: None,
            tick: None,
        })
    });
}

struct MeshguardRoot {
    context_id: u32,
    vm: Option<Rc<RefCell<Vm>>>,
    tick: Option<Duration>,
}

impl Context for MeshguardRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.on_fetch_response(token_id, num_headers, body_size);
        // Re-decide the waiters from `on_queue_ready` rather than here: during this callback
        // the SDK's dispatcher holds its HTTP-context table borrowed, so a host that delivered
        // a resumed request's callbacks synchronously would hit that borrow. From the queue
        // (or the tick) only the root table is borrowed. Envoy defers either way.
        let queue = self
            .vm
            .as_ref()
            .and_then(|vm| vm.try_borrow().ok().and_then(|s| s.wake_queue));
        match queue {
            Some(queue) if hostcalls::enqueue_shared_queue(queue, Some(b"f")).is_ok() => {}
            _ => self.pump(),
        }
    }

    /// The plugin or VM is going away: release any fetch lease this VM holds so a peer VM
    /// fetches at its next poll instead of waiting for the lease to lapse.
    fn on_done(&mut self) -> bool {
        if let Some(vm) = &self.vm {
            abandon_fetches(vm);
        }
        true
    }
}

impl RootContext for MeshguardRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(
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
        if let Some(old) = self.vm.take() {
            abandon_fetches(&old);
            // A reconfiguration: requests waiting under the old configuration are answered.
            let waiters = match old.try_borrow_mut() {
                Ok(mut state) => std::mem::take(&mut state.waiters),
                Err(_) => Vec::new(),
            };
            for waiter in waiters {
                if hostcalls::set_effective_context(waiter.context_id).is_ok() {
                    request::deny(
                        &waiter.config,
                        None,
                        &crate::output::Denial::JwksUnavailable,
                        &auth::Subject::default(),
                    );
                }
            }
            let _ = hostcalls::set_effective_context(self.context_id);
        }
        let me = vm::allocate_vm_nonce();
        let wake_queue = hostcalls::register_shared_queue(&format!("meshguard/wake/{me}")).ok();
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
        self.vm = Some(Rc::new(RefCell::new(state)));
        // Fetch from the first tick, not from here: Envoy configures (and at once destroys)
        // VMs that never serve, and a fetch dispatched from one of those would be lost while
        // its lease kept every other VM from fetching until it lapsed. A request arriving
        // before the first tick wakes the root through the queue anyway.
        let first = if remote {
            Some(FIRST_TICK)
        } else if config.token_cache_entries > 0 {
            // Only to export the cache counters.
            Some(TICK)
        } else {
            None
        };
        if let Some(period) = first
            && hostcalls::set_tick_period(period).is_ok()
        {
            self.tick = first;
        }
        true
    }

    fn on_tick(&mut self) {
        self.pump();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        // Drain the wake-ups (their content is irrelevant).
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue_id) {}
        self.pump();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MeshguardHttp {
            context_id,
            vm: self.vm.clone(),
            responded: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
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
    fn pump(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
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
            let state = &mut *state;
            let stats = state.cache.stats();
            let done = state.cache_exported;
            Metrics::add(
                state.metrics.cache_hit,
                stats.hits.saturating_sub(done.hits),
            );
            Metrics::add(
                state.metrics.cache_miss,
                stats.misses.saturating_sub(done.misses),
            );
            Metrics::add(
                state.metrics.cache_eviction,
                stats.evictions.saturating_sub(done.evictions),
            );
            state.cache_exported = stats;
        }

        let waiting = vm.try_borrow().is_ok_and(|s| !s.waiters.is_empty());
        // Ticks also export the cache counters.
        let remote = vm
            .try_borrow()
            .is_ok_and(|s| s.has_remote() || s.cache.is_enabled());
        let want = if waiting {
            Some(FAST_TICK)
        } else if remote {
            Some(TICK)
        } else {
            None
        };
        if want != self.tick
            && let Some(period) = want
            && hostcalls::set_tick_period(period).is_ok()
        {
            self.tick = want;
        }
    }

    /// Re-decides a paused request on its behalf.
    fn resume(&self, vm: &Rc<RefCell<Vm>>, waiter: vm::Waiter, now: u64) {
        if hostcalls::set_effective_context(waiter.context_id).is_err() {
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
            && let Err(status) = hostcalls::resume_http_request()
        {
            warn!(
                "meshguard: could not resume request {}: {status:?}",
                waiter.context_id
            );
        }
        let _ = hostcalls::set_effective_context(self.context_id);
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
        let headers = vec![
            (":method", "GET"),
            (":authority", uri.authority.as_str()),
            (":path", uri.path.as_str()),
            (":scheme", uri.scheme.as_str()),
            ("accept", "application/json"),
            ("user-agent", "meshguard"),
        ];
        let result = hostcalls::dispatch_http_call(cluster, headers, None, vec![], timeout);
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
                    "meshguard: JWKS fetch for jwtRules[{rule}] not dispatched to cluster {cluster:?}: {status:?}"
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
    fn on_fetch_response(&mut self, token_id: u32, num_headers: usize, body_size: usize) {
        let Some(vm) = self.vm.clone() else { return };
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
            .then(|| hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status"))
            .and_then(Result::ok)
            .flatten()
            .and_then(|s| String::from_utf8(s).ok())
            .and_then(|s| s.parse::<u32>().ok());
        let body = if status == Some(200) && body_size <= jwks::MAX_BODY_BYTES {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
        } else {
            None
        };
        let rule = pending.rule;
        let result = jwks::parse_response(status, body.as_deref(), body_size);
        let max_age = has_headers
            .then(|| {
                hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, "cache-control")
            })
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

struct MeshguardHttp {
    context_id: u32,
    vm: Option<Rc<RefCell<Vm>>>,
    /// A local response was sent from `on_http_request_headers`.
    responded: bool,
}

impl MeshguardHttp {
    /// Whether the request is still undecided (registered as a waiter in the VM state; the
    /// root removes it when it resumes or answers the request).
    fn undecided(&self) -> bool {
        self.responded
            || self.vm.as_ref().is_some_and(|vm| {
                vm.try_borrow().map_or(true, |s| {
                    s.waiters.iter().any(|w| w.context_id == self.context_id)
                })
            })
    }
}

impl Context for MeshguardHttp {}

impl HttpContext for MeshguardHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(vm) = self.vm.clone() else {
            // Never configured: fail closed.
            let _ =
                hostcalls::send_http_response(401, vec![], Some(b"meshguard is not configured"));
            self.responded = true;
            return Action::Pause;
        };
        let Some(config) = vm.try_borrow().ok().map(|s| Rc::clone(&s.config)) else {
            let _ = hostcalls::send_http_response(401, vec![], Some(b"meshguard is busy"));
            self.responded = true;
            return Action::Pause;
        };
        request::strip_output_headers(&config);
        let found = request::find_tokens(&config);
        // No token, no clock needed (one host call less on the common anonymous path).
        let now = if found.is_empty() {
            Some(0)
        } else {
            vm::now_ms()
        };
        let Some(now) = now else {
            let _ = hostcalls::send_http_response(401, vec![], Some(b"host clock unavailable"));
            self.responded = true;
            return Action::Pause;
        };
        match request::decide(
            &vm,
            &config,
            self.context_id,
            found,
            auth::Progress::default(),
            now,
        ) {
            Finish::Continue => Action::Continue,
            Finish::Responded => {
                self.responded = true;
                Action::Pause
            }
            Finish::Waiting => Action::Pause,
        }
    }

    /// While the request waits for keys, its body must not move on: for Envoy, `Continue`
    /// from the body callback after a paused header callback resumes the stream, which would
    /// send an undecided request upstream. `Pause` buffers the body until the root resumes it.
    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        if self.undecided() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.undecided() {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

impl Drop for MeshguardHttp {
    fn drop(&mut self) {
        // A request that goes away while waiting: forget it (the root also drops waiters whose
        // context the host no longer knows).
        if let Some(vm) = &self.vm
            && let Ok(mut state) = vm.try_borrow_mut()
        {
            state.waiters.retain(|w| w.context_id != self.context_id);
        }
    }
}
