//! A whole request through the filter's engine (`meshguard::engine`), in V8, with a host that
//! only holds the request's headers: what a request costs inside the module, without the
//! proxy-wasm ABI (Envoy's side of it is what `make bench`'s `abi-read` module measures). The
//! phases of a cold request are timed one by one beside it (`Breakdown`), so that the request's
//! cost can be split into them and what is left (`breakdown.mjs`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use meshguard::cache::{TokenCache, TokenDigest};
use meshguard::engine::{Decided, Engine, Host, HostError};
use meshguard::jose::{
    Algorithm, Jwks, TokenLimits, UnverifiedToken, Validation, verify, verify_owned,
};

/// The headers of one request and the host state the engine touches; nothing is recorded.
#[derive(Default)]
pub struct BenchHost {
    headers: RefCell<Vec<(String, Vec<u8>)>>,
    now_nanos: Cell<u64>,
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// Local responses sent (a cold or steady request must send none).
    responses: Cell<u32>,
}

impl Host for BenchHost {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        let headers = self.headers.borrow();
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn request_header_pairs(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.borrow().clone()
    }
    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        let mut headers = self.headers.borrow_mut();
        headers.retain(|(n, _)| n != name);
        headers.push((name.to_owned(), value.to_vec()));
        Ok(())
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.headers.borrow_mut().retain(|(n, _)| n != name);
        Ok(())
    }
    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        None
    }
    fn send_local_response(&self, _: u32, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        self.responses.set(self.responses.get() + 1);
        Ok(())
    }
    fn resume_request(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn set_effective_context(&self, _: u32) -> Result<(), HostError> {
        Ok(())
    }
    fn now_nanos(&self) -> Option<u64> {
        Some(self.now_nanos.get())
    }
    fn set_tick_period(&self, _: Duration) -> Result<(), HostError> {
        Ok(())
    }
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.borrow().get(key).cloned()
    }
    fn set_shared_data(&self, key: &str, value: &[u8], _cas: u32) -> Result<(), HostError> {
        let mut shared = self.shared.borrow_mut();
        let cas = shared.get(key).map_or(1, |(_, c)| c + 1);
        shared.insert(key.to_owned(), (value.to_vec(), cas));
        Ok(())
    }
    fn register_queue(&self, _: &str) -> Result<u32, HostError> {
        Ok(1)
    }
    fn enqueue(&self, _: u32, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn http_call(&self, _: &str, _: &[(&str, &str)], _: Duration) -> Result<u32, HostError> {
        Err(HostError::Unimplemented)
    }
    fn http_response_header(&self, _: &str) -> Option<Vec<u8>> {
        None
    }
    fn http_response_body(&self, _: usize) -> Option<Vec<u8>> {
        None
    }
    fn define_counter(&self, _: &str) -> Option<u32> {
        Some(0)
    }
    fn increment_counter(&self, _: u32, _: i64) {}
}

/// The macro benchmark's inputs (`micro mint`): its JWKS, one steady token and the cold ones,
/// with the engine configured as `make bench` configures the filter (one rule, its audience,
/// the inline JWKS, a 1 024-entry token cache).
pub struct Breakdown {
    host: BenchHost,
    engine: Engine,
    jwks: Rc<Jwks>,
    validation: Validation,
    now: u64,
    steady: String,
    cold: Vec<String>,
    next: Cell<usize>,
    /// A full cache for the insert phase, and the claims it stores (verified once).
    cache: RefCell<TokenCache>,
    claims: Rc<meshguard::jose::VerifiedClaims>,
    /// The signing key, built once (its table too), for the signature phase.
    key: SigningKey,
}

/// The macro benchmark's issuer and audience (bench/bench.py, `micro mint`).
const ISSUER: &str = "https://bench.meshguard.test";
const AUDIENCE: &str = "api.bench.test";
const CACHE_ENTRIES: usize = 1024;

impl Breakdown {
    /// `jwks`: the JWKS document; `tokens`: ES256 or RS256 tokens, one per line, the first the
    /// steady one; `now`: seconds (within the tokens' validity).
    pub fn new(jwks: &str, tokens: &str, now: u64) -> Result<Breakdown, String> {
        let mut lines = tokens.lines().map(str::to_owned);
        let steady = lines.next().ok_or("no tokens")?;
        let cold: Vec<String> = lines.collect();
        if cold.len() <= CACHE_ENTRIES {
            return Err(format!(
                "{} cold tokens: a cold run needs more than the cache holds",
                cold.len()
            ));
        }
        let config = serde_json::json!({
            "jwtRules": [{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks}],
            "tokenCacheEntries": CACHE_ENTRIES,
        });
        let host = BenchHost::default();
        host.now_nanos.set(now * 1_000_000_000);
        let engine = Engine::configure(&host, config.to_string().as_bytes()).ok_or("configure")?;
        let jwks_doc = jwks;
        let jwks = Rc::new(Jwks::parse(jwks.as_bytes()).map_err(|e| format!("jwks: {e}"))?);
        let validation = Validation::new(ISSUER);
        let parsed = UnverifiedToken::parse(&steady, &TokenLimits::default())
            .map_err(|e| format!("token: {e}"))?;
        let key = SigningKey::of(parsed.alg(), jwks_doc)?;
        let claims =
            Rc::new(verify(&parsed, &jwks, &validation, now).map_err(|e| format!("verify: {e}"))?);
        let mut cache = TokenCache::new(CACHE_ENTRIES);
        for token in cold.iter().take(CACHE_ENTRIES) {
            let key = cache.key(token);
            cache.insert(&key, 0, &jwks, claims.clone());
        }
        Ok(Breakdown {
            host,
            engine,
            jwks,
            validation,
            now,
            steady,
            cold,
            next: Cell::new(0),
            cache: RefCell::new(cache),
            claims,
            key,
        })
    }

