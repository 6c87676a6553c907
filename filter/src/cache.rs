//! The verified-token cache: one per worker VM, bounded, host-free.
//!
//! Clients reuse a token for minutes, so most requests carry a token this VM has already
//! verified. A hit skips parsing (base64url + JSON) and the signature check, which dominate the
//! request cost inside wasm (see `docs/performance.md`).
//!
//! # What a hit promises
//! A cached decision equals a fresh [`crate::jose::verify`] of the same token, with the same rule
//! and the keys the rule has *now*, at the time *now*:
//! - only successes are cached, and everything that decided them except time and keys is fixed
//!   per VM (the compiled configuration is immutable; a new configuration gets a new cache);
//! - the key set: each entry remembers the [`Jwks`] it was verified with. When the rule's current
//!   set is a different one (a refresh or a rotation), the entry survives only if every key that
//!   could have verified it (same `kid` when the token had one, fitting the `alg`) is still in
//!   the current set with the same material; otherwise it is dropped and the token is verified
//!   afresh. Dropping is always safe: a miss is a fresh verification;
//! - time: `exp`, `nbf`, `iat` and the lifetime cap are re-checked on every hit with the rule's
//!   clock skew, in the verifier's order, so an expired token gets [`JoseError::Expired`] from the
//!   cache exactly as it would from the verifier (and is then dropped).
//!
//! # Shape
//! Key: SHA-256 of the token text ([`TokenDigest`]); the token itself is never stored. Value:
//! `Rc<VerifiedClaims>` shared with the request, the rule index and the `Rc<Jwks>` it was
//! verified with. Index: a `HashMap` from digest to slot (the digest is already uniform, so the
//! hasher just takes its first 8 bytes; only verified tokens are ever inserted, so an attacker
//! cannot flood a bucket). Eviction: CLOCK (second chance) over a fixed slot array: a hit sets a
//! bit, no list is relinked and nothing is allocated; an insert into a full cache sweeps the
//! hand to the first slot whose bit is clear. Tokens longer than [`MAX_CACHED_TOKEN_BYTES`] are
//! not cached (like Envoy's `jwt_authn` cache), which bounds an entry's memory.
//!
//! # One hash pass on a miss
//! The signing input (header and payload, the text before the last `.`) is a prefix of the
//! token, so the pass that hashes the token for its key also keeps the SHA-256 state at that
//! point ([`meshguard_crypto::sha256_with_prefix`]). [`CacheKey::parse`] hands it to the parsed
//! token, and an RS256, PS256 or ES256 check finishes it instead of hashing the signing input
//! again. The state is paired with the token in that one place, from the same text.
//!
//! # The hot-token memo
//! SHA-256 of a 530-byte token costs ~1.4–1.9 µs inside V8: most of a hit's own work. Yet a
//! worker usually sees a handful of tokens over and over (in a mesh, one per calling workload),
//! so [`TokenCache::key`] first looks in a small direct-mapped memo of recently *verified* token
//! texts and their digests ([`MEMO_SLOTS`] slots, placed by the token's last bytes, confirmed by
//! comparing the whole text). The memo only saves recomputing a pure function: the cache stays
//! keyed by the digest, an entry's validity is decided as above, and a token that is not in the
//! memo is simply hashed. Only tokens this VM verified (inserted, or hit) are memoised, so
//! requests with garbage tokens cannot fill it; memory is bounded by
//! `MEMO_SLOTS × MAX_CACHED_TOKEN_BYTES` (≈ 35 KiB for typical 530-byte tokens). Envoy's own
//! `jwt_authn` cache keeps its token texts too (it is keyed by them).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use meshguard_crypto::Sha256Prefix;

use crate::jose::{
    Algorithm, JoseError, Jwk, Jwks, TokenLimits, UnverifiedToken, Validation, VerifiedClaims,
};

