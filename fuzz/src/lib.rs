//! The bodies of meshguard's fuzz targets, shared by the libFuzzer binaries (`fuzz_targets/`,
//! nightly + `cargo fuzz`) and the stable corpus replay (`tests/replay.rs`).
//!
//! Every target must never panic, and checks a few properties that hold for any input (the
//! asserts below); a failed assert is a bug, reported like a crash.

use std::net::{IpAddr, SocketAddr};

use meshguard::binding::{self, Binding, BindingError, Bindings, Presentation, Required};
use meshguard::config::CompiledConfig;
use meshguard::extract;
use meshguard::jose::{self, JoseError, Jwks, TokenLimits, UnverifiedToken, Validation};
use meshguard::output::{self, Challenge, Denial, Realm};
use meshguard::policy::{PeerIdentity, RequestAttributes};
use meshguard_test_support::{self as support, Key};
use serde_json::Value;

/// "now" for every verification: 2023-11-14T22:13:20Z (Istio's fixtures expire in 2118 etc.).
pub const NOW: u64 = support::NOW;

/// The issuer of the policy target's signed tokens.
pub const FUZZ_ISSUER: &str = "https://fuzz.example";

/// Istio's two public test JWKS, a P-256 key (RFC 7515 A.3) and our Ed25519 key: the key set
/// tokens are verified against (so RS*, PS*, ES256 and EdDSA verification all run).
fn fixed_jwks() -> &'static Jwks {
    thread_local! {
        // Jwks holds per-key precomputation behind `Rc` (one per VM in the filter): one leaked
        // copy per thread.
        static JWKS: &'static Jwks = Box::leak(Box::new(build_jwks()));
    }
    JWKS.with(|j| *j)
}

fn build_jwks() -> Jwks {
    let mut keys: Vec<Value> = Vec::new();
    for doc in [support::ISTIO_SAMPLES_JWKS, support::ISTIO_COMMON_JWKS] {
        let doc: Value = serde_json::from_str(doc).unwrap_or_default();
        if let Some(list) = doc.get("keys").and_then(Value::as_array) {
            keys.extend(list.iter().cloned());
        }
    }
    keys.push(Key::p256().jwk("fuzz-ec"));
    keys.push(ed25519_jwk());
    let doc = serde_json::json!({ "keys": keys }).to_string();
    match Jwks::parse(doc.as_bytes()) {
        Ok(jwks) => jwks,
        Err(e) => unreachable!("the fixed JWKS must parse: {e}"),
    }
}

/// The key the policy target signs fuzzed claims with, and the token seeds' (the corpus).
fn fuzz_key() -> Key {
    Key::from(support::fuzz_ed25519_key())
}

/// The public JWK of [`fuzz_key`], kid `fuzz-ed`.
pub fn ed25519_jwk() -> Value {
    fuzz_key().jwk("fuzz-ed")
}

/// A compact JWS over `header` and `payload` (any bytes), signed with the fixed Ed25519 key.
pub fn mint_ed25519(header: &[u8], payload: &[u8]) -> String {
    support::compact(header, payload, |m| fuzz_key().sign("EdDSA", m))
}

/// Validations tried on every parsed token: Istio's defaults for its issuers, and a strict one.
fn validations(issuer: &str) -> [Validation; 2] {
    let open = Validation::new(issuer);
    let strict = Validation {
        audiences: vec!["foo".into(), "api.example.com".into()],
        max_lifetime_secs: Some(86_400),
        typ: vec!["JWT".into(), "at+jwt".into()],
        required_claims: vec!["sub".into()],
        ..Validation::new(issuer)
    };
    [open, strict]
}

/// Target `token`: parse any bytes as a compact JWS, then verify it against the fixed JWKS.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for limits in [
        TokenLimits::default(),
        TokenLimits {
            max_token_bytes: 64 * 1024,
            max_json_depth: 4,
        },
    ] {
        let parsed = UnverifiedToken::parse(text, &limits);
        let Ok(token) = parsed else {
            assert_reason(parsed.err());
            continue;
        };
        assert!(text.len() <= limits.max_token_bytes);
        let issuer = token.issuer().unwrap_or("https://other.example").to_owned();
        for validation in validations(&issuer) {
            match jose::verify(&token, fixed_jwks(), &validation, NOW) {
                Ok(claims) => {
                    // A verified token's claims are exactly the token's payload.
                    assert_eq!(claims.payload_b64(), token.payload_b64());
                    assert_eq!(claims.issuer(), issuer);
                    let _ = claims.audiences();
                    let _ = (claims.subject(), claims.expires_at(), claims.kid());
                }
                Err(e) => assert_reason(Some(e)),
            }
        }
    }
}

