//! The state of one root (per worker VM and plugin configuration), behind the engine's
//! `RefCell`: the JWKS state machines, the paused requests, the outstanding fetches, the
//! verified-token cache and the counters.
//!
//! Borrow discipline: a borrow is held only for a short section without host calls, or with
//! shared-data calls (which never re-enter the module); it is always released before a request
//! is resumed or answered, because the host may call back into the module then. Every borrow
//! is `try_borrow_mut`: a re-entrant host degrades a request to a clean 401, never a panic.

use std::rc::Rc;
use std::time::Duration;

use super::auth::{KeyAccess, Progress};
use super::host::{Host, HostStore};
use super::metrics::Metrics;
use crate::cache::{CacheStats, TokenCache};
use crate::config::{CompiledConfig, KeySource};
use crate::extract::Found;
use crate::jose::{Jwks, ProofKeys, SpiffeBundle};
use crate::jwks::{IssuerKeys, JwksUri, KidMiss, Lookup, RefreshPolicy};

/// A request paused until the keys of `rule` change (or `deadline_ms`).
#[derive(Debug)]
pub struct Waiter {
    pub context_id: u32,
    pub config: Rc<CompiledConfig>,
    pub found: Vec<Found>,
    pub progress: Progress,
    pub rule: usize,
    pub generation: u64,
    pub deadline_ms: u64,
}

/// What an outstanding HTTP call of the root is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    Jwks,
    Discovery,
}

/// An outstanding fetch: the host's call token, the rule whose keys it fetches, and what.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub token: u32,
    pub rule: usize,
    pub kind: FetchKind,
    /// Until when the host may still answer (call timeout + slack): after that the entry is
    /// dropped so that a lost callback cannot stop this rule's fetches for good.
    pub expires_ms: u64,
}

/// Slack beyond a call's timeout before its callback is considered lost.
pub const CALLBACK_SLACK_MS: u64 = 2_000;

/// Everything one root keeps between callbacks.
pub struct State {
    pub(super) config: Rc<CompiledConfig>,
    /// One JWKS state machine per rule (inline rules never fetch).
    pub(super) keys: Vec<IssuerKeys<Jwks>>,
    /// The `jwks_uri` OIDC discovery found, per rule (fetched by the lease holder only).
    pub(super) discovered: Vec<Option<JwksUri>>,
    waiters: Vec<Waiter>,
    pending: Vec<Pending>,
    pub(super) metrics: Metrics,
    /// Verified tokens of this VM (a new configuration gets a new cache).
    pub(super) cache: TokenCache,
    /// Cache counters already exported as metrics (the root exports deltas on its tick).
    cache_exported: CacheStats,
    /// This VM's nonce (lease holder id), unique in the process.
    pub(super) me: u64,
    /// Keys of this VM's recent DPoP proofs (a new configuration starts empty).
    pub(super) proof_keys: ProofKeys,
    /// The VM-unique shared queue whose `on_queue_ready` runs in the root: a request enqueues
    /// to it to get the root to fetch / re-decide promptly.
    pub(super) wake_queue: Option<u32>,
}

fn parse_jwks(body: &[u8]) -> Result<Jwks, String> {
    let jwks = Jwks::parse(body).map_err(|e| e.to_string())?;
    log_skipped("fetched JWKS", &jwks);
    Ok(jwks)
}

/// A fetched SPIFFE bundle (a rule with `spiffe`): its `jwt-svid` keys. `spiffe_sequence` is
/// logged and not acted on; `spiffe_refresh_hint` is read by the fetch path (`fetch.rs`).
fn parse_spiffe_bundle(body: &[u8]) -> Result<Jwks, String> {
    let bundle = SpiffeBundle::parse(body).map_err(|e| format!("SPIFFE bundle: {e}"))?;
    log_skipped("fetched SPIFFE bundle", &bundle.jwks);
    log::info!(
        "meshguard: fetched SPIFFE bundle: {} jwt-svid keys, spiffe_sequence {}, spiffe_refresh_hint {}",
        bundle.jwks.len(),
        bundle
            .sequence
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        bundle
            .refresh_hint_secs
            .map_or_else(|| "-".to_owned(), |n| format!("{n} s")),
    );
    Ok(bundle.jwks)
}

/// Most skipped JWKS entries logged per load (the rest are counted in one line).
const SKIPPED_LOG_LIMIT: usize = 5;

/// Logs why JWKS entries were not usable (unsupported kty, weak key, `use: enc`, …), so an
/// operator sees why a `kid` never verifies. A few lines at most; `kid`s are cut to 64 chars.
pub fn log_skipped(what: &str, jwks: &Jwks) {
    let skipped = jwks.skipped();
    for key in skipped.iter().take(SKIPPED_LOG_LIMIT) {
        let kid: String = key.kid.as_deref().unwrap_or("-").chars().take(64).collect();
        log::info!(
            "meshguard: {what}: entry {} (kid {kid:?}) skipped: {}",
            key.index,
            key.reason
        );
    }
    if skipped.len() > SKIPPED_LOG_LIMIT {
        log::info!(
            "meshguard: {what}: {} more entries skipped",
            skipped.len() - SKIPPED_LOG_LIMIT
        );
    }
}

