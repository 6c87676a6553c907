//! The demo identity provider: OIDC discovery, JWKS, token minting, key rotation, outage modes
//! and fetch counters — over HTTP (for `make run` and curl) and as a Rust API (for the e2e tests).

use crate::http::{Handler, Reply, Request, Response};
use crate::keys::{Alg, KeyError, KeySet, random_hex};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// How the JWKS and discovery endpoints answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normal answers.
    Ok,
    /// This status with a short text body.
    Status(u16),
    /// Accept the request and never answer (until the connection or the server closes).
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "ok" => Some(Mode::Ok),
            "hang" => Some(Mode::Hang),
            "garbage" => Some(Mode::Garbage),
            _ => s
                .parse::<u16>()
                .ok()
                .filter(|c| (200..600).contains(c))
                .map(Mode::Status),
        }
    }

    pub fn name(self) -> String {
        match self {
            Mode::Ok => "ok".into(),
            Mode::Status(c) => c.to_string(),
            Mode::Hang => "hang".into(),
            Mode::Garbage => "garbage".into(),
        }
    }
}

/// What a minted token carries. `Default` = ES256, sub `alice`, no audience, expires in 1 h.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub alg: Alg,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    /// Overrides the IdP's issuer.
    pub iss: Option<String>,
    /// Seconds from now; `None` = no `exp` claim.
    pub exp_in: Option<i64>,
    pub nbf_in: Option<i64>,
    /// Overrides the key's `kid` (e.g. an unknown one).
    pub kid: Option<String>,
    /// Extra claims, merged last.
    pub claims: Map<String, Value>,
    /// Corrupt the signature.
    pub tamper: bool,
}

impl Default for TokenSpec {
    fn default() -> Self {
        TokenSpec {
            alg: Alg::Es256,
            sub: Some("alice".into()),
            aud: Vec::new(),
            iss: None,
            exp_in: Some(3600),
            nbf_in: None,
            kid: None,
            claims: Map::new(),
            tamper: false,
        }
    }
}