/// Error texts are static: they must never carry request bytes.
fn assert_reason(err: Option<JoseError>) {
    if let Some(e) = err {
        let text = e.to_string();
        assert!(!e.reason().is_empty() && text.len() < 200, "{text}");
    }
}

/// Target `jwks`: parse any bytes as a JWKS; a parsed one is used to verify a fixed token.
pub fn jwks(data: &[u8]) {
    let Ok(jwks) = Jwks::parse(data) else {
        return;
    };
    assert!(!jwks.is_empty() && jwks.len() <= jose::MAX_USABLE_KEYS);
    assert!(jwks.len() + jwks.skipped().len() <= jose::MAX_JWKS_ENTRIES);
    for key in jwks.keys() {
        let _ = format!("{key:?} {}", key.kind());
        if let Some(kid) = key.kid() {
            assert!(jwks.has_kid(kid));
        }
    }
    for skipped in jwks.skipped() {
        let _ = (skipped.reason.reason(), skipped.reason.to_string());
    }
    let minted = mint_ed25519(
        br#"{"alg":"EdDSA","kid":"fuzz-ed"}"#,
        format!(r#"{{"iss":"{FUZZ_ISSUER}","exp":{}}}"#, NOW + 60).as_bytes(),
    );
    for token in [minted.as_str(), support::ISTIO_DEMO_JWT] {
        if let Ok(token) = UnverifiedToken::parse(token, &TokenLimits::default()) {
            let issuer = token.issuer().unwrap_or_default().to_owned();
            let _ = jose::verify(&token, &jwks, &Validation::new(issuer), NOW);
        }
    }
}

/// Target `config`: any bytes as the plugin configuration; a compiled one extracts from a
/// fixed request and answers a 401.
pub fn config(data: &[u8]) {
    let config = match CompiledConfig::from_json(data) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for header in &config.strip_headers {
        assert_eq!(
            header,
            &header.to_ascii_lowercase(),
            "strip headers are lower-case"
        );
    }
    let found = extract::extract(&config.locations, |name| match name {
        ":path" => Some(b"/p?access_token=a.b.c&x=1".to_vec()),
        "cookie" => Some(b"session=a.b.c; other=1".to_vec()),
        _ => Some(b"Bearer a.b.c".to_vec()),
    });
    for f in &found {
        let _ = f.rules(&config.locations);
        if let Some(rule) = config.rule_for_issuer(&f.token) {
            assert!(rule < config.rules.len());
        }
    }
    let response = Denial::JwksUnavailable.response(
        &Realm::default(),
        Challenge::Bearer,
        config.unauthorized_body,
        &config.forbidden_body,
    );
    assert_eq!(response.status, 401);
}

/// The policy target's configuration: a rule for [`FUZZ_ISSUER`] and policies using most
/// fields, value forms and `when` keys, in every action.
const POLICY_CONFIG: &str = include_str!("policy_config.json");

fn policy_config() -> &'static CompiledConfig {
    thread_local! {
        // CompiledConfig holds `Rc`s (one per VM in the filter): one leaked copy per thread.
        static CONFIG: &'static CompiledConfig = Box::leak(Box::new(compile_policy_config()));
    }
    CONFIG.with(|c| *c)
}

fn compile_policy_config() -> CompiledConfig {
    {
        let text = POLICY_CONFIG.replace(
            "FUZZ_JWKS",
            &serde_json::json!({"keys": [ed25519_jwk()]})
                .to_string()
                .replace('"', "\\\""),
        );
        match CompiledConfig::from_json(text.as_bytes()) {
            Ok(config) => config,
            Err(e) => unreachable!("the policy fuzz config must compile: {e}"),
        }
    }
}

