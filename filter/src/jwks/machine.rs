//! The per-JWKS-source state machine each worker VM keeps.

use std::rc::Rc;
use std::time::Duration;

use super::lease::{Lease, LeasePhase};
use super::record::SharedRecord;
use super::store::SharedStore;

/// Turns a JWKS body into the verifier's key set (in the filter: `jose::Jwks::parse`).
pub type KeyParser<K> = fn(&[u8]) -> Result<K, String>;

/// Envoy `jwt_authn`'s default JWKS cache duration (`jwksCacheDurationSeconds`): 10 min.
pub const DEFAULT_CACHE_DURATION_SECS: u64 = 600;
/// Istio's default `JWTRule.timeout`: how long one JWKS fetch (and a request waiting for the
/// keys) may take.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A `Cache-Control: max-age` is clamped to at least this ...
pub const MAX_AGE_FLOOR_SECS: u64 = 60;
/// ... and at most this (24 h).
pub const MAX_AGE_CEILING_SECS: u64 = 24 * 3600;
/// How long past expiry the last good keys keep verifying while fetches fail (24 h).
pub const STALE_IF_ERROR_SECS: u64 = 24 * 3600;
/// At most one unknown-`kid` refetch per source in this interval, process-wide.
pub const UNKNOWN_KID_INTERVAL_SECS: u64 = 30;
/// Failed fetches are retried after this delay, doubled per failure in a row ...
pub const BACKOFF_INITIAL_SECS: u64 = 1;
/// ... up to this one.
pub const BACKOFF_MAX_SECS: u64 = 60;

/// Timings of the lifecycle. All times are milliseconds of host time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// How long a fetched JWKS is fresh when the server sends no usable `Cache-Control`.
    pub cache_duration_ms: u64,
    /// Whether a `Cache-Control: max-age` overrides `cache_duration_ms` (clamped below).
    pub honour_cache_control: bool,
    pub max_age_floor_ms: u64,
    pub max_age_ceiling_ms: u64,
    /// How long one fetch may take before its lease lapses (the host's call timeout, plus slack).
    pub fetch_timeout_ms: u64,
    /// After expiry, how long the last good keys keep verifying while fetches fail.
    pub stale_if_error_ms: u64,
    /// At most one unknown-`kid` refetch per this interval, process-wide.
    pub unknown_kid_interval_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        const MS: u64 = 1000;
        RefreshPolicy {
            cache_duration_ms: DEFAULT_CACHE_DURATION_SECS * MS,
            honour_cache_control: true,
            max_age_floor_ms: MAX_AGE_FLOOR_SECS * MS,
            max_age_ceiling_ms: MAX_AGE_CEILING_SECS * MS,
            fetch_timeout_ms: u64::try_from(DEFAULT_FETCH_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
            stale_if_error_ms: STALE_IF_ERROR_SECS * MS,
            unknown_kid_interval_ms: UNKNOWN_KID_INTERVAL_SECS * MS,
            backoff_initial_ms: BACKOFF_INITIAL_SECS * MS,
            backoff_max_ms: BACKOFF_MAX_SECS * MS,
        }
    }
}

/// Slack added to a fetch lease beyond the call timeout, so a slow-but-alive holder's answer is
/// not raced by a takeover.
const LEASE_SLACK_MS: u64 = 1_000;

/// What a request can do with an issuer's keys right now.
#[derive(Debug, Clone)]
pub enum Lookup<K> {
    /// Keys to verify with (fresh, or stale within the stale-if-error window).
    Ready(Rc<K>),
    /// No keys yet, but a fetch is due or under way: pause the request until
    /// [`IssuerKeys::generation`] changes (or its timeout).
    Wait,
    /// No keys and the source is backing off after failures: answer 401 "JWKS unavailable" now.
    Unavailable,
}