/// Entries per VM when the configuration does not say (`tokenCacheEntries`).
pub const DEFAULT_ENTRIES: usize = 1024;
/// Largest configurable number of entries.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Longer tokens are verified every time and never cached (Envoy's cache has the same 4 KiB cap).
pub const MAX_CACHED_TOKEN_BYTES: usize = 4096;
/// Slots and index buckets allocated up front; beyond this the cache grows as it fills.
const PREALLOCATE: usize = 4096;
/// Slots of the hot-token memo (a power of two; see the module docs).
pub const MEMO_SLOTS: usize = 64;

/// SHA-256 of a token's text: the cache key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token` (the token exactly as extracted, without `Bearer `).
    pub fn of(token: &str) -> Self {
        TokenDigest(meshguard_crypto::sha256(token.as_bytes()))
    }

    /// The digest of `token` and, from the same pass, the SHA-256 state over its signing input
    /// (the text before its last `.`), for [`CacheKey::parse`].
    fn with_signing_prefix(token: &str) -> (Self, Option<Sha256Prefix>) {
        let Some(split) = token.rfind('.') else {
            return (TokenDigest::of(token), None);
        };
        let (digest, prefix) = meshguard_crypto::sha256_with_prefix(token.as_bytes(), split);
        (TokenDigest(digest), prefix)
    }

    fn prefix(&self) -> u64 {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, g, h])
    }
}

/// A token paired with its digest, as [`TokenCache::key`] computed it: the only way to address
/// the cache, so a digest can never be paired with another token's text in the memo.
pub struct CacheKey<'t> {
    token: &'t str,
    digest: TokenDigest,
    /// Found in the memo (nothing to remember again).
    memoized: bool,
    /// SHA-256 absorbed over `token`'s signing input on the way to `digest` (not for a memo
    /// hit): on a miss, the RS256/PS256/ES256 signature check finishes it instead of hashing the
    /// signing input again.
    signing: Option<Sha256Prefix>,
}

impl CacheKey<'_> {
    /// The digest (SHA-256 of the token text).
    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }

    /// Parses the token this key is for ([`UnverifiedToken::parse`]), with the hash of its
    /// signing input from the pass that computed the key. The one place a hash state is paired
    /// with a token: both come from `self.token`.
    pub fn parse(&self, limits: &TokenLimits) -> Result<UnverifiedToken, JoseError> {
        let token = UnverifiedToken::parse(self.token, limits)?;
        Ok(match &self.signing {
            Some(prefix) => token.with_signing_prefix(prefix.clone()),
            None => token,
        })
    }
}

/// The memo's slot for a token: its last 8 bytes (the signature's end, uniform for real tokens)
/// and its length, mixed by a multiplication. Collisions only cost a re-hash: a slot is trusted
/// only after comparing the whole text.
fn memo_slot(token: &str) -> usize {
    let bytes = token.as_bytes();
    let tail = bytes.len().saturating_sub(8);
    let mut word = [0u8; 8];
    for (to, from) in word.iter_mut().zip(bytes.get(tail..).unwrap_or_default()) {
        *to = *from;
    }
    let mixed = (u64::from_le_bytes(word) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The top bits are the best mixed; MEMO_SLOTS is a power of two.
    (mixed >> (64 - MEMO_SLOTS.trailing_zeros())) as usize
}

/// Whole-text equality, eight bytes at a time. `==` on byte slices becomes compiler-builtins'
/// byte-by-byte `memcmp` on wasm32: ~0.5 ns per byte in V8, most of a memo hit for a 530-byte
/// token (`bench/results/micro.md`, "hit").
fn same_text(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    a_tail == b_tail
        && a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix());
    }
}

impl core::fmt::Debug for TokenDigest {
    /// A short prefix only (enough to correlate log lines, useless to find the token).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TokenDigest({:08x}…)", self.prefix() & 0xffff_ffff)
    }
}

