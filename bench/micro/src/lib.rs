//! The measured operations, shared by the native runner (`src/main.rs`) and the wasm module
//! (exports `mg_*`, driven by `wasm.mjs` in Node, i.e. V8 — the engine Envoy embeds).
//!
//! One benchmark case = a JWKS and a token. The operations:
//! - `verify`: parse the token + verify signature and claims (a cache miss in the filter);
//! - `parse`: parse only (base64url + JSON; the part a cache hit also skips);
//! - `digest`: SHA-256 of the token text (the cache key: the cost of a cache hit's lookup).

use meshguard::cache::TokenDigest;
use meshguard::jose::{Jwks, TokenLimits, UnverifiedToken, Validation, verify};

/// A JWKS + token pair, parsed once.
pub struct Case {
    pub jwks: Jwks,
    pub token: String,
    pub validation: Validation,
    pub now: u64,
}

impl Case {
    pub fn new(jwks: &[u8], token: String, issuer: &str, now: u64) -> Result<Case, String> {
        let jwks = Jwks::parse(jwks).map_err(|e| format!("jwks: {e}"))?;
        Ok(Case { jwks, token, validation: Validation::new(issuer), now })
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
}