/// What to do with a token whose `kid` is not in the current keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidMiss {
    /// Another VM's newer keys were just adopted: verify again.
    Retry,
    /// A refetch is requested or under way: pause until the generation changes.
    Wait,
    /// A refetch happened too recently (or the source is failing): decide now (401).
    RateLimited,
}

/// What the root context must do after [`IssuerKeys::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Idle,
    /// This VM holds the lease: dispatch the fetch now and report its outcome.
    Fetch,
}

#[derive(Debug)]
struct Loaded<K> {
    keys: Rc<K>,
    /// The shared record version these keys came from.
    seq: u64,
    fetched_at_ms: u64,
    expires_at_ms: u64,
}

/// The keys of one JWKS source (a `jwksUri`, or OIDC discovery for an issuer) in one VM.
#[derive(Debug)]
pub struct IssuerKeys<K> {
    lease_key: String,
    record_key: String,
    policy: RefreshPolicy,
    parse: Option<KeyParser<K>>,
    loaded: Option<Loaded<K>>,
    generation: u64,
    /// A request needs a fetch (cold start or unknown kid): the root should poll promptly.
    wanted: bool,
    /// An unknown-kid refetch is requested and not yet started.
    forced: bool,
    /// We hold a `Fetching` lease that we took at this time.
    fetching_since: Option<u64>,
    /// Whether the last lease we saw was `Fetching` (to notice a peer's fetch ending).
    saw_fetching: bool,
    /// The last lease's failure count (to notice a peer's failure).
    saw_failures: u32,
}

impl<K> IssuerKeys<K> {
    /// A remote source whose shared-data keys start with `shared_prefix` (unique per source, so
    /// rules naming the same `jwksUri` share one fetch).
    pub fn remote(shared_prefix: &str, policy: RefreshPolicy, parse: KeyParser<K>) -> Self {
        IssuerKeys {
            lease_key: format!("{shared_prefix}/lease"),
            record_key: format!("{shared_prefix}/record"),
            policy,
            parse: Some(parse),
            loaded: None,
            generation: 0,
            wanted: false,
            forced: false,
            fetching_since: None,
            saw_fetching: false,
            saw_failures: 0,
        }
    }

    /// A static source from an inline `jwks` in the configuration.
    pub fn inline(keys: Rc<K>) -> Self {
        IssuerKeys {
            lease_key: String::new(),
            record_key: String::new(),
            policy: RefreshPolicy::default(),
            parse: None,
            loaded: Some(Loaded {
                keys,
                seq: 0,
                fetched_at_ms: 0,
                expires_at_ms: u64::MAX,
            }),
            generation: 1,
            wanted: false,
            forced: false,
            fetching_since: None,
            saw_fetching: false,
            saw_failures: 0,
        }
    }

    fn is_inline(&self) -> bool {
        self.parse.is_none()
    }

    /// Moves on every new key set and every finished fetch (own or a peer's). A paused request
    /// is re-decided when the generation differs from the one it waited on.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The keys usable at `now`, without touching shared data (the per-request fast path).
    pub fn keys(&self, now_ms: u64) -> Option<&Rc<K>> {
        let loaded = self.loaded.as_ref()?;
        let usable_until = loaded
            .expires_at_ms
            .saturating_add(self.policy.stale_if_error_ms);
        (now_ms < usable_until).then_some(&loaded.keys)
    }

    /// Whether a request is waiting for this source to fetch: the root should poll now rather
    /// than at its next regular tick.
    pub fn wants_fetch(&self) -> bool {
        self.wanted || self.forced
    }

    /// Whether this VM has a fetch under way.
    pub fn is_fetching(&self) -> bool {
        self.fetching_since.is_some()
    }