/// A pass-through hasher for [`TokenDigest`] (already a cryptographic hash).
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for TokenDigest (it calls write_u64); a plain FNV-1a keeps it correct.
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Counters since the cache was created (the host exports deltas as metrics on its tick, so
/// counting costs no host call per request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (allowed, or refused for time: expired, not yet valid).
    pub hits: u64,
    /// Lookups that found nothing usable (absent, other rule, key gone).
    pub misses: u64,
    /// Verified tokens stored.
    pub inserts: u64,
    /// Entries pushed out to make room (CLOCK).
    pub evictions: u64,
    /// Entries dropped because a key that could have verified them left the JWKS.
    pub key_drops: u64,
    /// Entries dropped on a hit because the token had expired.
    pub expired: u64,
    /// Keys whose digest came from the hot-token memo instead of SHA-256.
    pub memo_hits: u64,
}

/// One cached verification.
struct Entry {
    digest: TokenDigest,
    rule: usize,
    keys: Rc<Jwks>,
    claims: Rc<VerifiedClaims>,
    /// CLOCK's second-chance bit: set by a hit, cleared by the sweeping hand.
    referenced: bool,
}

/// A bounded cache of verified tokens (see the module docs).
pub struct TokenCache {
    capacity: usize,
    index: HashMap<TokenDigest, usize, BuildHasherDefault<DigestHasher>>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    hand: usize,
    stats: CacheStats,
    /// The hot-token memo: verified token texts and their digests (empty when disabled).
    memo: Vec<Option<(Box<str>, TokenDigest)>>,
}

impl TokenCache {
    /// A cache of at most `capacity` entries (clamped to [`MAX_ENTRIES`]); 0 disables it.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(MAX_ENTRIES);
        let reserve = capacity.min(PREALLOCATE);
        TokenCache {
            capacity,
            index: HashMap::with_capacity_and_hasher(reserve, BuildHasherDefault::default()),
            slots: Vec::with_capacity(reserve),
            free: Vec::new(),
            hand: 0,
            stats: CacheStats::default(),
            memo: if capacity > 0 {
                (0..MEMO_SLOTS).map(|_| None).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The key of `token`: its digest from the hot-token memo when this exact text was verified
    /// recently, otherwise SHA-256 of it.
    pub fn key<'t>(&mut self, token: &'t str) -> CacheKey<'t> {
        if let Some(Some((text, digest))) = self.memo.get(memo_slot(token))
            && same_text(text.as_bytes(), token.as_bytes())
        {
            self.stats.memo_hits += 1;
            return CacheKey {
                token,
                digest: *digest,
                memoized: true,
                signing: None,
            };
        }
        let (digest, signing) = TokenDigest::with_signing_prefix(token);
        CacheKey {
            token,
            digest,
            memoized: false,
            signing,
        }
    }

    /// Memoises a verified token's digest (see the module docs).
    fn remember(&mut self, key: &CacheKey<'_>) {
        if key.memoized || key.token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        if let Some(place) = self.memo.get_mut(memo_slot(key.token)) {
            *place = Some((Box::from(key.token), key.digest));
        }
    }

    /// Whether the cache stores anything at all.
    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Most entries it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The rule a cached token was verified under, so the caller can look up that rule's current
    /// keys before [`TokenCache::get`] without parsing the token. Counts a miss when absent.
    pub fn rule_of(&mut self, digest: &TokenDigest) -> Option<usize> {
        let rule = self
            .index
            .get(digest)
            .and_then(|slot| self.slots.get(*slot))
            .and_then(|entry| entry.as_ref().map(|e| e.rule));
        if rule.is_none() {
            self.stats.misses += 1;
        }
        rule
    }

