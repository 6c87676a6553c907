//! The measured operations, shared by the native runner (`src/main.rs`) and the wasm module
//! (exports `mg_*`, driven by `wasm.mjs` in Node, i.e. V8 — the engine Envoy embeds).
//!
//! One benchmark case = a JWKS and a token. The operations:
//! - `verify`: parse the token + verify signature and claims (a cache miss in the filter);
//! - `parse`: parse only (base64url + JSON; the part a cache hit also skips);
//! - `digest`: SHA-256 of the token text (the cache key when the token is not in the hot-token memo);
//! - `hit`: a whole cache hit as the filter does it: the key (from the memo), the rule lookup and
//!   the cached decision with its time re-check.
//!
//! And a whole request through the engine, cold and steady, beside the phases of a cold one
//! (`request`, driven by `breakdown.mjs`).

pub mod request;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshguard::cache::{TokenCache, TokenDigest};
use meshguard::jose::{Jwks, TokenLimits, UnverifiedToken, Validation, verify};

/// Counts live heap bytes (requested sizes), to measure what the token cache holds.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes right now.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A JWKS + token pair, parsed once.
pub struct Case {
    pub jwks: Jwks,
    pub jwks_rc: Rc<Jwks>,
    pub token: String,
    pub validation: Validation,
    pub now: u64,
    /// The cache `hit` reads, holding the token: filled by its first call, so that a timed batch
    /// is hits only (a verification per batch would be most of an ES512 batch in V8).
    hits: RefCell<Option<TokenCache>>,
}

impl Case {
    pub fn new(jwks: &[u8], token: String, issuer: &str, now: u64) -> Result<Case, String> {
        let jwks = Jwks::parse(jwks).map_err(|e| format!("jwks: {e}"))?;
        let jwks_rc = Rc::new(jwks.clone());
        Ok(Case {
            jwks,
            jwks_rc,
            token,
            validation: Validation::new(issuer),
            now,
            hits: RefCell::new(None),
        })
    }

    /// Verifies `token` and stores it in `cache` as the filter does on a miss; true if accepted.
    pub fn cache_add(&self, cache: &mut TokenCache, token: &str) -> bool {
        let Ok(parsed) = UnverifiedToken::parse(token, &TokenLimits::default()) else {
            return false;
        };
        let Ok(claims) = verify(&parsed, &self.jwks_rc, &self.validation, self.now) else {
            return false;
        };
        let key = cache.key(token);
        cache.insert(&key, 0, &self.jwks_rc, Rc::new(claims));
        true
    }

    /// Parse + verify `iters` times; returns how many verified (must be `iters`).
    pub fn verify(&self, iters: u32) -> u32 {
        let limits = TokenLimits::default();
        let mut ok = 0;
        for _ in 0..iters {
            if let Ok(token) = UnverifiedToken::parse(core::hint::black_box(&self.token), &limits)
                && verify(&token, &self.jwks, &self.validation, self.now).is_ok()
            {
                ok += 1;
            }
        }
        ok
    }

    /// Parse only, `iters` times.
    pub fn parse(&self, iters: u32) -> u32 {
        let limits = TokenLimits::default();
        let mut ok = 0;
        for _ in 0..iters {
            if UnverifiedToken::parse(core::hint::black_box(&self.token), &limits).is_ok() {
                ok += 1;
            }
        }
        ok
    }

    /// A cache hit, `iters` times (the token verified and cached once first); returns the hits.
    pub fn hit(&self, iters: u32) -> u32 {
        let mut hits = self.hits.borrow_mut();
        if hits.is_none() {
            let mut cache = TokenCache::new(16);
            if !self.cache_add(&mut cache, &self.token) {
                return 0;
            }
            *hits = Some(cache);
        }
        let Some(cache) = hits.as_mut() else {
            return 0;
        };
        let mut hits = 0;
        for _ in 0..iters {
            let key = cache.key(core::hint::black_box(&self.token));
            if cache.rule_of(key.digest()) == Some(0)
                && let Some(Ok(claims)) =
                    cache.get(&key, 0, &self.jwks_rc, &self.validation, self.now)
            {
                core::hint::black_box(claims);
                hits += 1;
            }
        }
        hits
    }

