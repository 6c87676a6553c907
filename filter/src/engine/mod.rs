//! The request engine: everything that decides, host-free, generic over a small [`Host`]
//! trait. `crate::host` implements [`Host`] over the proxy-wasm ABI and routes the callbacks
//! here; the tests implement it with a fake host ([`testing`]) and run the engine natively.
//!
//! One [`Engine`] per root context (a worker VM and one plugin configuration): the compiled
//! configuration, the JWKS state machines, the paused requests, the outstanding fetches, the
//! verified-token cache and the counters.
//!
//! # A request
//! [`Engine::on_request_headers`] removes client-sent copies of the claim headers, reads only
//! the headers some rule reads, authenticates ([`auth`]: the verified-token cache first, then
//! the keys and the signature), writes the claim headers, evaluates the policies over the
//! claims and the connection ([`attrs`]), and either lets the request go on or answers 401/403.
//! A request decided at once leaves no state.
//!
//! # Waiting for keys, and where the JWKS I/O runs
//! An HTTP-call response is delivered to the context that dispatched the call, and a fetch
//! dispatched from a request's context would die with that request, so **every fetch is
//! dispatched by the root** ([`fetch`]):
//! - a request whose keys are not ready registers as a waiter (its tokens, the rule, the keys'
//!   generation, a deadline = the rule's `timeout`), answers "pause", and enqueues a wake-up to
//!   a VM-unique shared queue so that the root runs promptly; the root's tick (1 s, 100 ms
//!   while requests wait) is the fallback and enforces deadlines;
//! - the root's step ([`Engine::pump`]) polls every fetched source (adopting a peer VM's keys,
//!   taking the shared lease and dispatching a fetch when one is due), then takes the waiters
//!   whose keys' generation moved or whose deadline passed, makes each the current request
//!   (`set_effective_context`) and decides it again with the same code, resuming it or
//!   answering it (a deadline gives 401 "JWKS unavailable": never a 5xx, never a fake key);
//! - across worker VMs the state machines ([`crate::jwks`]) coordinate through proxy shared
//!   data: a CAS-guarded lease so that one VM fetches per refresh, and a shared record of the
//!   last good JWKS that the others adopt.
//!
//! No `RefCell` of ours is borrowed across a host call that could re-enter the module
//! (resuming, answering), and paused requests are decided only from the root's tick or queue
//! callback, never inside an HTTP-call callback.

pub mod attrs;
pub mod auth;
mod binding;
#[cfg(test)]
mod dpop_tests;
mod fetch;
mod host;
mod metrics;
mod request;
#[cfg(test)]
mod spiffe_tests;
mod state;
#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};

use crate::config::{CompiledConfig, KeySource};
use crate::output::Denial;

pub use host::{Host, HostError, HostStore};
use request::Finish;
use state::State;

/// Regular tick: refresh ahead of expiry, backoff retries, adopting peers' keys, exporting the
/// counters kept in the VM.
const TICK: Duration = Duration::from_secs(1);
/// Tick while requests wait for keys (deadline granularity).
const FAST_TICK: Duration = Duration::from_millis(100);
/// The first tick after configuration starts the first fetch.
const FIRST_TICK: Duration = Duration::from_millis(20);

/// What a request callback answers the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

/// How `on_request_headers` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The request goes on (its headers are rewritten).
    Continue,
    /// A local response was sent: its body callbacks, if any, must keep pausing.
    Answered,
    /// The request is paused until its keys change or its deadline.
    Waiting,
}

impl Decided {
    /// What the request callback answers the host.
    pub fn action(self) -> Action {
        match self {
            Decided::Continue => Action::Continue,
            Decided::Answered | Decided::Waiting => Action::Pause,
        }
    }
}

/// The state of one root context.
pub struct Engine {
    config: Rc<CompiledConfig>,
    state: RefCell<State>,
    /// The root's current tick period.
    tick: Cell<Option<Duration>>,
}