impl State {
    pub fn new<H: Host>(
        host: &H,
        config: Rc<CompiledConfig>,
        me: u64,
        wake_queue: Option<u32>,
    ) -> State {
        let keys = config
            .rules
            .iter()
            .map(|rule| match &rule.keys {
                KeySource::Inline(jwks) => {
                    let what = if rule.spiffe_trust_domain.is_some() {
                        "inline SPIFFE bundle"
                    } else {
                        "inline JWKS"
                    };
                    log_skipped(what, jwks);
                    IssuerKeys::inline(Rc::clone(jwks))
                }
                KeySource::Remote(source) | KeySource::Discovery(source) => {
                    let kind = if matches!(rule.keys, KeySource::Remote(_)) {
                        "jwks"
                    } else {
                        "oidc"
                    };
                    let prefix = format!("meshguard/{kind}/{}/{}", source.cluster, source.uri_text);
                    // Discovery is two calls in a row (document, then keys), each with the
                    // rule's timeout: the lease must cover both.
                    let calls = if kind == "oidc" { 2 } else { 1 };
                    let policy = RefreshPolicy {
                        cache_duration_ms: source.cache_duration_secs.saturating_mul(1000),
                        fetch_timeout_ms: duration_ms(rule.timeout).saturating_mul(calls),
                        ..RefreshPolicy::default()
                    };
                    let parse = if rule.spiffe_trust_domain.is_some() {
                        parse_spiffe_bundle
                    } else {
                        parse_jwks
                    };
                    IssuerKeys::remote(&prefix, policy, parse)
                }
            })
            .collect();
        let labels: Vec<String> = config.rules.iter().map(|r| r.label()).collect();
        let mut metrics = Metrics::define(host, labels.iter().map(String::as_str));
        metrics.define_policies(host, config.policies.names());
        State {
            cache: TokenCache::new(config.token_cache_entries),
            cache_exported: CacheStats::default(),
            discovered: vec![None; config.rules.len()],
            config,
            keys,
            waiters: Vec::new(),
            pending: Vec::new(),
            metrics,
            me,
            proof_keys: ProofKeys::default(),
            wake_queue,
        }
    }

    /// Exports the counters kept in the VM (cache, `allowed`, `no_token`) as deltas since the
    /// last export.
    pub fn flush_counters<H: Host>(&mut self, host: &H) {
        let stats = self.cache.stats();
        let done = self.cache_exported;
        let m = &self.metrics;
        Metrics::add(host, m.cache_hit, stats.hits.saturating_sub(done.hits));
        Metrics::add(host, m.cache_miss, stats.misses.saturating_sub(done.misses));
        Metrics::add(
            host,
            m.cache_eviction,
            stats.evictions.saturating_sub(done.evictions),
        );
        self.cache_exported = stats;
        self.metrics.flush_per_request(host);
    }

    /// Pauses a request until the keys of `waiter.rule` change or its deadline.
    pub fn register_waiter(&mut self, waiter: Waiter) {
        self.waiters.push(waiter);
    }