/// A request for [`Policies::evaluate`](meshguard::policy::Policies::evaluate), read from lines.
#[derive(Debug, Default)]
struct FuzzRequest {
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    peer: Option<PeerIdentity>,
    source: Option<SocketAddr>,
    destination_ip: Option<IpAddr>,
    port: Option<u16>,
    sni: Option<String>,
    headers: Vec<(String, String)>,
}

impl RequestAttributes for FuzzRequest {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == lower_name)
            .map(|(_, value)| value.as_str())
    }
    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    fn destination_port(&self) -> Option<u16> {
        self.port
    }
    fn source_address(&self) -> Option<SocketAddr> {
        self.source
    }
    fn destination_ip(&self) -> Option<IpAddr> {
        self.destination_ip
    }
    fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }
    fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }
}

/// Target `policy`. Input: lines `method`, `path`, `host`, `peer URI SAN`, `source address`,
/// `destination ip`, `port`, `sni`, `claims JSON`, then `name: value` headers. An empty line
/// is an absent attribute. The claims are signed with the fixed key and verified (so claim
/// checks run on them); when they do not verify they are used unverified, to reach the matchers.
pub fn policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut field = || lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
    let mut req = FuzzRequest {
        method: field(),
        path: field(),
        host: field(),
        // A certificate with this one URI SAN, read whole.
        peer: field().map(|uri| PeerIdentity {
            uris: vec![uri],
            complete: true,
            ..PeerIdentity::default()
        }),
        // `ip:port`, or an IP: the connection's peer (a real port; port 0 is an address Envoy
        // took from x-forwarded-for).
        source: field().and_then(|s| {
            s.parse::<SocketAddr>().ok().or_else(|| {
                s.parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 50000))
            })
        }),
        destination_ip: field().and_then(|s| s.parse().ok()),
        port: field().and_then(|s| s.parse().ok()),
        sni: field(),
        headers: Vec::new(),
    };
    let claims_json = field();
    for line in lines.by_ref().take(64) {
        if let Some((name, value)) = line.split_once(':') {
            req.headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    let config = policy_config();
    let claims = claims_json.and_then(|json| {
        let token = mint_ed25519(br#"{"alg":"EdDSA","kid":"fuzz-ed"}"#, json.as_bytes());
        let parsed = UnverifiedToken::parse(&token, &config.token_limits).ok()?;
        let rule = config.rules.first()?;
        match jose::verify(&parsed, fixed_jwks(), &rule.validation, NOW) {
            Ok(claims) => {
                for (header, value) in output::claim_headers(rule, &claims) {
                    assert!(!value.bytes().any(|b| b < 0x20 && b != b'\t'), "{header}");
                }
                Some(claims)
            }
            Err(_) => {
                let value: Value = serde_json::from_str(&json).ok()?;
                Some(jose::VerifiedClaims::for_tests(value))
            }
        }
    });
    let policies = &config.policies;
    let decision = policies.evaluate(&req, claims.as_ref());
    let again = policies.evaluate(&req, claims.as_ref());
    assert_eq!(decision, again, "evaluation is deterministic");
    let _ = decision.is_allowed();
    if let meshguard::policy::Verdict::Deny(reason) = decision.verdict {
        let _ = reason.to_string();
    }
}

/// The extraction target's configuration: header, parameter and cookie locations.
const EXTRACT_CONFIG: &str = r#"{"jwtRules": [
  {"issuer": "a", "jwks": "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
   "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}, {"name": "x-jwt"}],
   "fromParams": ["access_token", "tok%en"], "fromCookies": ["session", "np_scope_token"]},
  {"issuer": "b", "jwks": "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
   "fromHeaders": [{"name": "authorization", "prefix": "Bearer "}, {"name": "X-Token", "prefix": "tok "}],
   "fromCookies": ["session"]}
]}"#;

fn extract_config() -> &'static CompiledConfig {
    thread_local! {
        static CONFIG: &'static CompiledConfig = Box::leak(Box::new(
            match CompiledConfig::from_json(EXTRACT_CONFIG.as_bytes()) {
                Ok(config) => config,
                Err(e) => unreachable!("the extract fuzz config must compile: {e}"),
            },
        ));
    }
    CONFIG.with(|c| *c)
}