    /// What a request should do for keys. Touches shared data only when this VM has no keys.
    pub fn lookup(&mut self, now_ms: u64, store: &mut dyn SharedStore) -> Lookup<K> {
        if let Some(keys) = self.keys(now_ms) {
            return Lookup::Ready(Rc::clone(keys));
        }
        if self.is_inline() {
            return Lookup::Unavailable;
        }
        let lease = self.sync(now_ms, store);
        if let Some(keys) = self.keys(now_ms) {
            return Lookup::Ready(Rc::clone(keys));
        }
        match lease {
            Some(l) if l.phase == LeasePhase::BackingOff && l.is_active(now_ms) => {
                Lookup::Unavailable
            }
            _ => {
                self.wanted = true;
                Lookup::Wait
            }
        }
    }

    /// A verified-looking token names a `kid` the current keys lack (keys rotated at the IdP).
    pub fn unknown_kid(&mut self, now_ms: u64, store: &mut dyn SharedStore) -> KidMiss {
        if self.is_inline() {
            return KidMiss::RateLimited;
        }
        let before = self.generation;
        let lease = self.sync(now_ms, store);
        if self.generation != before && self.keys(now_ms).is_some() {
            return KidMiss::Retry;
        }
        if self.forced || self.fetching_since.is_some() {
            return KidMiss::Wait;
        }
        if let Some(l) = lease {
            match l.phase {
                LeasePhase::Fetching if l.is_active(now_ms) => return KidMiss::Wait,
                LeasePhase::BackingOff if l.is_active(now_ms) => return KidMiss::RateLimited,
                _ => {}
            }
            let recent = l.forced_at_ms != 0
                && now_ms.saturating_sub(l.forced_at_ms) < self.policy.unknown_kid_interval_ms;
            // A refetch that happened after the keys we hold would have been adopted above.
            if recent {
                return KidMiss::RateLimited;
            }
        }
        self.forced = true;
        KidMiss::Wait
    }

    /// The root's periodic step: adopt a peer's newer keys, and take the lease and ask for a
    /// fetch when one is due (cold, refresh ahead of expiry, or a requested unknown-kid refetch).
    pub fn poll(&mut self, now_ms: u64, store: &mut dyn SharedStore, me: u64) -> Poll {
        if self.is_inline() {
            return Poll::Idle;
        }
        let current = self.sync_with_cas(now_ms, store);
        if let Some(since) = self.fetching_since {
            // Our own fetch normally ends through fetch_succeeded/failed; if the host never
            // called back (a lost callback), give up on it once its lease has lapsed.
            if now_ms < since.saturating_add(self.lease_window_ms()) {
                return Poll::Idle;
            }
            self.fetching_since = None;
        }
        if !self.fetch_due(now_ms) {
            return Poll::Idle;
        }
        let (lease, cas) = match current {
            Some((lease, cas)) => (Some(lease), cas),
            None => (None, 0),
        };
        if lease.is_some_and(|l| l.is_active(now_ms)) {
            return Poll::Idle;
        }
        let forced_at_ms = if self.forced {
            now_ms
        } else {
            lease.map_or(0, |l| l.forced_at_ms)
        };
        let mine = Lease {
            holder: me,
            phase: LeasePhase::Fetching,
            until_ms: now_ms.saturating_add(self.lease_window_ms()),
            failures: lease.map_or(0, |l| l.failures),
            forced_at_ms,
            record_seq: lease.map_or(0, |l| l.record_seq),
        };
        if store.set(&self.lease_key, &mine.encode(), cas).is_err() {
            return Poll::Idle;
        }
        // With no lease yet, two VMs may both write with CAS 0; the read-back keeps the last
        // writer only, so at most the rare interleaved pair fetches twice, once, at start.
        match store
            .get(&self.lease_key)
            .and_then(|(bytes, _)| Lease::decode(&bytes))
        {
            Some(l) if l.holder == me && l.phase == LeasePhase::Fetching => {}
            _ => return Poll::Idle,
        }
        self.fetching_since = Some(now_ms);
        self.saw_fetching = true;
        self.forced = false;
        self.wanted = false;
        Poll::Fetch
    }