    /// Whether request `context_id` is paused here.
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters.iter().any(|w| w.context_id == context_id)
    }

    /// Whether any request is paused (the root then ticks fast, for deadlines).
    pub fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }

    /// Forgets a paused request whose stream ended.
    pub fn drop_waiter(&mut self, context_id: u32) {
        if !self.waiters.is_empty() {
            self.waiters.retain(|w| w.context_id != context_id);
        }
    }

    /// Every paused request, taken out (a reconfiguration answers them).
    pub fn take_all_waiters(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.waiters)
    }

    /// Takes out the paused requests to decide now: their keys' generation moved (a fetch
    /// finished, this VM's or a peer's) or their deadline passed.
    pub fn take_ready(&mut self, now_ms: u64) -> Vec<Waiter> {
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.waiters.len() {
            let moved = self.waiters.get(i).is_some_and(|w| {
                now_ms >= w.deadline_ms
                    || self
                        .keys
                        .get(w.rule)
                        .is_none_or(|k| k.generation() != w.generation)
            });
            if moved {
                ready.push(self.waiters.swap_remove(i));
            } else {
                i += 1;
            }
        }
        ready
    }

    /// Whether `waiter` ran out of time with its keys unchanged (then it gets the 401).
    pub fn timed_out(&self, waiter: &Waiter, now_ms: u64) -> bool {
        now_ms >= waiter.deadline_ms
            && self
                .keys
                .get(waiter.rule)
                .is_none_or(|k| k.generation() == waiter.generation)
    }

    /// The rules whose fetch is due now: polls every fetched source (adopting a peer VM's keys,
    /// taking the lease when a refresh is due) except rules with a fetch outstanding. Counts
    /// unknown-`kid` refetches.
    pub fn due_fetches<H: Host>(&mut self, host: &H, now_ms: u64) -> Vec<usize> {
        // A fetch whose callback never came (lost) no longer blocks its rule.
        self.pending.retain(|p| now_ms < p.expires_ms);
        let busy: Vec<usize> = self.pending.iter().map(|p| p.rule).collect();
        let me = self.me;
        let metrics = &self.metrics;
        self.keys
            .iter_mut()
            .enumerate()
            .filter(|(rule, _)| !busy.contains(rule))
            .filter_map(|(rule, keys)| {
                // With keys in hand, a wanted fetch is an unknown-kid refetch.
                let forced = keys.wants_fetch() && keys.keys(now_ms).is_some();
                let fetch = keys.poll(now_ms, &mut HostStore(host), me) == crate::jwks::Poll::Fetch;
                if fetch && forced {
                    Metrics::bump_rule(host, &metrics.unknown_kid_refetch, Some(rule));
                }
                fetch.then_some(rule)
            })
            .collect()
    }

    /// Records a dispatched fetch.
    pub fn fetch_dispatched(&mut self, pending: Pending) {
        self.pending.push(pending);
    }

    /// The outstanding fetch with this call token, taken out.
    pub fn take_pending(&mut self, token: u32) -> Option<Pending> {
        let at = self.pending.iter().position(|p| p.token == token)?;
        Some(self.pending.swap_remove(at))
    }

    /// Releases the fetch leases this VM holds, so a peer VM fetches at its next poll instead
    /// of waiting for the lease to lapse (see [`crate::jwks::IssuerKeys::abandon`]).
    pub fn abandon_fetches<H: Host>(&mut self, host: &H, now_ms: u64) {
        let me = self.me;
        for keys in self.keys.iter_mut() {
            keys.abandon(now_ms, &mut HostStore(host), me);
        }
        self.pending.clear();
    }

    /// A fetch of `rule` failed (not dispatched, an error status, a bad body): count it, and
    /// let the state machine back off.
    pub fn fetch_failed<H: Host>(&mut self, host: &H, rule: usize, now_ms: u64) {
        Metrics::bump_rule(host, &self.metrics.fetch_failed, Some(rule));
        let me = self.me;
        if let Some(keys) = self.keys.get_mut(rule) {
            keys.fetch_failed(now_ms, &mut HostStore(host), me);
        }
    }

    /// Whether any rule fetches its keys (then the root ticks).
    pub fn has_remote(&self) -> bool {
        self.config
            .rules
            .iter()
            .any(|r| !matches!(r.keys, KeySource::Inline(_)))
    }
}

/// Milliseconds of a duration, saturating.
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// [`KeyAccess`] over a root's state machines at one instant.
pub struct VmKeys<'a, 'h, H: Host> {
    pub keys: &'a mut [IssuerKeys<Jwks>],
    pub host: &'h H,
    pub now_ms: u64,
}

impl<H: Host> KeyAccess for VmKeys<'_, '_, H> {
    fn lookup(&mut self, rule: usize) -> Lookup<Jwks> {
        match self.keys.get_mut(rule) {
            Some(keys) => keys.lookup(self.now_ms, &mut HostStore(self.host)),
            None => Lookup::Unavailable,
        }
    }

    fn unknown_kid(&mut self, rule: usize) -> KidMiss {
        match self.keys.get_mut(rule) {
            Some(keys) => keys.unknown_kid(self.now_ms, &mut HostStore(self.host)),
            None => KidMiss::RateLimited,
        }
    }
}

/// A VM-unique number (lease holder id, queue name). Envoy's shared data has no "create if
/// absent", so a CAS counter alone can hand the same first value to two VMs configured at the
/// same instant on different threads; the counter is therefore mixed with the host clock in
/// nanoseconds (two VMs would need both the same counter value and the same nanosecond).
pub fn allocate_vm_nonce<H: Host>(host: &H) -> u64 {
    const KEY: &str = "meshguard/vm-seq";
    let nanos = host.now_nanos().unwrap_or(0);
    let mut counter = 0;
    for _ in 0..16 {
        let (current, cas) = match host.shared_data(KEY) {
            Some((value, cas)) => (Some(value), cas),
            None => (None, 0),
        };
        let n = current
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_add(1);
        if host
            .set_shared_data(KEY, n.to_string().as_bytes(), cas)
            .is_ok()
        {
            counter = n;
            break;
        }
    }
    // Keep it readable in logs: the counter in the high digits, clock entropy below.
    counter
        .saturating_mul(1_000_000)
        .saturating_add(nanos % 1_000_000)
        .max(1)
}