    /// The cached decision for a token under `rule`, whose current keys are `keys`, at
    /// `now_unix_secs`: `Some(Ok(claims))` or `Some(Err(time error))` exactly as a fresh
    /// verification would decide, or `None` (verify afresh, then [`TokenCache::insert`]).
    pub fn get(
        &mut self,
        key: &CacheKey<'_>,
        rule: usize,
        keys: &Rc<Jwks>,
        validation: &Validation,
        now_unix_secs: u64,
    ) -> Option<Result<Rc<VerifiedClaims>, JoseError>> {
        let Some(&slot) = self.index.get(&key.digest) else {
            self.stats.misses += 1;
            return None;
        };
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            self.stats.misses += 1;
            return None;
        };
        if entry.rule != rule {
            self.stats.misses += 1;
            return None;
        }
        if !Rc::ptr_eq(&entry.keys, keys) {
            if keys_survive(&entry.keys, keys, entry.claims.kid(), entry.claims.alg()) {
                // Re-point at the current set, so the old one can be freed and the next hit
                // takes the fast path.
                entry.keys = Rc::clone(keys);
            } else {
                self.remove(slot);
                self.stats.key_drops += 1;
                self.stats.misses += 1;
                return None;
            }
        }
        match check_times(validation, &entry.claims, now_unix_secs) {
            Ok(()) => {
                entry.referenced = true;
                let claims = Rc::clone(&entry.claims);
                self.stats.hits += 1;
                self.remember(key);
                Some(Ok(claims))
            }
            Err(error) => {
                if error == JoseError::Expired {
                    self.remove(slot);
                    self.stats.expired += 1;
                }
                self.stats.hits += 1;
                Some(Err(error))
            }
        }
    }

    /// Stores a token that [`crate::jose::verify`] just accepted under `rule` with `keys`.
    /// Does nothing when the cache is disabled or the token is longer than
    /// [`MAX_CACHED_TOKEN_BYTES`].
    pub fn insert(
        &mut self,
        key: &CacheKey<'_>,
        rule: usize,
        keys: &Rc<Jwks>,
        claims: Rc<VerifiedClaims>,
    ) {
        if self.capacity == 0 || key.token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        self.remember(key);
        let digest = key.digest;
        let entry = Entry {
            digest,
            rule,
            keys: Rc::clone(keys),
            claims,
            referenced: false,
        };
        if let Some(&slot) = self.index.get(&digest) {
            if let Some(place) = self.slots.get_mut(slot) {
                *place = Some(entry);
                self.stats.inserts += 1;
            }
            return;
        }
        let slot = if let Some(slot) = self.free.pop() {
            slot
        } else if self.slots.len() < self.capacity {
            self.slots.push(None);
            self.slots.len() - 1
        } else {
            match self.evict() {
                Some(slot) => slot,
                None => return,
            }
        };
        if let Some(place) = self.slots.get_mut(slot) {
            *place = Some(entry);
            self.index.insert(digest, slot);
            self.stats.inserts += 1;
        }
    }

    /// Drops every entry (e.g. when the host swaps the configuration). Counters are kept.
    pub fn clear(&mut self) {
        for place in &mut self.memo {
            *place = None;
        }
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
    }

    /// CLOCK: frees the first slot whose second-chance bit is clear, clearing bits on the way.
    /// Two turns always find one (the first turn clears every bit).
    fn evict(&mut self) -> Option<usize> {
        let len = self.slots.len();
        for _ in 0..len.saturating_mul(2) {
            let slot = self.hand;
            self.hand = if slot + 1 >= len { 0 } else { slot + 1 };
            match self.slots.get_mut(slot) {
                Some(Some(entry)) if entry.referenced => entry.referenced = false,
                Some(Some(_)) => {
                    self.remove(slot);
                    self.stats.evictions += 1;
                    // `remove` put it on the free list; take it back.
                    return self.free.pop();
                }
                Some(None) => {
                    self.free.retain(|f| *f != slot);
                    return Some(slot);
                }
                None => {}
            }
        }
        None
    }

    fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) {
            self.index.remove(&entry.digest);
            self.free.push(slot);
        }
    }
}

impl core::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Whether every key of `old` that could have verified a token (`kid`, `alg`) is still in `new`
/// with the same material, i.e. whether a fresh verification with `new` still finds the key that
/// verified it. Conservative: `false` only costs a fresh verification.
fn keys_survive(old: &Jwks, new: &Jwks, kid: Option<&str>, alg: Algorithm) -> bool {
    let mut candidates = old
        .keys()
        .iter()
        .filter(|k| k.fits(alg) && kid.is_none_or(|kid| k.kid() == Some(kid)))
        .peekable();
    candidates.peek().is_some() && candidates.all(|k| new.keys().iter().any(|n| same_key(k, n)))
}