    /// The fetch this VM dispatched returned a 200 body. Parses it, shares it with the other
    /// VMs, and releases the lease. A body that does not parse counts as a failed fetch.
    pub fn fetch_succeeded(
        &mut self,
        now_ms: u64,
        body: &[u8],
        max_age_secs: Option<u64>,
        store: &mut dyn SharedStore,
        me: u64,
    ) -> Result<(), String> {
        let keys = match self.parse.map(|parse| parse(body)) {
            Some(Ok(keys)) => keys,
            Some(Err(why)) => {
                self.fetch_failed(now_ms, store, me);
                return Err(why);
            }
            None => return Ok(()),
        };
        let ttl_ms = match max_age_secs {
            Some(secs) if self.policy.honour_cache_control => secs
                .saturating_mul(1000)
                .clamp(self.policy.max_age_floor_ms, self.policy.max_age_ceiling_ms),
            _ => self.policy.cache_duration_ms,
        };
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let previous = self.read_lease(store).map(|(l, _)| l);
        let ours = self.loaded.as_ref().map_or(0, |l| l.seq);
        let seq = previous
            .map_or(0, |l| l.record_seq)
            .max(ours)
            .saturating_add(1);
        let record = SharedRecord {
            seq,
            fetched_at_ms: now_ms,
            expires_at_ms,
            body,
        };
        // The lease makes us the only writer; a failed write only costs the peers a fetch.
        let _ = store.set(&self.record_key, &record.encode(), 0);
        let released = Lease {
            holder: me,
            phase: LeasePhase::Idle,
            until_ms: now_ms,
            failures: 0,
            forced_at_ms: previous.map_or(0, |l| l.forced_at_ms),
            record_seq: seq,
        };
        let _ = store.set(&self.lease_key, &released.encode(), 0);
        self.loaded = Some(Loaded {
            keys: Rc::new(keys),
            seq,
            fetched_at_ms: now_ms,
            expires_at_ms,
        });
        self.fetching_since = None;
        self.saw_fetching = false;
        self.saw_failures = 0;
        self.generation += 1;
        Ok(())
    }

    /// The fetch this VM dispatched failed (status, reset, timeout, bad body). Keeps the last
    /// good keys and backs off, process-wide: 1 s, 2 s, 4 s … up to the policy's maximum.
    pub fn fetch_failed(&mut self, now_ms: u64, store: &mut dyn SharedStore, me: u64) {
        let previous = self.read_lease(store).map(|(l, _)| l);
        let failures = previous.map_or(0, |l| l.failures).saturating_add(1);
        let backoff = self.backoff_ms(failures);
        let lease = Lease {
            holder: me,
            phase: LeasePhase::BackingOff,
            until_ms: now_ms.saturating_add(backoff),
            failures,
            forced_at_ms: previous.map_or(0, |l| l.forced_at_ms),
            record_seq: previous.map_or(0, |l| l.record_seq),
        };
        let _ = store.set(&self.lease_key, &lease.encode(), 0);
        self.fetching_since = None;
        self.saw_fetching = false;
        self.saw_failures = failures;
        self.wanted = false;
        self.generation += 1;
    }

    /// This VM gives up a fetch it holds without an outcome (its VM is shutting down): the
    /// lease is released at once, without counting a failure, so a peer fetches at its next
    /// poll instead of waiting for the lease to lapse.
    pub fn abandon(&mut self, now_ms: u64, store: &mut dyn SharedStore, me: u64) {
        if self.fetching_since.take().is_none() {
            return;
        }
        self.saw_fetching = false;
        if let Some((lease, cas)) = self.read_lease(store)
            && lease.holder == me
            && lease.phase == LeasePhase::Fetching
        {
            let released = Lease {
                phase: LeasePhase::Idle,
                until_ms: now_ms,
                ..lease
            };
            let _ = store.set(&self.lease_key, &released.encode(), cas);
        }
    }

