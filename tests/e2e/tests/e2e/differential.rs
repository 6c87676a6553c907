//! A differential corpus: generated token variants (header, payload, encoding, signature,
//! transport) sent to Envoy's native `jwt_authn` (as Istio configures it: a missing token passes,
//! a bad one is refused) and to meshguard, side by side in one Envoy, with the same provider,
//! audience and token locations. Every variant must get the same status from both, unless it is
//! a known difference named in [`known`] (each listed in docs/jose.md, "Differences from
//! `jwt_authn`"); a difference that is not named, or a named one that no longer holds, fails.
//!
//! The signed variants are generated for each of the demo IdP's algorithms (ES256, RS256,
//! EdDSA), so a verifier's answer cannot depend on one key type by accident.

use crate::common::AUD;
use base64::Engine as _;
use meshguard_demo_idp::Alg;
use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::{Req, Stack, config, send};
use serde_json::{Value, json};

const NATIVE: &str = "native";
const MESHGUARD: &str = "mg";
/// A custom token header (no prefix) read by both, beside `Authorization: Bearer`.
const TOKEN_HEADER: &str = "x-token";

fn native() -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {
                "issuer": ISSUER,
                "audiences": [AUD],
                "remote_jwks": {"http_uri": {"uri": JWKS_URI, "cluster": "idp", "timeout": "5s"}},
                "from_headers": [
                    {"name": "Authorization", "value_prefix": "Bearer "},
                    {"name": TOKEN_HEADER}
                ],
                "from_params": ["access_token"],
                "from_cookies": ["np_scope_token"],
                "forward": true,
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "idp"}, {"allow_missing": {}}
            ]}}}],
        },
    })
}

fn meshguard_rule() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUD],
        "jwksUri": JWKS_URI,
        "jwksCluster": "idp",
        "timeout": "5s",
        "fromHeaders": [
            {"name": "Authorization", "prefix": "Bearer "},
            {"name": TOKEN_HEADER}
        ],
        "fromParams": ["access_token"],
        "fromCookies": ["np_scope_token"],
        "forwardOriginalToken": true,
    })
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One variant: a unique name, the request path (with its query) and headers.
struct Variant {
    name: String,
    path: String,
    headers: Vec<(String, String)>,
}

/// The token makers of one algorithm, over the IdP's current key.
struct Minter<'a> {
    stack: &'a Stack,
    alg: Alg,
    kid: String,
    now: i64,
}

impl Minter<'_> {
    fn header(&self) -> Value {
        json!({"alg": self.alg.name(), "kid": self.kid, "typ": "JWT"})
    }

    fn claims(&self) -> Value {
        json!({"iss": ISSUER, "sub": "alice", "aud": AUD, "iat": self.now, "exp": self.now + 3600, "jti": "j-1"})
    }

    fn sign(&self, input: &str) -> String {
        b64(self.stack.idp.sign(self.alg, input.as_bytes()).unwrap())
    }

    /// Header and payload as raw JSON text, signed as written.
    fn raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign(&input);
        format!("{input}.{sig}")
    }

    fn token(&self, header: &Value, claims: &Value) -> String {
        self.raw(&header.to_string(), &claims.to_string())
    }

    fn good(&self) -> String {
        self.token(&self.header(), &self.claims())
    }

    fn with_header(&self, name: &str, value: Option<Value>) -> String {
        let mut h = self.header();
        match value {
            Some(v) => h[name] = v,
            None => {
                h.as_object_mut().unwrap().remove(name);
            }
        }
        self.token(&h, &self.claims())
    }

    fn with_claim(&self, name: &str, value: Option<Value>) -> String {
        let mut c = self.claims();
        match value {
            Some(v) => c[name] = v,
            None => {
                c.as_object_mut().unwrap().remove(name);
            }
        }
        self.token(&self.header(), &c)
    }

    /// The claims as JSON text with `edit` applied to the text (for JSON that serde_json would
    /// never write).
    fn payload_text(&self, edit: impl Fn(String) -> String) -> String {
        let payload = edit(self.claims().to_string());
        self.raw(&self.header().to_string(), &payload)
    }
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".to_owned(), format!("Bearer {token}"))]
}

fn variant(name: impl Into<String>, headers: Vec<(String, String)>) -> Variant {
    Variant {
        name: name.into(),
        path: "/api/differential".to_owned(),
        headers,
    }
}