/// Same `kid`, same `alg` and same public key material.
fn same_key(a: &Jwk, b: &Jwk) -> bool {
    a == b
}

/// The time rules of [`Validation`] (RFC 7519 §4.1.4–4.1.6) for claims verified earlier: the
/// verifier's own code, so the same checks, order, skew and saturation as a fresh verification.
fn check_times(v: &Validation, claims: &VerifiedClaims, now: u64) -> Result<(), JoseError> {
    v.check_times(&claims.times(), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{TokenLimits, UnverifiedToken, verify};
    use meshguard_test_support::{self as support, Key};
    use serde_json::{Value, json};

    const ISS: &str = "https://issuer.test";
    const NOW: u64 = 1_700_000_000;

    /// P-256 key number `n`.
    fn signing_key(n: u8) -> Key {
        Key::from(support::p256_key_from(n))
    }

    fn jwk(kid: &str, key: u8) -> Value {
        signing_key(key).jwk(kid)
    }

    fn jwks(keys: &[Value]) -> Rc<Jwks> {
        Rc::new(Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap())
    }

    /// An ES256 token signed by key number `key`, with header `kid` when given.
    fn token(kid: Option<&str>, key: u8, claims: Value) -> String {
        let header = match kid {
            Some(kid) => json!({"alg": "ES256", "kid": kid}),
            None => json!({"alg": "ES256"}),
        };
        support::mint_with(&header, &claims, |m| signing_key(key).sign("ES256", m))
    }

    fn fresh(
        token: &str,
        keys: &Jwks,
        v: &Validation,
        now: u64,
    ) -> Result<VerifiedClaims, JoseError> {
        let parsed = UnverifiedToken::parse(token, &TokenLimits::default())?;
        verify(&parsed, keys, v, now)
    }

    /// Verifies through the cache as the host does: cache first, else fresh + insert.
    fn through_cache(
        cache: &mut TokenCache,
        token: &str,
        keys: &Rc<Jwks>,
        v: &Validation,
        now: u64,
    ) -> (Result<Rc<VerifiedClaims>, JoseError>, bool) {
        let key = cache.key(token);
        if let Some(decision) = cache.get(&key, 0, keys, v, now) {
            return (decision, true);
        }
        match fresh(token, keys, v, now) {
            Ok(claims) => {
                let claims = Rc::new(claims);
                cache.insert(&key, 0, keys, Rc::clone(&claims));
                (Ok(claims), false)
            }
            Err(e) => (Err(e), false),
        }
    }

    fn same(
        a: &Result<Rc<VerifiedClaims>, JoseError>,
        b: &Result<VerifiedClaims, JoseError>,
    ) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                a.claims() == b.claims()
                    && a.issuer() == b.issuer()
                    && a.kid() == b.kid()
                    && a.alg() == b.alg()
                    && a.payload_b64() == b.payload_b64()
            }
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }

    #[test]
    fn hit_returns_the_same_claims() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let t = token(
            Some("a"),
            1,
            json!({"iss": ISS, "sub": "s", "exp": NOW + 60}),
        );
        let mut cache = TokenCache::new(4);
        let (first, hit) = through_cache(&mut cache, &t, &keys, &v, NOW);
        assert!(!hit);
        let (second, hit) = through_cache(&mut cache, &t, &keys, &v, NOW + 1);
        assert!(hit);
        assert!(Rc::ptr_eq(
            first.as_ref().unwrap(),
            second.as_ref().unwrap()
        ));
        assert_eq!(cache.rule_of(&TokenDigest::of(&t)), Some(0));
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 1));
    }

    #[test]
    fn memo_serves_the_digest_of_verified_tokens_only() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 60}));
        let mut cache = TokenCache::new(4);
        // Not verified yet: hashed every time, nothing memoised.
        for _ in 0..2 {
            let key = cache.key(&t);
            assert!(key.digest() == &TokenDigest::of(&t));
        }
        assert_eq!(cache.stats().memo_hits, 0);
        // A refused token is never memoised either.
        let forged = format!("{}AAAA", &t[..t.len() - 4]);
        assert!(
            through_cache(&mut cache, &forged, &keys, &v, NOW)
                .0
                .is_err()
        );
        assert!(!cache.key(&forged).memoized);
        // Verified (inserted): the next key comes from the memo, and is the SHA-256 digest.
        assert!(through_cache(&mut cache, &t, &keys, &v, NOW).0.is_ok());
        let key = cache.key(&t);
        assert!(key.memoized);
        assert!(key.digest() == &TokenDigest::of(&t));
        // Disabled cache: no memo at all.
        let mut off = TokenCache::new(0);
        assert!(!off.key(&t).memoized);
    }

    #[test]
    fn a_fresh_key_carries_the_signing_input_hash_and_a_memo_hit_none() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 60}));
        let signing_input = &t[..t.rfind('.').unwrap()];
        let mut cache = TokenCache::new(4);
        let key = cache.key(&t);
        let parsed = key.parse(&TokenLimits::default()).unwrap();
        assert_eq!(
            parsed.signed_sha256(),
            Some(&meshguard_crypto::sha256(signing_input.as_bytes()))
        );
        assert!(verify(&parsed, &keys, &v, NOW).is_ok());
        // The same hash state never vouches for another signature over the same input.
        let forged = format!("{}AAAA", &t[..t.len() - 4]);
        let forged_key = cache.key(&forged);
        let parsed = forged_key.parse(&TokenLimits::default()).unwrap();
        assert!(parsed.signed_sha256().is_some());
        assert!(verify(&parsed, &keys, &v, NOW).is_err());
        // An algorithm of another hash gets none (parsing is all this needs: any signature).
        let other = support::mint_with(
            &json!({"alg": "EdDSA", "kid": "a"}),
            &json!({"iss": ISS, "exp": NOW + 60}),
            |m| signing_key(1).sign("ES256", m),
        );
        let other_key = cache.key(&other);
        let parsed = other_key.parse(&TokenLimits::default()).unwrap();
        assert_eq!(parsed.signed_sha256(), None);
        // Memoised (verified before): no hash pass, so none to hand on.
        assert!(through_cache(&mut cache, &t, &keys, &v, NOW).0.is_ok());
        let key = cache.key(&t);
        assert!(key.memoized);
        assert_eq!(
            key.parse(&TokenLimits::default()).unwrap().signed_sha256(),
            None
        );
    }

    #[test]
    fn memo_slot_collisions_fall_back_to_hashing() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let a = token(
            Some("a"),
            1,
            json!({"iss": ISS, "sub": "a", "exp": NOW + 60}),
        );
        let mut cache = TokenCache::new(4);
        assert!(through_cache(&mut cache, &a, &keys, &v, NOW).0.is_ok());
        // Same length and same last 8 bytes, so the same slot, but another text.
        let mut b = a.clone().into_bytes();
        b[3] ^= 1;
        let b = String::from_utf8(b).unwrap();
        assert_eq!(memo_slot(&a), memo_slot(&b));
        let key = cache.key(&b);
        assert!(!key.memoized);
        assert!(key.digest() == &TokenDigest::of(&b));
        assert!(key.digest() != &TokenDigest::of(&a));
        // ... and a hit of the memoised token still comes from the memo.
        assert!(cache.key(&a).memoized);
    }

    #[test]
    fn same_text_compares_every_byte() {
        let text: Vec<u8> = (0..=40u8).collect();
        for len in 0..text.len() {
            let a = &text[..len];
            assert!(same_text(a, a));
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!same_text(a, &b), "len {len}, byte {i}");
            }
            assert!(!same_text(a, &text[..len + 1]));
        }
    }

    #[test]
    fn memo_slots_spread_tokens() {
        // 64 real tokens (differing claims, so differing signatures) land in many slots.
        let mut used = std::collections::HashSet::new();
        for i in 0..64 {
            let t = token(None, 1, json!({"iss": ISS, "n": i}));
            used.insert(memo_slot(&t));
        }
        assert!(
            used.len() > 32,
            "only {} of {MEMO_SLOTS} slots used",
            used.len()
        );
    }

    #[test]
    fn expired_on_hit_is_the_verifier_error_and_drops_the_entry() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS); // 60 s skew
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 10}));
        let mut cache = TokenCache::new(4);
        assert!(through_cache(&mut cache, &t, &keys, &v, NOW).0.is_ok());
        assert!(
            through_cache(&mut cache, &t, &keys, &v, NOW + 69).1,
            "inside the skew"
        );
        let (late, hit) = through_cache(&mut cache, &t, &keys, &v, NOW + 70);
        assert!(hit);
        assert_eq!(late.err(), Some(JoseError::Expired));
        assert!(cache.is_empty());
        assert_eq!(cache.stats().expired, 1);
    }

    #[test]
    fn key_rotation_keeps_surviving_keys_and_drops_the_rest() {
        let a = jwk("a", 1);
        let b = jwk("b", 2);
        let v = Validation::new(ISS);
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 600}));
        let mut cache = TokenCache::new(4);
        let first = jwks(std::slice::from_ref(&a));
        assert!(through_cache(&mut cache, &t, &first, &v, NOW).0.is_ok());
        // A refresh that still lists key "a" (plus a new one): still a hit.
        let both = jwks(&[b.clone(), a.clone()]);
        assert!(through_cache(&mut cache, &t, &both, &v, NOW).1);
        // Key "a" gone: dropped, and the fresh answer is "unknown kid".
        let only_b = jwks(&[b]);
        let (res, hit) = through_cache(&mut cache, &t, &only_b, &v, NOW);
        assert!(!hit);
        assert_eq!(res.err(), Some(JoseError::UnknownKid));
        assert_eq!(cache.stats().key_drops, 1);
        // Same kid, other material: dropped too (bad signature afresh).
        let mut cache = TokenCache::new(4);
        assert!(through_cache(&mut cache, &t, &first, &v, NOW).0.is_ok());
        let swapped = jwks(&[jwk("a", 3)]);
        let (res, hit) = through_cache(&mut cache, &t, &swapped, &v, NOW);
        assert!(!hit);
        assert_eq!(res.err(), Some(JoseError::BadSignature));
    }

    #[test]
    fn clock_evicts_unreferenced_first_and_stays_bounded() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let tokens: Vec<String> = (0..10)
            .map(|i| token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 600, "n": i})))
            .collect();
        let mut cache = TokenCache::new(3);
        for t in &tokens[..3] {
            assert!(through_cache(&mut cache, t, &keys, &v, NOW).0.is_ok());
        }
        // Reference token 0; inserting token 3 must evict an unreferenced one, not 0.
        assert!(through_cache(&mut cache, &tokens[0], &keys, &v, NOW).1);
        assert!(
            through_cache(&mut cache, &tokens[3], &keys, &v, NOW)
                .0
                .is_ok()
        );
        assert_eq!(cache.len(), 3);
        assert!(cache.rule_of(&TokenDigest::of(&tokens[0])).is_some());
        for t in &tokens {
            assert!(through_cache(&mut cache, t, &keys, &v, NOW).0.is_ok());
            assert!(cache.len() <= 3);
        }
        assert!(cache.stats().evictions >= 7);
    }

    #[test]
    fn disabled_and_oversized_tokens_are_not_cached() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 600}));
        let mut off = TokenCache::new(0);
        assert!(!off.is_enabled());
        assert!(through_cache(&mut off, &t, &keys, &v, NOW).0.is_ok());
        assert!(!through_cache(&mut off, &t, &keys, &v, NOW).1);
        let big = token(
            Some("a"),
            1,
            json!({"iss": ISS, "exp": NOW + 600, "pad": "x".repeat(4000)}),
        );
        let mut cache = TokenCache::new(4);
        assert!(through_cache(&mut cache, &big, &keys, &v, NOW).0.is_ok());
        assert!(cache.is_empty());
    }

    #[test]
    fn other_rule_is_a_miss() {
        let keys = jwks(&[jwk("a", 1)]);
        let v = Validation::new(ISS);
        let t = token(Some("a"), 1, json!({"iss": ISS, "exp": NOW + 600}));
        let mut cache = TokenCache::new(4);
        assert!(through_cache(&mut cache, &t, &keys, &v, NOW).0.is_ok());
        let key = cache.key(&t);
        assert!(cache.get(&key, 1, &keys, &v, NOW).is_none());
        assert!(cache.get(&key, 0, &keys, &v, NOW).is_some());
    }

    /// A small deterministic PRNG (xorshift64*) for the property test: no dependency, and every
    /// run explores the same cases (a failure reports its seed and step).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Property: over random tokens (with and without kid, nbf, iat), random times (jumping
    /// back and forth across every boundary) and random key rotations (keys added, removed,
    /// replaced under the same kid), with random rule settings, the decision through the cache
    /// always equals a fresh verification.
    #[test]
    fn cached_decision_equals_fresh_decision() {
        let key_sets = [
            jwks(&[jwk("a", 1)]),
            jwks(&[jwk("a", 1), jwk("b", 2)]),
            jwks(&[jwk("b", 2)]),
            jwks(&[jwk("a", 3), jwk("b", 2)]),
            jwks(&[jwk("c", 1)]),
            jwks(&[json!({"kty": "EC", "crv": "P-256",
                "x": jwk("x", 1)["x"], "y": jwk("x", 1)["y"]})]),
        ];
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let v = Validation {
                clock_skew_secs: rng.below(3) * 30,
                max_lifetime_secs: [None, Some(300), Some(3600)][rng.below(3) as usize],
                require_expiration: rng.below(4) != 0,
                ..Validation::new(ISS)
            };
            let mut tokens = Vec::new();
            for i in 0..24u64 {
                let mut claims = json!({"iss": ISS, "sub": format!("u{i}")});
                let base = NOW + rng.below(200);
                if rng.below(6) != 0 {
                    claims["exp"] = json!(base + rng.below(900));
                }
                if rng.below(3) == 0 {
                    claims["nbf"] = json!(base + rng.below(120));
                }
                if rng.below(2) == 0 {
                    claims["iat"] = json!(base.saturating_sub(rng.below(600)) + rng.below(100));
                }
                let (kid, key) = match rng.below(4) {
                    0 => (Some("a"), 1),
                    1 => (Some("b"), 2),
                    2 => (None, 1),
                    _ => (Some("c"), 1),
                };
                tokens.push(token(kid, key, claims));
            }
            let mut cache = TokenCache::new(1 + rng.below(12) as usize);
            let mut keys = Rc::clone(&key_sets[0]);
            let mut now = NOW;
            for step in 0..250 {
                match rng.below(10) {
                    0 => keys = Rc::clone(&key_sets[rng.below(key_sets.len() as u64) as usize]),
                    // A re-parse of the same document: a new Rc with equal keys.
                    1 => keys = Rc::new((*keys).clone()),
                    2 => now = NOW + rng.below(1200),
                    3 => now = now.saturating_sub(rng.below(90)),
                    _ => now += rng.below(20),
                }
                let t = &tokens[rng.below(tokens.len() as u64) as usize];
                let (cached, _) = through_cache(&mut cache, t, &keys, &v, now);
                let expected = fresh(t, &keys, &v, now);
                assert!(
                    same(&cached, &expected),
                    "seed {seed} step {step}: cache {cached:?} vs fresh {expected:?}"
                );
            }
            let s = cache.stats();
            assert!(
                s.hits > 0 && s.misses > 0 && s.memo_hits > 0,
                "seed {seed}: the test exercised both paths and the memo: {s:?}"
            );
        }
    }
}