/// Target `extract`. Input: NUL-separated `:path`, `cookie`, `authorization`, `x-jwt`,
/// `x-token`, `:authority` (raw bytes, any of them may be missing).
pub fn extract(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let mut next = || parts.next().map(<[u8]>::to_vec);
    let (path, cookie, authz, x_jwt, x_token, authority) =
        (next(), next(), next(), next(), next(), next());
    let config = extract_config();
    let mut asked: Vec<String> = Vec::new();
    let found = extract::extract(&config.locations, |name| {
        assert!(!asked.iter().any(|a| a == name), "header {name} read twice");
        asked.push(name.to_owned());
        match name {
            ":path" => path.clone(),
            "cookie" => cookie.clone(),
            "authorization" => authz.clone(),
            "x-jwt" => x_jwt.clone(),
            "x-token" => x_token.clone(),
            _ => None,
        }
    });
    for (i, f) in found.iter().enumerate() {
        assert!(!f.token.is_empty());
        assert!(
            !found.iter().skip(i + 1).any(|g| g.token == f.token),
            "duplicate token"
        );
        assert!(!f.rules(&config.locations).is_empty());
    }
    if let Some(cookie) = &cookie {
        for name in ["session", "np_scope_token", ""] {
            let _ = extract::cookie_value(cookie, name);
            if let Some(rest) = extract::remove_cookie(cookie, name) {
                assert_eq!(
                    extract::cookie_value(&rest, name),
                    None,
                    "cookie {name} survived removal"
                );
            }
        }
    }
    if let Some(path) = &path {
        let base = extract::path_without_query(path);
        assert!(!base.contains(&b'?'), "query left in the realm path");
        for name in ["access_token", "tok%en", "x"] {
            let rest = extract::remove_param(path, name);
            assert_eq!(
                extract::query_param(&rest, name),
                None,
                "param {name} survived removal"
            );
        }
        let realm = Realm {
            scheme: b"https",
            authority: authority.as_deref().unwrap_or_default(),
            path: base,
        };
        for challenge in [
            Challenge::Bearer,
            Challenge::Dpop {
                algs: "ES256 EdDSA",
            },
        ] {
            let response =
                Denial::Token(JoseError::BadSignature).response(&realm, challenge, true, "");
            for (name, value) in &response.headers {
                assert!(
                    !value.bytes().any(|b| b < 0x20 || b == 0x7f),
                    "control byte in response header {name}"
                );
            }
        }
    }
    if let Some(authz) = &authz {
        for prefix in ["Bearer ", ""] {
            if let Some(token) = extract::token_after_prefix(authz, prefix) {
                assert!(!token.is_empty() && !token.starts_with(' ') && !token.ends_with('\t'));
            }
        }
    }
}

/// The hex SHA-256 of the two client certificates the `cnf` target presents (as Envoy's
/// `connection.sha256_peer_certificate_digest`); the corpus binds tokens to the first
/// (`x5t#S256` `WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo`), in either case of hex.
const CNF_DIGESTS: [&str; 2] = [
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
    "C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3",
];