    /// The next cold token (in turn: with more tokens than cache entries, each one is a miss).
    fn next_cold(&self) -> &str {
        let at = self.next.get();
        self.next.set((at + 1) % self.cold.len());
        self.cold.get(at).map_or("", String::as_str)
    }

    /// Gives the bench host a GET with `token` as bearer token (what both requests start from).
    fn set_headers(&self, token: &str) {
        *self.host.headers.borrow_mut() = vec![
            (":authority".to_owned(), b"bench".to_vec()),
            (":path".to_owned(), b"/".to_vec()),
            (":method".to_owned(), b"GET".to_vec()),
            (
                "authorization".to_owned(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
    }

    fn request(&self, token: &str) -> bool {
        self.set_headers(token);
        self.engine.on_request_headers(&self.host, 1) == Decided::Continue
    }

    /// Runs phase `phase` `iters` times; returns how many succeeded (must be `iters`).
    pub fn run(&self, phase: Phase, iters: u32) -> u32 {
        let limits = TokenLimits::default();
        let mut ok = 0;
        for _ in 0..iters {
            let done = match phase {
                Phase::Cold => self.request(self.next_cold()),
                Phase::Steady => self.request(&self.steady),
                Phase::Headers => {
                    // Setting the request's headers: part of both requests, not of the filter.
                    self.set_headers(self.next_cold());
                    true
                }
                Phase::Parse => UnverifiedToken::parse(self.next_cold(), &limits).is_ok(),
                Phase::Digest => {
                    core::hint::black_box(TokenDigest::of(self.next_cold()));
                    true
                }
                Phase::Verify => UnverifiedToken::parse(self.next_cold(), &limits).is_ok_and(|t| {
                    verify_owned(t, &self.jwks, &self.validation, self.now).is_ok()
                }),
                Phase::Signature => {
                    let token = self.next_cold();
                    token.rsplit_once('.').is_some_and(|(input, sig)| {
                        decode(sig).is_some_and(|sig| self.key.verify(input.as_bytes(), &sig))
                    })
                }
                Phase::CacheInsert => {
                    let mut cache = self.cache.borrow_mut();
                    let key = cache.key(self.next_cold());
                    cache.insert(&key, 0, &self.jwks, self.claims.clone());
                    true
                }
            };
            ok += u32::from(done);
        }
        ok
    }

    /// Local responses the engine sent (0 when every request went on).
    pub fn responses(&self) -> u32 {
        self.host.responses.get()
    }
}

/// What `Breakdown::run` times.
#[derive(Clone, Copy)]
pub enum Phase {
    /// A whole request with a token not in the cache (the cache full: an eviction each time).
    Cold,
    /// A whole request with the cached steady token.
    Steady,
    /// Only the bench host's setting of the headers (subtracted from both).
    Headers,
    /// base64url + JSON of the token.
    Parse,
    /// SHA-256 of the token (the cache key).
    Digest,
    /// Parse + key lookup + signature + claim checks (`jose::verify`).
    Verify,
    /// The signature alone, with the key built once (what `Verify` spends in meshguard-crypto,
    /// plus the signature's base64url).
    Signature,
    /// Cache key + insert into a full cache (one eviction).
    CacheInsert,
}

impl Phase {
    pub fn from_index(index: u32) -> Option<Phase> {
        [
            Phase::Cold,
            Phase::Steady,
            Phase::Headers,
            Phase::Parse,
            Phase::Digest,
            Phase::Verify,
            Phase::Signature,
            Phase::CacheInsert,
        ]
        .get(index as usize)
        .copied()
    }
}

/// The tokens' signing key, made as the filter makes it from the JWKS: ES256's P-256 key (its
/// table built once) or RS256's RSA key (its Montgomery parameters computed once).
enum SigningKey {
    Es256(meshguard_crypto::P256Key),
    Rs256(meshguard_crypto::RsaKey),
}

impl SigningKey {
    fn of(alg: Algorithm, jwks: &str) -> Result<SigningKey, String> {
        let doc: serde_json::Value = serde_json::from_str(jwks).map_err(|e| e.to_string())?;
        let keys = doc["keys"].as_array().ok_or("no keys")?;
        let find = |field: &str, value: &str| {
            keys.iter()
                .find(|k| k[field] == value)
                .ok_or(format!("no JWK with {field} {value}"))
        };
        let member = |jwk: &serde_json::Value, name: &str| {
            jwk[name]
                .as_str()
                .and_then(decode)
                .ok_or(format!("bad {name}"))
        };
        match alg {
            Algorithm::Es256 => {
                let jwk = find("crv", "P-256")?;
                meshguard_crypto::P256Key::from_coordinates(&member(jwk, "x")?, &member(jwk, "y")?)
                    .map(SigningKey::Es256)
                    .ok_or_else(|| "bad P-256 key".into())
            }
            Algorithm::Rs256 => {
                let jwk = find("kty", "RSA")?;
                let e = member(jwk, "e")?
                    .iter()
                    .fold(0u64, |e, &b| (e << 8) | u64::from(b));
                meshguard_crypto::RsaKey::new(&member(jwk, "n")?, e)
                    .map(SigningKey::Rs256)
                    .ok_or_else(|| "bad RSA key".into())
            }
            other => Err(format!("{other:?}: the breakdown takes ES256 or RS256 tokens")),
        }
    }

    fn verify(&self, input: &[u8], sig: &[u8]) -> bool {
        match self {
            SigningKey::Es256(key) => key.verify(input, sig),
            SigningKey::Rs256(key) => {
                key.verify(meshguard_crypto::RsaScheme::Pkcs1Sha256, input, sig)
            }
        }
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
