//! Per-VM state shared by the root context and every HTTP context (`Rc<RefCell<Vm>>`).
//!
//! Borrow discipline: a `RefCell` borrow is held only for a short, host-call-free section or
//! for shared-data calls (which never re-enter the module); it is always released before a
//! request is resumed or answered, because the host may call back into the module then.
//! Every borrow is `try_borrow_mut`: a re-entrant host degrades a request to a clean 401,
//! never a panic.

use std::rc::Rc;
use std::time::Duration;

use super::abi::{self, HostError};
use super::auth::{KeyAccess, Progress};
use super::metrics::Metrics;
use crate::cache::{CacheStats, TokenCache};
use crate::config::{CompiledConfig, KeySource};
use crate::extract::Found;
use crate::jose::Jwks;
use crate::jwks::{IssuerKeys, JwksUri, KidMiss, Lookup, RefreshPolicy, SharedStore, StoreError};

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

/// Everything one worker VM keeps.
pub struct Vm {
    pub config: Rc<CompiledConfig>,
    /// One JWKS state machine per rule (inline rules never fetch).
    pub keys: Vec<IssuerKeys<Jwks>>,
    /// The `jwks_uri` OIDC discovery found, per rule (fetched by the lease holder only).
    pub discovered: Vec<Option<JwksUri>>,
    pub waiters: Vec<Waiter>,
    pub pending: Vec<Pending>,
    pub metrics: Metrics,
    /// Verified tokens of this VM (a new configuration gets a new cache).
    pub cache: TokenCache,
    /// Cache counters already exported as metrics (the root exports deltas on its tick).
    pub cache_exported: CacheStats,
    /// This VM's nonce (lease holder id), unique in the process.
    pub me: u64,
    /// The VM-unique shared queue whose `on_queue_ready` runs in the root: an HTTP context
    /// enqueues to it to get the root to fetch / re-decide promptly.
    pub wake_queue: Option<u32>,
}

fn parse_jwks(body: &[u8]) -> Result<Jwks, String> {
    let jwks = Jwks::parse(body).map_err(|e| e.to_string())?;
    log_skipped("fetched JWKS", &jwks);
    Ok(jwks)
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

impl Vm {
    pub fn new(config: Rc<CompiledConfig>, me: u64, wake_queue: Option<u32>) -> Vm {
        let keys = config
            .rules
            .iter()
            .map(|rule| match &rule.keys {
                KeySource::Inline(jwks) => {
                    log_skipped("inline JWKS", jwks);
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
                    IssuerKeys::remote(&prefix, policy, parse_jwks)
                }
            })
            .collect();
        let mut metrics = Metrics::define(config.rules.iter().map(|r| r.issuer.as_str()));
        metrics.define_policies(config.policies.names());
        Vm {
            cache: TokenCache::new(config.token_cache_entries),
            cache_exported: CacheStats::default(),
            discovered: vec![None; config.rules.len()],
            config,
            keys,
            waiters: Vec::new(),
            pending: Vec::new(),
            metrics,
            me,
            wake_queue,
        }
    }

    /// Exports the counters kept in the VM (cache, `allowed`, `no_token`) as deltas since the
    /// last export.
    pub fn flush_counters(&mut self) {
        let stats = self.cache.stats();
        let done = self.cache_exported;
        Metrics::add(self.metrics.cache_hit, stats.hits.saturating_sub(done.hits));
        Metrics::add(
            self.metrics.cache_miss,
            stats.misses.saturating_sub(done.misses),
        );
        Metrics::add(
            self.metrics.cache_eviction,
            stats.evictions.saturating_sub(done.evictions),
        );
        self.cache_exported = stats;
        self.metrics.flush_per_request();
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

/// Host time in milliseconds since the Unix epoch (never `SystemTime::now()`).
pub fn now_ms() -> Option<u64> {
    abi::now_nanos().ok().map(|nanos| nanos / 1_000_000)
}

/// Proxy shared data as the JWKS state machine's [`SharedStore`].
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match abi::shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas)),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        abi::set_shared_data(key, value, cas).map_err(|status| match status {
            HostError::CasMismatch => StoreError::CasMismatch,
            other => StoreError::Host(other.to_string()),
        })
    }
}

/// [`KeyAccess`] over a VM's state machines at one instant.
pub struct VmKeys<'a> {
    pub keys: &'a mut [IssuerKeys<Jwks>],
    pub now_ms: u64,
}

impl KeyAccess for VmKeys<'_> {
    fn lookup(&mut self, rule: usize) -> Lookup<Jwks> {
        match self.keys.get_mut(rule) {
            Some(keys) => keys.lookup(self.now_ms, &mut HostStore),
            None => Lookup::Unavailable,
        }
    }

    fn unknown_kid(&mut self, rule: usize) -> KidMiss {
        match self.keys.get_mut(rule) {
            Some(keys) => keys.unknown_kid(self.now_ms, &mut HostStore),
            None => KidMiss::RateLimited,
        }
    }
}

/// A VM-unique number (lease holder id, queue name). Envoy's shared data has no "create if
/// absent", so a CAS counter alone can hand the same first value to two VMs configured at the
/// same instant on different threads; the counter is therefore mixed with the host clock in
/// nanoseconds (two VMs would need both the same counter value and the same nanosecond).
pub fn allocate_vm_nonce() -> u64 {
    const KEY: &str = "meshguard/vm-seq";
    let nanos = abi::now_nanos().unwrap_or(0);
    let mut counter = 0;
    for _ in 0..16 {
        let Ok((current, cas)) = abi::shared_data(KEY) else {
            break;
        };
        let n = current
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_add(1);
        if abi::set_shared_data(KEY, n.to_string().as_bytes(), cas).is_ok() {
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