impl Engine {
    /// Compiles a plugin configuration (logging the error and returning `None` when it is
    /// invalid, and the policies' configure-time warnings) and starts the root's tick.
    pub fn configure<H: Host>(host: &H, plugin_config: &[u8]) -> Option<Engine> {
        let config = match CompiledConfig::from_json(plugin_config) {
            Ok(config) => Rc::new(config),
            Err(e) => {
                error!("meshguard: invalid configuration: {e}");
                return None;
            }
        };
        for warning in config.policies.warnings() {
            warn!("meshguard: {warning}");
        }
        let me = state::allocate_vm_nonce(host);
        let wake_queue = host.register_queue(&format!("meshguard/wake/{me}")).ok();
        let state = State::new(host, Rc::clone(&config), me, wake_queue);
        // The DPoP replay buckets exist before this VM takes a request (dpop/replay.rs).
        if let Some(replay) = &config.dpop_replay {
            replay.create_buckets(&mut HostStore(host), me);
        }
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
        let engine = Engine {
            config,
            state: RefCell::new(state),
            tick: Cell::new(None),
        };
        // Fetch from the first tick, not from here: Envoy configures (and at once destroys)
        // VMs that never serve, and a fetch dispatched from one of those would be lost while
        // its lease kept every other VM from fetching until it lapsed. A request arriving
        // before the first tick wakes the root through the queue anyway. Without fetches the
        // tick still exports the counters kept in the VM.
        engine.set_tick(host, if remote { FIRST_TICK } else { TICK });
        Some(engine)
    }

    /// Decides a request from its headers (the host's current request).
    pub fn on_request_headers<H: Host>(&self, host: &H, context_id: u32) -> Decided {
        request::strip_output_headers(host, &self.config);
        let found = match request::find_tokens(host, &self.config) {
            Ok(found) => found,
            Err((denial, subject)) => {
                request::deny(host, &self.config, Some(&self.state), &denial, &subject);
                return Decided::Answered;
            }
        };
        // No token, no clock needed (one host call less on the common anonymous path).
        let now = if found.is_empty() {
            Some(0)
        } else {
            host.now_ms()
        };
        let Some(now) = now else {
            refuse(host, b"host clock unavailable");
            return Decided::Answered;
        };
        match request::decide(
            host,
            &self.state,
            &self.config,
            context_id,
            found,
            auth::Progress::default(),
            now,
        ) {
            Finish::Continue => Decided::Continue,
            Finish::Responded => Decided::Answered,
            Finish::Waiting => Decided::Waiting,
        }
    }

    /// Whether request `context_id` waits for keys here (its body must not move on yet).
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.state
            .try_borrow()
            .map_or(true, |s| s.is_waiting(context_id))
    }

    /// The request's stream ended: forget it if it was waiting (client gone, stream reset).
    pub fn on_request_done(&self, context_id: u32) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.drop_waiter(context_id);
        }
    }

    /// The root's tick or its wake-up queue: see [`Engine::pump`].
    pub fn on_tick<H: Host>(&self, host: &H, root_context_id: u32) {
        self.pump(host, root_context_id);
    }

    /// The root is going away, or a new configuration replaces this one: export the last
    /// counter deltas and release the fetch leases this VM holds, so a peer VM fetches at its
    /// next poll instead of waiting for the lease to lapse.
    pub fn shutdown<H: Host>(&self, host: &H) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.flush_counters(host);
            if let Some(now) = host.now_ms() {
                state.abandon_fetches(host, now);
            }
        }
    }

    /// A new configuration replaces this one: the requests still waiting under it are
    /// answered (401 "JWKS unavailable"), then the root is the current context again.
    pub fn answer_waiters<H: Host>(&self, host: &H, root_context_id: u32) {
        let waiters = self
            .state
            .try_borrow_mut()
            .map(|mut s| s.take_all_waiters())
            .unwrap_or_default();
        for waiter in waiters {
            if host.set_effective_context(waiter.context_id).is_ok() {
                request::deny(
                    host,
                    &waiter.config,
                    None,
                    &Denial::JwksUnavailable,
                    &fetch::waiter_subject(&waiter),
                );
            }
        }
        let _ = host.set_effective_context(root_context_id);
    }

    fn set_tick<H: Host>(&self, host: &H, period: Duration) {
        if self.tick.get() != Some(period) && host.set_tick_period(period).is_ok() {
            self.tick.set(Some(period));
        }
    }
}

/// Answers the current request locally when the engine cannot decide it (fail closed).
pub fn refuse<H: Host>(host: &H, body: &[u8]) {
    let _ = host.send_local_response(401, &[], body);
}