/// Target `cnf`: any bytes as the JSON text of a token's `cnf` claim, in claims signed with the
/// fuzz key and verified (so through the strict reader), then the binding check (RFC 8705 §3,
/// RFC 9449 §7.2) against two client certificates and none, with and without a required
/// binding. Checked against an independent reading of the verified `cnf`.
pub fn cnf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let payload = format!(
        r#"{{"iss":"{FUZZ_ISSUER}","exp":{},"cnf":{text}}}"#,
        NOW + 3600
    );
    let token = mint_ed25519(br#"{"alg":"EdDSA","kid":"fuzz-ed"}"#, payload.as_bytes());
    let limits = TokenLimits {
        max_token_bytes: 64 * 1024,
        ..TokenLimits::default()
    };
    let Ok(parsed) = UnverifiedToken::parse(&token, &limits) else {
        return;
    };
    let Ok(claims) = jose::verify(&parsed, fixed_jwks(), &Validation::new(FUZZ_ISSUER), NOW) else {
        return;
    };
    // The oracle: what `cnf` names, read independently from the verified claims.
    let thumbprint = |v: Option<&Value>, bad: BindingError| match v {
        None => Ok(None),
        Some(Value::String(t))
            if t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(t.clone()))
        }
        Some(_) => Err(bad),
    };
    let want: Result<(Option<String>, Option<String>), BindingError> =
        match claims.claims().get("cnf") {
            None => Ok((None, None)),
            Some(Value::Object(cnf)) => {
                thumbprint(cnf.get("jkt"), BindingError::BadJkt).and_then(|jkt| {
                    thumbprint(cnf.get("x5t#S256"), BindingError::BadThumbprint)
                        .map(|x5t| (x5t, jkt))
                })
            }
            Some(_) => Err(BindingError::CnfNotObject),
        };
    let read = binding::read_cnf(&claims);
    assert_eq!(
        read.map(|c| (c.certificate.is_some(), c.jkt.is_some())),
        want.as_ref()
            .map(|(x5t, jkt)| (x5t.is_some(), jkt.is_some()))
            .map_err(|e| *e)
    );
    let bound =
        |w: &Result<(Option<String>, Option<String>), BindingError>| matches!(w, Ok((Some(_), _)));
    for presentation in [Presentation::Bearer, Presentation::Dpop] {
        for (certificate_required, dpop_required) in [(false, false), (true, false), (false, true)]
        {
            let required = Required {
                certificate: certificate_required,
                dpop: dpop_required,
            };
            let mut matched = 0;
            for certificate in [Some(CNF_DIGESTS[0]), Some(CNF_DIGESTS[1]), None] {
                let mut asked = 0;
                let mut proofs = 0;
                let got = binding::check(
                    &claims,
                    required,
                    presentation,
                    || {
                        asked += 1;
                        certificate
                    },
                    |_| {
                        proofs += 1;
                        Ok(())
                    },
                );
                let expected = match (&want, presentation) {
                    (Err(e), _) => Err(*e),
                    (Ok((_, Some(_))), Presentation::Bearer) => Err(BindingError::DpopAsBearer),
                    (Ok((_, None)), Presentation::Bearer) if dpop_required => {
                        Err(BindingError::DpopRequired)
                    }
                    (Ok((_, None)), Presentation::Dpop) => Err(BindingError::NotDpopBound),
                    (Ok((None, _)), _) if certificate_required => Err(BindingError::NotBound),
                    (Ok((x5t, jkt)), _) => {
                        let mut b = Bindings::NONE;
                        if jkt.is_some() {
                            b = b.with(Binding::Dpop);
                        }
                        match (x5t, &got) {
                            (None, _) => Ok(b),
                            (Some(_), Ok(_)) => Ok(b.with(Binding::Certificate)),
                            (Some(_), Err(_)) if certificate.is_none() => {
                                Err(BindingError::NoCertificate)
                            }
                            (Some(_), Err(_)) => Err(BindingError::OtherCertificate),
                        }
                    }
                };
                assert_eq!(got, expected, "{text:?} {presentation:?} {required:?}");
                // The certificate is read at most once, and only for a bound token; the proof
                // only for a DPoP-bound token under the DPoP scheme.
                assert!(asked <= usize::from(bound(&want)));
                assert!(proofs <= usize::from(presentation == Presentation::Dpop));
                if got.is_ok_and(|b| b.contains(Binding::Certificate)) {
                    matched += 1;
                }
                if let Err(e) = got {
                    let message = e.to_string();
                    assert!(message.len() < 100 && !message.contains(CNF_DIGESTS[0]));
                }
            }
            // Two different certificates never both match one thumbprint.
            assert!(matched <= 1, "{text:?}");
            // The corpus's thumbprint is the first certificate's, whatever its last two bits.
            if presentation == Presentation::Bearer
                && !dpop_required
                && let Ok((Some(t), None)) = &want
                && t.get(..42) == Some("WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWl")
                && t.ends_with(['o', 'p', 'q', 'r'])
            {
                assert_eq!(matched, 1, "{text:?}");
            }
        }
    }
}

/// The request the `dpop` target's proofs are checked against, and the access token they cover.
const DPOP_METHOD: &str = "POST";
const DPOP_URI: &str = "https://api.example.com/resource";
const DPOP_TOKEN: &str = "access.token.value";