impl TokenSpec {
    pub fn alg(mut self, alg: Alg) -> Self {
        self.alg = alg;
        self
    }
    pub fn subject(mut self, sub: &str) -> Self {
        self.sub = Some(sub.into());
        self
    }
    pub fn aud(mut self, aud: &str) -> Self {
        self.aud.push(aud.into());
        self
    }
    pub fn iss(mut self, iss: &str) -> Self {
        self.iss = Some(iss.into());
        self
    }
    pub fn exp_in(mut self, secs: Option<i64>) -> Self {
        self.exp_in = secs;
        self
    }
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.into());
        self
    }
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }
    pub fn tamper(mut self) -> Self {
        self.tamper = true;
        self
    }

    /// From `/token` query parameters: `alg`, `sub`, `aud` (comma-separated), `iss`, `exp_in`
    /// (seconds, may be negative, `none` = no exp), `nbf_in`, `kid`, `scope`, `email`, `claims`
    /// (a JSON object), `tamper=1`.
    pub fn from_query(pairs: &[(String, String)]) -> Result<TokenSpec, String> {
        let mut spec = TokenSpec::default();
        for (k, v) in pairs {
            match k.as_str() {
                "alg" => {
                    spec.alg = Alg::parse(v).ok_or_else(|| format!("unsupported alg {v:?}"))?;
                }
                "sub" => spec.sub = Some(v.clone()).filter(|s| !s.is_empty()),
                "aud" => {
                    spec.aud = v
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect()
                }
                "iss" => spec.iss = Some(v.clone()),
                "exp_in" if v == "none" => spec.exp_in = None,
                "exp_in" => spec.exp_in = Some(v.parse().map_err(|_| format!("bad exp_in {v:?}"))?),
                "nbf_in" => spec.nbf_in = Some(v.parse().map_err(|_| format!("bad nbf_in {v:?}"))?),
                "kid" => spec.kid = Some(v.clone()),
                "scope" | "email" => {
                    spec.claims.insert(k.clone(), Value::String(v.clone()));
                }
                "claims" => match serde_json::from_str::<Value>(v) {
                    Ok(Value::Object(m)) => spec.claims.extend(m),
                    _ => return Err("claims must be a JSON object".into()),
                },
                "tamper" => spec.tamper = v == "1" || v == "true",
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        Ok(spec)
    }
}

struct State {
    keys: KeySet,
    mode: Mode,
}

/// The IdP. Share it as `Arc<Idp>`; it is also the HTTP [`Handler`].
pub struct Idp {
    issuer: String,
    max_age: u64,
    state: Mutex<State>,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    tokens_minted: AtomicU64,
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Idp {
    /// A new IdP for `issuer` with fresh keys; JWKS answers carry `Cache-Control: max-age=<max_age>`
    /// (none when `max_age` is 0, so a verifier applies its own cache duration).
    pub fn new(issuer: &str, max_age: u64) -> Result<Idp, KeyError> {
        Ok(Idp {
            issuer: issuer.trim_end_matches('/').to_string(),
            max_age,
            state: Mutex::new(State {
                keys: KeySet::generate()?,
                mode: Mode::Ok,
            }),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            tokens_minted: AtomicU64::new(0),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Mints a token per `spec`.
    pub fn mint(&self, spec: &TokenSpec) -> Result<String, String> {
        let now = now_unix();
        let mut claims = Map::new();
        let iss = spec.iss.clone().unwrap_or_else(|| self.issuer.clone());
        claims.insert("iss".into(), Value::String(iss));
        if let Some(sub) = &spec.sub {
            claims.insert("sub".into(), Value::String(sub.clone()));
        }
        match spec.aud.as_slice() {
            [] => {}
            [one] => {
                claims.insert("aud".into(), Value::String(one.clone()));
            }
            many => {
                claims.insert("aud".into(), json!(many));
            }
        }
        claims.insert("iat".into(), json!(now));
        if let Some(e) = spec.exp_in {
            claims.insert("exp".into(), json!(now.saturating_add(e)));
        }
        if let Some(n) = spec.nbf_in {
            claims.insert("nbf".into(), json!(now.saturating_add(n)));
        }
        claims.insert("jti".into(), Value::String(random_hex(8)));
        claims.extend(spec.claims.clone());
        let mut header = Map::new();
        if let Some(kid) = &spec.kid {
            header.insert("kid".into(), Value::String(kid.clone()));
        }
        let state = self.state();
        let key = state
            .keys
            .get(spec.alg)
            .ok_or_else(|| format!("no {} key", spec.alg))?;
        let mut token = key.mint(&claims, &header);
        drop(state);
        if spec.tamper {
            // Change the first signature character: it carries 6 significant bits (the last one
            // may carry only padding bits, which lenient decoders ignore).
            if let Some(dot) = token.rfind('.') {
                let first = token.get(dot + 1..dot + 2).unwrap_or("A");
                let other = if first == "A" { "B" } else { "A" };
                token.replace_range(dot + 1..dot + 2, other);
            }
        }
        self.tokens_minted.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// Replaces every key with a new one (new `kid`s); tokens signed by the old keys no longer
    /// verify once a verifier refetches. Returns the new `kid`s.
    pub fn rotate(&self) -> Result<Vec<String>, KeyError> {
        let fresh = KeySet::generate()?;
        let kids = fresh.kids();
        self.state().keys = fresh;
        Ok(kids)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state().mode = mode;
    }

    pub fn mode(&self) -> Mode {
        self.state().mode
    }

    /// The `kid` of the current key for `alg`.
    pub fn kid_of(&self, alg: Alg) -> Option<String> {
        self.state().keys.get(alg).map(|k| k.kid.clone())
    }

    /// The JWS signature of `signing_input` by the current key for `alg` (any bytes: the
    /// differential corpora sign hand-written headers, payloads and encodings).
    pub fn sign(&self, alg: Alg, signing_input: &[u8]) -> Result<Vec<u8>, String> {
        let state = self.state();
        let key = state.keys.get(alg).ok_or_else(|| format!("no {alg} key"))?;
        Ok(key.sign(signing_input))
    }

    pub fn kids(&self) -> Vec<String> {
        self.state().keys.kids()
    }

    pub fn jwks(&self) -> Value {
        self.state().keys.jwks()
    }

    /// JWKS requests received (whatever the mode).
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> u64 {
        self.discovery_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{}", self.issuer, JWKS_PATH),
            "token_endpoint": format!("{}/token", self.issuer),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": Alg::ALL.iter().map(|a| a.name()).collect::<Vec<_>>(),
        })
    }

    pub fn stats(&self) -> Value {
        json!({
            "jwks_fetches": self.jwks_fetches(),
            "discovery_fetches": self.discovery_fetches(),
            "tokens_minted": self.tokens_minted.load(Ordering::Relaxed),
            "mode": self.mode().name(),
            "kids": self.kids(),
        })
    }

    fn outage(&self) -> Option<Reply> {
        match self.mode() {
            Mode::Ok => None,
            Mode::Status(c) => Some(Reply::Respond(Response::text(
                c,
                "demo IdP: simulated failure\n",
            ))),
            Mode::Hang => Some(Reply::Hang(Duration::from_secs(120))),
            Mode::Garbage => Some(Reply::Respond(Response::new(
                200,
                "application/json",
                "<html>this is not a JWKS</html>",
            ))),
        }
    }
}

fn usage() -> Response {
    Response::text(
        404,
        "demo IdP endpoints:\n  GET  /.well-known/openid-configuration\n  GET  /.well-known/jwks.json\n  \
         GET  /token?alg=ES256|RS256|EdDSA&sub=alice&aud=a,b&exp_in=3600|none&nbf_in=&iss=&kid=&scope=&email=&claims={json}&tamper=1\n  \
         POST /rotate\n  POST /mode?jwks=ok|500|hang|garbage|<status>\n  GET  /stats\n",
    )
}

impl Handler for Idp {
    fn handle(&self, req: &Request) -> Reply {
        let get = req.method == "GET" || req.method == "HEAD";
        let post = req.method == "POST";
        let resp = match req.path.as_str() {
            JWKS_PATH if get => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                if let Some(r) = self.outage() {
                    return r;
                }
                let resp = Response::json(200, &self.jwks());
                if self.max_age == 0 {
                    resp
                } else {
                    resp.with_header(
                        "cache-control",
                        &format!("public, max-age={}", self.max_age),
                    )
                }
            }
            DISCOVERY_PATH if get => {
                self.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                if let Some(r) = self.outage() {
                    return r;
                }
                Response::json(200, &self.discovery())
            }
            "/token" if get || post => {
                match TokenSpec::from_query(&req.query_pairs()).and_then(|s| self.mint(&s)) {
                    Ok(t) => Response::text(200, &t),
                    Err(e) => Response::text(400, &format!("{e}\n")),
                }
            }
            "/rotate" if post => match self.rotate() {
                Ok(kids) => Response::json(200, &json!({"kids": kids})),
                Err(e) => Response::text(500, &format!("{e}\n")),
            },
            "/mode" if post => match req.param("jwks").as_deref().and_then(Mode::parse) {
                Some(m) => {
                    self.set_mode(m);
                    Response::json(200, &json!({"mode": m.name()}))
                }
                None => Response::text(400, "use /mode?jwks=ok|hang|garbage|<status>\n"),
            },
            "/stats" if get => Response::json(200, &self.stats()),
            JWKS_PATH | DISCOVERY_PATH | "/token" | "/rotate" | "/mode" | "/stats" => {
                Response::text(405, "method not allowed\n")
            }
            _ => usage(),
        };
        Reply::Respond(resp)
    }
}