    /// SHA-256 of the token, `iters` times.
    pub fn digest(&self, iters: u32) -> u32 {
        for _ in 0..iters {
            core::hint::black_box(TokenDigest::of(core::hint::black_box(&self.token)));
        }
        iters
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    use super::Case;
    use std::cell::RefCell;

    thread_local! {
        static CASE: RefCell<Option<Case>> = const { RefCell::new(None) };
    }

    /// Memory for the host to copy inputs into (leaked: the module lives for one run).
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_alloc(len: usize) -> *mut u8 {
        let mut buf = vec![0u8; len];
        let ptr = buf.as_mut_ptr();
        core::mem::forget(buf);
        ptr
    }

    /// Sets the case: JWKS bytes, token bytes, issuer, now. 0 = ok, 1 = bad input.
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_setup(
        jwks: *const u8,
        jwks_len: usize,
        token: *const u8,
        token_len: usize,
        iss: *const u8,
        iss_len: usize,
        now: u64,
    ) -> i32 {
        // SAFETY: the host wrote these ranges through mg_alloc just before.
        let (jwks, token, iss) = unsafe {
            (
                core::slice::from_raw_parts(jwks, jwks_len),
                core::slice::from_raw_parts(token, token_len),
                core::slice::from_raw_parts(iss, iss_len),
            )
        };
        let (Ok(token), Ok(iss)) = (std::str::from_utf8(token), std::str::from_utf8(iss)) else {
            return 1;
        };
        match Case::new(jwks, token.to_owned(), iss, now) {
            Ok(case) => {
                CASE.with(|c| *c.borrow_mut() = Some(case));
                0
            }
            Err(_) => 1,
        }
    }

    thread_local! {
        static CACHE: RefCell<meshguard::cache::TokenCache> =
            RefCell::new(meshguard::cache::TokenCache::new(0));
    }

    /// A fresh token cache of `capacity` entries (the old one is dropped).
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_cache_new(capacity: usize) {
        CACHE.with(|c| *c.borrow_mut() = meshguard::cache::TokenCache::new(capacity));
    }

    /// Verifies the token at `ptr` with the case's JWKS and caches it; 1 if accepted.
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_cache_add(ptr: *const u8, len: usize) -> u32 {
        // SAFETY: the host wrote this range through mg_alloc just before.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
        let Ok(token) = std::str::from_utf8(bytes) else { return 0 };
        let ok = CASE.with(|c| {
            CACHE.with(|cache| {
                c.borrow().as_ref().is_some_and(|c| c.cache_add(&mut cache.borrow_mut(), token))
            })
        });
        u32::from(ok)
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_cache_len() -> usize {
        CACHE.with(|c| c.borrow().len())
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_live_bytes() -> usize {
        super::live_bytes()
    }

    /// Frees an mg_alloc buffer of `len` bytes.
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_free(ptr: *mut u8, len: usize) {
        // SAFETY: ptr/len come from mg_alloc.
        drop(unsafe { Vec::from_raw_parts(ptr, len, len) });
    }

    thread_local! {
        static BREAKDOWN: RefCell<Option<crate::request::Breakdown>> = const { RefCell::new(None) };
    }

    /// Sets up the cold-request breakdown: JWKS, tokens (one per line, the steady one first),
    /// now in seconds. 0 = ok, 1 = input not UTF-8, 2 = no breakdown from it (too few tokens,
    /// a JWKS or token that does not verify at `now`: mint them again).
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_breakdown_setup(
        jwks: *const u8,
        jwks_len: usize,
        tokens: *const u8,
        tokens_len: usize,
        now: u64,
    ) -> i32 {
        // SAFETY: the host wrote these ranges through mg_alloc just before.
        let (jwks, tokens) = unsafe {
            (
                core::slice::from_raw_parts(jwks, jwks_len),
                core::slice::from_raw_parts(tokens, tokens_len),
            )
        };
        let (Ok(jwks), Ok(tokens)) = (std::str::from_utf8(jwks), std::str::from_utf8(tokens)) else {
            return 1;
        };
        match crate::request::Breakdown::new(jwks, tokens, now) {
            Ok(b) => {
                BREAKDOWN.with(|c| *c.borrow_mut() = Some(b));
                0
            }
            Err(_) => 2,
        }
    }

    /// Runs breakdown phase `phase` (`request::Phase::from_index`) `iters` times.
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_breakdown(phase: u32, iters: u32) -> u32 {
        let Some(phase) = crate::request::Phase::from_index(phase) else { return 0 };
        BREAKDOWN.with(|b| b.borrow().as_ref().map_or(0, |b| b.run(phase, iters)))
    }

    /// Local responses the breakdown's engine sent (must stay 0).
    #[unsafe(no_mangle)]
    pub extern "C" fn mg_breakdown_responses() -> u32 {
        BREAKDOWN.with(|b| b.borrow().as_ref().map_or(u32::MAX, |b| b.responses()))
    }

    fn with_case(f: impl FnOnce(&Case) -> u32) -> u32 {
        CASE.with(|c| c.borrow().as_ref().map_or(0, f))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_verify(iters: u32) -> u32 {
        with_case(|c| c.verify(iters))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_parse(iters: u32) -> u32 {
        with_case(|c| c.parse(iters))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_digest(iters: u32) -> u32 {
        with_case(|c| c.digest(iters))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mg_hit(iters: u32) -> u32 {
        with_case(|c| c.hit(iters))
    }
}