/// Target `dpop`: a DPoP proof (RFC 9449 §4.2). Input `<header JSON>\n<payload JSON>` is signed
/// with the fuzz key (so mutations reach past the signature into the header and claim checks);
/// input without a newline is the proof text itself. The proof goes through
/// [`jose::DpopProof::verify`] and [`meshguard::dpop::check_proof`]; an accepted proof is
/// checked against an independent reading of its header and payload (thumbprint by
/// `support::jwk_thumbprint`, method, normalised URI, `ath`, time window), and `htu`
/// normalisation must be idempotent.
pub fn dpop(data: &[u8]) {
    use meshguard::dpop::{self as dp, DpopRule, RequestFacts, uri};
    use meshguard::jose::{AlgorithmSet, DpopProof, ProofKeys};

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let proof = match text.split_once('\n') {
        Some((header, payload)) => mint_ed25519(header.as_bytes(), payload.as_bytes()),
        None => text.to_owned(),
    };
    if let Some(normal) = uri::normalize(text) {
        assert_eq!(uri::normalize(&normal).as_deref(), Some(normal.as_str()));
    }
    let limits = TokenLimits::default();
    let Ok(verified) = DpopProof::verify(&proof, &limits, &AlgorithmSet::all()) else {
        return;
    };
    // An accepted proof: its parts as an independent reader sees them.
    let mut parts = proof.split('.');
    let mut part = || -> Value {
        let bytes = support::b64_decode(parts.next().unwrap_or_default());
        serde_json::from_slice(&bytes).unwrap_or_default()
    };
    let (header, claims) = (part(), part());
    assert_eq!(
        header["typ"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
            .map(|t| t.trim_start_matches("application/")),
        Some("dpop+jwt")
    );
    assert_eq!(header["alg"].as_str(), Some(verified.alg().as_str()));
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(
            header["jwk"].get(private).is_none(),
            "private member {private} accepted"
        );
    }
    assert_eq!(
        support::b64(verified.thumbprint()),
        support::jwk_thumbprint(&header["jwk"])
    );
    assert_eq!(claims["jti"].as_str(), Some(verified.jti()));
    assert!(!verified.jti().is_empty() && verified.jti().len() <= jose::MAX_JTI_BYTES);
    assert_eq!(claims["htm"].as_str(), Some(verified.htm()));
    assert_eq!(claims["htu"].as_str(), Some(verified.htu()));
    assert_eq!(claims["ath"].as_str(), verified.ath());
    if let Some(normal) = uri::normalize(verified.htu()) {
        assert_eq!(uri::normalize(&normal).as_deref(), Some(normal.as_str()));
    }

    let rule = DpopRule {
        required: false,
        max_age_secs: 60,
        skew_secs: 60,
        public_origin: None,
        algorithms: AlgorithmSet::all(),
    };
    let request = RequestFacts {
        method: DPOP_METHOD.as_bytes(),
        scheme: b"https",
        authority: b"api.example.com",
        path: b"/resource?q=1",
        now: NOW,
    };
    let jkt = *verified.thumbprint();
    // The same proof with its key remembered (as a VM keeps its clients' keys) answers the same.
    let mut keys = ProofKeys::default();
    keys.remember(&verified);
    let again = DpopProof::verify_with(&proof, &limits, &AlgorithmSet::all(), &keys);
    assert_eq!(again.map(|p| *p.thumbprint()).ok(), Some(jkt));
    let Ok(checked) = dp::check_proof(&proof, &rule, &limits, &request, DPOP_TOKEN, &jkt, &keys)
    else {
        return;
    };
    assert_eq!(checked.htm(), DPOP_METHOD);
    assert_eq!(uri::normalize(checked.htu()), uri::normalize(DPOP_URI));
    assert_eq!(checked.ath(), Some(support::ath(DPOP_TOKEN).as_str()));
    assert!(checked.iat() + 60 >= NOW && checked.iat() <= NOW + 60);
    // The replay entry outlives every moment at which the proof would still be accepted.
    assert!(dp::replay_entry(&checked, &rule).expires > NOW);
    // Another key's thumbprint never matches.
    let mut other = jkt;
    other[0] ^= 1;
    assert!(dp::check_proof(&proof, &rule, &limits, &request, DPOP_TOKEN, &other, &keys).is_err());
}