/// Header, payload and signature variants of one algorithm, each sent as `Authorization: Bearer`.
fn token_variants(m: &Minter<'_>) -> Vec<Variant> {
    let alg = m.alg.name();
    let mut tokens: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, token: String| tokens.push((format!("{alg} {name}"), token));
    push("good", m.good());
    // --- header
    push("no typ", m.with_header("typ", None));
    push("typ at+jwt", m.with_header("typ", Some(json!("at+jwt"))));
    push("typ not a string", m.with_header("typ", Some(json!(7))));
    push("no kid", m.with_header("kid", None));
    push("unknown kid", m.with_header("kid", Some(json!("nope"))));
    push("kid not a string", m.with_header("kid", Some(json!(7))));
    push("alg missing", m.with_header("alg", None));
    push(
        "alg lowercase",
        m.with_header("alg", Some(json!(alg.to_ascii_lowercase()))),
    );
    push("alg not a string", m.with_header("alg", Some(json!(256))));
    push("alg of another key type", {
        let other = if m.alg == Alg::Es256 {
            "RS256"
        } else {
            "ES256"
        };
        m.with_header("alg", Some(json!(other)))
    });
    push("alg ES512", m.with_header("alg", Some(json!("ES512"))));
    push("alg HS256", m.with_header("alg", Some(json!("HS256"))));
    push("crit", m.with_header("crit", Some(json!(["exp"]))));
    push(
        "jku ignored",
        m.with_header("jku", Some(json!("https://evil.example/jwks"))),
    );
    push("header duplicate alg", {
        let h = format!(r#"{{"alg":"{alg}","kid":"{}","alg":"none"}}"#, m.kid);
        m.raw(&h, &m.claims().to_string())
    });
    push("header trailing comma", {
        let h = format!(r#"{{"alg":"{alg}","kid":"{}",}}"#, m.kid);
        m.raw(&h, &m.claims().to_string())
    });
    push(
        "header is an array",
        m.raw(&format!(r#"["{alg}"]"#), &m.claims().to_string()),
    );
    push("header with spaces", {
        let h = format!("{{ \"alg\" : \"{alg}\" ,\n \"kid\" : \"{}\" }}", m.kid);
        m.raw(&h, &m.claims().to_string())
    });
    // --- payload
    push("no exp", m.with_claim("exp", None));
    push(
        "exp a string",
        m.with_claim("exp", Some(json!((m.now + 3600).to_string()))),
    );
    push("exp negative", m.with_claim("exp", Some(json!(-1))));
    push("exp 1e300", m.with_claim("exp", Some(json!(1e300))));
    push(
        "exp beyond u64",
        m.payload_text(|p| {
            p.replace(
                &format!("\"exp\":{}", m.now + 3600),
                "\"exp\":184467440737095516160000",
            )
        }),
    );
    push("exp i64 max", m.with_claim("exp", Some(json!(i64::MAX))));
    push(
        "exp fraction",
        m.with_claim("exp", Some(json!(m.now as f64 + 3600.5))),
    );
    push(
        "exp exponent notation",
        m.payload_text(|p| p.replace(&format!("\"exp\":{}", m.now + 3600), "\"exp\":4.1e9")),
    );
    push(
        "exp expired",
        m.with_claim("exp", Some(json!(m.now - 3600))),
    );
    push("exp null", m.with_claim("exp", Some(json!(null))));
    push("nbf future", m.with_claim("nbf", Some(json!(m.now + 3600))));
    push("nbf 1e300", m.with_claim("nbf", Some(json!(1e300))));
    push("iat future", m.with_claim("iat", Some(json!(m.now + 3600))));
    push("iat 1e300", m.with_claim("iat", Some(json!(1e300))));
    push("iat a string", m.with_claim("iat", Some(json!("now"))));
    push("sub a number", m.with_claim("sub", Some(json!(42))));
    push(
        "sub an object",
        m.with_claim("sub", Some(json!({"id": "alice"}))),
    );
    push("jti a number", m.with_claim("jti", Some(json!(7))));
    push("iss a number", m.with_claim("iss", Some(json!(7))));
    push("iss missing", m.with_claim("iss", None));
    push(
        "iss other",
        m.with_claim("iss", Some(json!("https://other.example"))),
    );
    push(
        "iss trailing slash",
        m.with_claim("iss", Some(json!(format!("{ISSUER}/")))),
    );
    push("aud other", m.with_claim("aud", Some(json!("other"))));
    push("aud missing", m.with_claim("aud", None));
    push(
        "aud array",
        m.with_claim("aud", Some(json!(["other", AUD]))),
    );
    push(
        "aud array with a number",
        m.with_claim("aud", Some(json!([AUD, 7]))),
    );
    push(
        "payload duplicate sub",
        m.payload_text(|p| p.replacen('{', r#"{"sub":"admin","#, 1)),
    );
    push(
        "payload trailing comma",
        m.payload_text(|p| format!("{},}}", p.trim_end_matches('}'))),
    );
    push("payload is an array", m.raw(&m.header().to_string(), "[1]"));
    push(
        "payload escaped iss",
        m.payload_text(|p| p.replace("https:", "h\\u0074tps:")),
    );
    push(
        "payload lone surrogate",
        m.payload_text(|p| p.replace("\"alice\"", "\"\\ud800\"")),
    );
    push(
        "payload deep nesting",
        m.with_claim(
            "deep",
            Some(serde_json::from_str(&format!("{}1{}", "[".repeat(40), "]".repeat(40))).unwrap()),
        ),
    );
    // --- encoding
    let good = m.good();
    let parts: Vec<&str> = good.split('.').collect();
    push("header padded", {
        let h = base64::engine::general_purpose::URL_SAFE.encode(m.header().to_string());
        let input = format!("{h}.{}", parts[1]);
        let sig = m.sign(&input);
        format!("{input}.{sig}")
    });
    push("signature padded", {
        let sig = base64::engine::general_purpose::URL_SAFE.encode(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[2])
                .unwrap(),
        );
        format!("{}.{}.{sig}", parts[0], parts[1])
    });
    push("signature standard alphabet", {
        let sig = base64::engine::general_purpose::STANDARD_NO_PAD.encode(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[2])
                .unwrap(),
        );
        format!("{}.{}.{sig}", parts[0], parts[1])
    });
    push("four parts", format!("{good}.e30"));
    push("two parts", format!("{}.{}", parts[0], parts[1]));
    push("empty signature", format!("{}.{}.", parts[0], parts[1]));
    push("empty header", format!(".{}.{}", parts[1], parts[2]));
    // --- signature
    push("signature tampered", {
        let first = if parts[2].starts_with('A') { "B" } else { "A" };
        format!("{}.{}.{first}{}", parts[0], parts[1], &parts[2][1..])
    });
    push(
        "signature truncated",
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 4]
        ),
    );
    push("signature zeros", {
        let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap()
            .len();
        format!("{}.{}.{}", parts[0], parts[1], b64(vec![0u8; len]))
    });
    push("payload swapped", {
        let other = m.with_claim("sub", Some(json!("admin")));
        let other_payload = other.split('.').nth(1).unwrap().to_owned();
        format!("{}.{other_payload}.{}", parts[0], parts[2])
    });
    tokens
        .into_iter()
        .map(|(name, token)| variant(name, bearer(&token)))
        .collect()
}

/// How the token travels (ES256 tokens).
fn transport_variants(m: &Minter<'_>) -> Vec<Variant> {
    let good = m.good();
    let forged = {
        let parts: Vec<&str> = good.split('.').collect();
        let other = m.with_claim("sub", Some(json!("admin")));
        format!(
            "{}.{}.{}",
            parts[0],
            other.split('.').nth(1).unwrap(),
            parts[2]
        )
    };
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    let b = format!("Bearer {good}");
    let bf = format!("Bearer {forged}");
    let mut v = vec![
        variant("transport: no token", vec![]),
        variant(
            "transport: lowercase bearer",
            h(&[("Authorization", &format!("bearer {good}"))]),
        ),
        variant(
            "transport: Bearer, two spaces",
            h(&[("Authorization", &format!("Bearer  {good}"))]),
        ),
        variant(
            "transport: Bearer, comma before the token",
            h(&[("Authorization", &format!("Bearer ,{good}"))]),
        ),
        variant(
            "transport: Authorization twice, good then forged",
            h(&[("Authorization", &b), ("Authorization", &bf)]),
        ),
        variant(
            "transport: Authorization twice, good twice",
            h(&[("Authorization", &b), ("Authorization", &b)]),
        ),
        variant("transport: x-token", h(&[(TOKEN_HEADER, &good)])),
        variant("transport: x-token forged", h(&[(TOKEN_HEADER, &forged)])),
        variant(
            "transport: x-token twice, good then forged",
            h(&[(TOKEN_HEADER, &good), (TOKEN_HEADER, &forged)]),
        ),
        variant(
            "transport: x-token twice, forged then good",
            h(&[(TOKEN_HEADER, &forged), (TOKEN_HEADER, &good)]),
        ),
        variant(
            "transport: x-token twice, good twice",
            h(&[(TOKEN_HEADER, &good), (TOKEN_HEADER, &good)]),
        ),
        variant(
            "transport: cookie",
            h(&[("Cookie", &format!("np_scope_token={good}"))]),
        ),
        variant(
            "transport: cookie forged",
            h(&[("Cookie", &format!("np_scope_token={forged}"))]),
        ),
        variant(
            "transport: cookie twice, good then forged",
            h(&[(
                "Cookie",
                &format!("np_scope_token={good}; np_scope_token={forged}"),
            )]),
        ),
        variant(
            "transport: header good, cookie forged",
            h(&[
                ("Authorization", &b),
                ("Cookie", &format!("np_scope_token={forged}")),
            ]),
        ),
        variant(
            "transport: header and x-token, both good",
            h(&[("Authorization", &b), (TOKEN_HEADER, &good)]),
        ),
    ];
    let mut query = |name: &str, q: String| {
        let mut x = variant(name, vec![]);
        x.path = format!("/api/differential?{q}");
        v.push(x);
    };
    query("transport: query", format!("access_token={good}"));
    query("transport: query forged", format!("access_token={forged}"));
    query(
        "transport: query twice, good then forged",
        format!("access_token={good}&access_token={forged}"),
    );
    v
}

/// The known differences: variant name (without the algorithm for token variants) → (native,
/// meshguard, why). Each is listed in docs/jose.md, "Differences from `jwt_authn`".
fn known(name: &str) -> Option<(u16, u16, &'static str)> {
    let base = name.split_once(' ').map_or(name, |(alg, rest)| {
        if ["ES256", "RS256", "EdDSA"].contains(&alg) {
            rest
        } else {
            name
        }
    });
    let diff = match base {
        "no exp" => (
            200,
            401,
            "meshguard requires exp by default (requireExpiration)",
        ),
        "aud other" | "aud missing" => (403, 401, "Istio answers an audience mismatch with 401"),
        "typ not a string" => (
            200,
            401,
            "a typ that is not a string is malformed (RFC 7515 §4.1.9)",
        ),
        "crit" => (
            200,
            401,
            "crit names extensions meshguard does not implement (RFC 7515 §4.1.11)",
        ),
        "iat future" => (200, 401, "meshguard refuses an iat beyond the clock skew"),
        "header trailing comma" | "payload trailing comma" => {
            (200, 401, "JSON that RFC 8259 forbids is malformed")
        }
        "payload deep nesting" => (200, 401, "JSON nested deeper than 32 levels is refused"),
        "header padded" | "signature padded" => (
            200,
            401,
            "base64url with padding is not the one JWS spelling (RFC 7515 §2)",
        ),
        "transport: Bearer, comma before the token" => {
            (200, 401, "the token is exactly what follows the prefix")
        }
        "transport: x-token twice, good twice" => (
            200,
            401,
            "a custom token header sent twice is refused, whatever its values",
        ),
        _ => return None,
    };
    Some(diff)
}

#[test]
fn differential_corpus_against_native_jwt_authn() {
    let plugin = json!({"jwtRules": [meshguard_rule()]});
    let stack = Stack::start(StackOpts::default(), |p| {
        Ok(config::bootstrap(
            vec![
                config::listener(NATIVE, vec![native()], None),
                config::listener(MESHGUARD, vec![config::meshguard(&p.wasm, &plugin)], None),
            ],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    let now = meshguard_demo_idp::idp::now_unix();
    let minters: Vec<Minter> = Alg::ALL
        .into_iter()
        .map(|alg| Minter {
            stack: &stack,
            alg,
            kid: stack.idp.kid_of(alg).unwrap(),
            now,
        })
        .collect();
    let mut corpus: Vec<Variant> = minters.iter().flat_map(token_variants).collect();
    corpus.extend(transport_variants(&minters[0]));
    let mut names = std::collections::HashSet::new();
    for v in &corpus {
        assert!(names.insert(v.name.clone()), "variant {:?} twice", v.name);
    }
    assert!(corpus.len() >= 100, "{} variants", corpus.len());

    let mut table = String::new();
    let mut failures = Vec::new();
    let mut differences = 0;
    for v in &corpus {
        let mut got = Vec::new();
        for listener in [NATIVE, MESHGUARD] {
            let mut req = Req::get(&v.path);
            req.headers = v.headers.clone();
            let r = send(stack.port(listener), &req).unwrap();
            let body = if r.status == 200 {
                String::new()
            } else {
                r.text()
            };
            got.push((r.status, body));
        }
        let (native, mg) = (got[0].0, got[1].0);
        let (native_body, mg_body) = (format!("{:?}", got[0].1), format!("{:?}", got[1].1));
        table.push_str(&format!(
            "{:55} native {native} {native_body:60} meshguard {mg} {mg_body}\n",
            v.name
        ));
        match known(&v.name) {
            None if native == mg => {}
            None => failures.push(format!(
                "{}: native {native}, meshguard {mg}: an unnamed difference",
                v.name
            )),
            Some((want_native, want_mg, why)) => {
                differences += 1;
                if (native, mg) != (want_native, want_mg) {
                    failures.push(format!(
                        "{}: native {native}, meshguard {mg}; the known difference ({why}) says {want_native}/{want_mg}",
                        v.name
                    ));
                }
            }
        }
    }
    eprintln!(
        "{} variants, {differences} known differences\n{table}",
        corpus.len()
    );
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}