    /// Delay before the next attempt after `failures` consecutive failures.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let shift = failures.saturating_sub(1).min(32);
        self.policy
            .backoff_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.policy.backoff_max_ms)
    }

    /// When the root should next poll this source, at the latest (refresh or retry time).
    pub fn next_poll_at(&self, now_ms: u64) -> Option<u64> {
        if self.is_inline() {
            return None;
        }
        match &self.loaded {
            Some(l) => Some(self.refresh_at(l).max(now_ms)),
            None => Some(now_ms),
        }
    }

    fn lease_window_ms(&self) -> u64 {
        self.policy.fetch_timeout_ms.saturating_add(LEASE_SLACK_MS)
    }

    /// Refresh ahead of expiry, at 80 % of the lifetime, so requests never see expired keys
    /// while the identity provider is up.
    fn refresh_at(&self, loaded: &Loaded<K>) -> u64 {
        let life = loaded.expires_at_ms.saturating_sub(loaded.fetched_at_ms);
        loaded.fetched_at_ms.saturating_add(life / 5 * 4)
    }

    fn fetch_due(&self, now_ms: u64) -> bool {
        match &self.loaded {
            None => true,
            Some(l) => self.forced || now_ms >= self.refresh_at(l),
        }
    }

    fn read_lease(&self, store: &dyn SharedStore) -> Option<(Lease, u32)> {
        let (bytes, cas) = store.get(&self.lease_key)?;
        Some((Lease::decode(&bytes)?, cas))
    }

    fn sync(&mut self, now_ms: u64, store: &mut dyn SharedStore) -> Option<Lease> {
        self.sync_with_cas(now_ms, store).map(|(lease, _)| lease)
    }

    /// Reads the lease; adopts the shared record when it is newer than our keys; notices a
    /// peer's fetch ending. Reads the (large) record only when its version moved.
    fn sync_with_cas(&mut self, now_ms: u64, store: &mut dyn SharedStore) -> Option<(Lease, u32)> {
        let (lease, cas) = self.read_lease(store)?;
        let ours = self.loaded.as_ref().map_or(0, |l| l.seq);
        if lease.record_seq > ours {
            self.adopt_record(store);
        }
        let fetching_now = lease.phase == LeasePhase::Fetching && lease.is_active(now_ms);
        if self.saw_fetching && !fetching_now && self.fetching_since.is_none() {
            // A peer's fetch ended (or lapsed): wake our waiters to re-decide.
            self.generation += 1;
        } else if lease.failures > self.saw_failures && self.fetching_since.is_none() {
            self.generation += 1;
        }
        self.saw_fetching = fetching_now;
        self.saw_failures = lease.failures;
        Some((lease, cas))
    }

    fn adopt_record(&mut self, store: &dyn SharedStore) {
        let Some(parse) = self.parse else { return };
        let Some((bytes, _)) = store.get(&self.record_key) else {
            return;
        };
        let Some(record) = SharedRecord::decode(&bytes) else {
            return;
        };
        let ours = self.loaded.as_ref().map_or(0, |l| l.seq);
        if record.seq <= ours {
            return;
        }
        if let Ok(keys) = parse(record.body) {
            self.loaded = Some(Loaded {
                keys: Rc::new(keys),
                seq: record.seq,
                fetched_at_ms: record.fetched_at_ms,
                expires_at_ms: record.expires_at_ms,
            });
            self.wanted = false;
            self.forced = false;
            self.generation += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::MemoryStore;

    /// Stand-in key set: the body as text; "bad" does not parse.
    fn parse(body: &[u8]) -> Result<String, String> {
        match std::str::from_utf8(body) {
            Ok("bad") => Err("not a JWKS".into()),
            Ok(text) => Ok(text.to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn vm() -> IssuerKeys<String> {
        IssuerKeys::remote("meshguard/v1/jwks/idp", RefreshPolicy::default(), parse)
    }

    /// Whether `a` holds keys at `now` that are past their expiry (kept by stale-if-error).
    fn stale(a: &IssuerKeys<String>, now: u64) -> bool {
        a.keys(now).is_some() && a.loaded.as_ref().is_some_and(|l| now >= l.expires_at_ms)
    }

    /// Whether `a` holds keys at `now` that have not expired yet.
    fn fresh(a: &IssuerKeys<String>, now: u64) -> bool {
        a.loaded.as_ref().is_some_and(|l| now < l.expires_at_ms)
    }

    fn ready(lookup: Lookup<String>) -> String {
        match lookup {
            Lookup::Ready(keys) => (*keys).clone(),
            other => panic!("expected keys, got {other:?}"),
        }
    }

    #[test]
    fn cold_start_waits_then_fetches_once_and_serves() {
        let mut store = MemoryStore::default();
        let mut a = vm();
        assert!(matches!(a.lookup(0, &mut store), Lookup::Wait));
        assert!(a.wants_fetch());
        let g = a.generation();
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        assert_eq!(a.poll(10, &mut store, 1), Poll::Idle, "one fetch at a time");
        a.fetch_succeeded(20, b"k1", None, &mut store, 1).unwrap();
        assert_ne!(a.generation(), g);
        assert_eq!(ready(a.lookup(30, &mut store)), "k1");
        assert!(fresh(&a, 30));
    }

    #[test]
    fn two_vms_fetch_once_and_share() {
        let mut store = MemoryStore::default();
        let (mut a, mut b) = (vm(), vm());
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        assert_eq!(b.poll(0, &mut store, 2), Poll::Idle, "peer holds the lease");
        assert!(matches!(b.lookup(1, &mut store), Lookup::Wait));
        let gb = b.generation();
        a.fetch_succeeded(5, b"k1", None, &mut store, 1).unwrap();
        assert_eq!(b.poll(6, &mut store, 2), Poll::Idle);
        assert_ne!(b.generation(), gb, "b's waiters wake");
        assert_eq!(ready(b.lookup(7, &mut store)), "k1");
    }

    #[test]
    fn refreshes_ahead_of_expiry_and_honours_cache_control() {
        let mut store = MemoryStore::default();
        let mut a = vm();
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        a.fetch_succeeded(0, b"k1", Some(100), &mut store, 1)
            .unwrap(); // 100 s
        assert_eq!(a.poll(79_999, &mut store, 1), Poll::Idle);
        assert_eq!(
            a.poll(80_000, &mut store, 1),
            Poll::Fetch,
            "refresh at 80 % of max-age"
        );
        a.fetch_succeeded(80_000, b"k2", Some(1), &mut store, 1)
            .unwrap(); // clamped to 60 s
        assert_eq!(a.next_poll_at(80_000), Some(80_000 + 48_000));
        a.fetch_succeeded(90_000, b"k3", Some(10_000_000), &mut store, 1)
            .unwrap(); // clamped to 24 h
        assert!(fresh(&a, 90_000 + 86_399_999));
        assert!(stale(&a, 90_000 + 86_400_000));
        a.fetch_succeeded(0, b"k4", None, &mut store, 1).unwrap(); // default 600 s
        assert!(fresh(&a, 599_999) && stale(&a, 600_000));
    }

    #[test]
    fn failure_keeps_stale_keys_and_backs_off_exponentially_process_wide() {
        let mut store = MemoryStore::default();
        let (mut a, mut b) = (vm(), vm());
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        a.fetch_succeeded(0, b"k1", Some(60), &mut store, 1)
            .unwrap();
        // Refresh fails repeatedly; keys stay usable past expiry (stale-if-error).
        let mut now = 48_000;
        let mut delays = Vec::new();
        for _ in 0..8 {
            assert_eq!(a.poll(now, &mut store, 1), Poll::Fetch, "at {now}");
            a.fetch_failed(now, &mut store, 1);
            assert_eq!(
                b.poll(now + 1, &mut store, 2),
                Poll::Idle,
                "b respects the shared backoff"
            );
            let lease =
                Lease::decode(&store.get("meshguard/v1/jwks/idp/lease").unwrap().0).unwrap();
            delays.push(lease.until_ms - now);
            now = lease.until_ms;
        }
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert!(stale(&a, now));
        assert_eq!(ready(a.lookup(now, &mut store)), "k1");
        // After 24 h of stale-if-error the keys are gone.
        assert!(a.keys(60_000 + 86_400_000).is_none());
        // Recovery resets the backoff.
        assert_eq!(b.poll(now, &mut store, 2), Poll::Fetch);
        b.fetch_succeeded(now, b"k2", None, &mut store, 2).unwrap();
        assert_eq!(a.poll(now + 1, &mut store, 1), Poll::Idle);
        assert_eq!(ready(a.lookup(now + 2, &mut store)), "k2");
    }

    #[test]
    fn cold_failure_makes_requests_unavailable_not_waiting_forever() {
        let mut store = MemoryStore::default();
        let mut a = vm();
        assert!(matches!(a.lookup(0, &mut store), Lookup::Wait));
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        let g = a.generation();
        a.fetch_failed(100, &mut store, 1);
        assert_ne!(a.generation(), g, "waiters wake and re-decide");
        assert!(matches!(a.lookup(200, &mut store), Lookup::Unavailable));
        assert_eq!(a.poll(1_099, &mut store, 1), Poll::Idle);
        assert_eq!(a.poll(1_100, &mut store, 1), Poll::Fetch, "retry after 1 s");
        assert!(
            matches!(a.lookup(1_200, &mut store), Lookup::Wait),
            "a retry is under way"
        );
    }

    #[test]
    fn bad_body_is_a_failure() {
        let mut store = MemoryStore::default();
        let mut a = vm();
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        assert!(a.fetch_succeeded(1, b"bad", None, &mut store, 1).is_err());
        assert!(matches!(a.lookup(2, &mut store), Lookup::Unavailable));
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited_process_wide() {
        let mut store = MemoryStore::default();
        let (mut a, mut b) = (vm(), vm());
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        a.fetch_succeeded(0, b"k1", None, &mut store, 1).unwrap();
        assert_eq!(b.poll(1, &mut store, 2), Poll::Idle);

        assert_eq!(a.unknown_kid(10_000, &mut store), KidMiss::Wait);
        assert_eq!(
            a.unknown_kid(10_001, &mut store),
            KidMiss::Wait,
            "already requested"
        );
        assert_eq!(a.poll(10_002, &mut store, 1), Poll::Fetch);
        assert_eq!(
            b.unknown_kid(10_003, &mut store),
            KidMiss::Wait,
            "a's fetch is in flight"
        );
        a.fetch_succeeded(10_004, b"k2", None, &mut store, 1)
            .unwrap();
        // b adopts the new keys instead of fetching again.
        assert_eq!(b.unknown_kid(10_005, &mut store), KidMiss::Retry);
        assert_eq!(ready(b.lookup(10_006, &mut store)), "k2");
        // The kid is still unknown: no new fetch for 30 s, in any VM.
        assert_eq!(b.unknown_kid(10_007, &mut store), KidMiss::RateLimited);
        assert_eq!(a.unknown_kid(39_000, &mut store), KidMiss::RateLimited);
        assert_eq!(b.poll(39_001, &mut store, 2), Poll::Idle);
        assert_eq!(b.unknown_kid(40_002, &mut store), KidMiss::Wait);
        assert_eq!(b.poll(40_003, &mut store, 2), Poll::Fetch);
    }

    #[test]
    fn unknown_kid_flood_bounded_fetches() {
        let mut store = MemoryStore::default();
        let mut vms = [vm(), vm()];
        let mut fetches = 0;
        for (i, v) in vms.iter_mut().enumerate() {
            if v.poll(0, &mut store, i as u64 + 1) == Poll::Fetch {
                v.fetch_succeeded(0, b"k1", None, &mut store, i as u64 + 1)
                    .unwrap();
                fetches += 1;
            }
        }
        // 10 000 requests with random kids over 60 s, spread over two VMs, 1 ms apart.
        for t in 0..10_000u64 {
            let now = 1_000 + t * 6;
            let i = (t % 2) as usize;
            let v = &mut vms[i];
            let _ = v.unknown_kid(now, &mut store);
            if v.poll(now, &mut store, i as u64 + 1) == Poll::Fetch {
                fetches += 1;
                v.fetch_succeeded(now + 1, b"k1", None, &mut store, i as u64 + 1)
                    .unwrap();
            }
        }
        // One initial fetch plus at most one per 30 s window over 60 s.
        assert!(fetches <= 3, "{fetches} fetches");
    }

    #[test]
    fn lost_callback_lapses_and_fetch_is_retried() {
        let mut store = MemoryStore::default();
        let (mut a, mut b) = (vm(), vm());
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        // a never hears back; after the lease window (5 s + 1 s) someone may fetch again.
        assert_eq!(b.poll(5_999, &mut store, 2), Poll::Idle);
        let g = b.generation();
        assert_eq!(b.poll(6_000, &mut store, 2), Poll::Fetch);
        assert_ne!(b.generation(), g, "b noticed the peer's fetch lapse");
        assert_eq!(a.poll(6_001, &mut store, 1), Poll::Idle, "b holds it now");
    }

    #[test]
    fn abandoned_fetch_frees_the_lease_without_a_failure() {
        let mut store = MemoryStore::default();
        let (mut a, mut b) = (vm(), vm());
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        assert_eq!(b.poll(10, &mut store, 2), Poll::Idle);
        let g = b.generation();
        a.abandon(20, &mut store, 1);
        assert!(!a.is_fetching());
        assert_eq!(
            b.poll(30, &mut store, 2),
            Poll::Fetch,
            "no need to wait for the lapse"
        );
        assert_ne!(b.generation(), g, "b's waiters re-decide");
        let lease = Lease::decode(&store.get("meshguard/v1/jwks/idp/lease").unwrap().0).unwrap();
        assert_eq!(lease.failures, 0);
        // Abandoning twice, or without a fetch, changes nothing.
        a.abandon(40, &mut store, 1);
        let after = Lease::decode(&store.get("meshguard/v1/jwks/idp/lease").unwrap().0).unwrap();
        assert_eq!(after, lease);
    }

    #[test]
    fn garbage_in_shared_data_is_ignored() {
        let mut store = MemoryStore::default();
        store
            .set("meshguard/v1/jwks/idp/lease", b"\xffgarbage", 0)
            .unwrap();
        store
            .set("meshguard/v1/jwks/idp/record", b"garbage", 0)
            .unwrap();
        let mut a = vm();
        assert!(matches!(a.lookup(0, &mut store), Lookup::Wait));
        assert_eq!(a.poll(0, &mut store, 1), Poll::Fetch);
        // A corrupt record with a valid lease pointing at it is ignored, too.
        let lease = Lease {
            holder: 9,
            phase: LeasePhase::Idle,
            until_ms: 0,
            failures: 0,
            forced_at_ms: 0,
            record_seq: 50,
        };
        store
            .set("meshguard/v1/jwks/idp/lease", &lease.encode(), 0)
            .unwrap();
        let mut b = vm();
        assert!(matches!(b.lookup(1, &mut store), Lookup::Wait));
    }

    #[test]
    fn inline_never_fetches() {
        let mut store = MemoryStore::default();
        let mut a = IssuerKeys::inline(Rc::new("k".to_string()));
        assert_eq!(a.poll(0, &mut store, 1), Poll::Idle);
        assert_eq!(ready(a.lookup(u64::MAX - 1, &mut store)), "k");
        assert_eq!(a.unknown_kid(0, &mut store), KidMiss::RateLimited);
        assert_eq!(a.next_poll_at(0), None);
        assert!(fresh(&a, u64::MAX - 1));
        assert_eq!(store.writes(), 0);
    }
}
