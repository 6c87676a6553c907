//! Side by side in one Envoy: Envoy's native `jwt_authn` (configured as Istio configures it: a
//! missing token passes, a bad one is rejected) and meshguard with the same provider, on the same
//! tokens. Every row states both answers exactly; the differences are deliberate and named.

use crate::common::*;
use base64::Engine as _;
use meshguard_demo_idp::{Alg, TokenSpec};
use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::{Req, Stack, config, send};
use serde_json::json;

fn native_istio_style() -> serde_json::Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {
                "issuer": ISSUER,
                "audiences": [AUD],
                "remote_jwks": {"http_uri": {"uri": JWKS_URI, "cluster": "idp", "timeout": "5s"}},
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "from_cookies": ["np_scope_token"],
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "idp"}, {"allow_missing": {}}
            ]}}}],
        },
    })
}

/// (case, request headers, native (status, body), meshguard (status, body))
type Row<'a> = (
    &'a str,
    Vec<(String, String)>,
    (u16, &'a str),
    (u16, &'a str),
);

#[test]
fn side_by_side_with_native_jwt_authn() {
    let plugin = json!({"jwtRules": [rule()]});
    let stack = Stack::start(StackOpts::default(), |p| {
        Ok(config::bootstrap(
            vec![
                config::listener("native", vec![native_istio_style()], None),
                config::listener(LISTENER, vec![config::meshguard(&p.wasm, &plugin)], None),
            ],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    let mint = |spec: TokenSpec| stack.idp.mint(&spec).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(format!(
            r#"{{"iss":"{ISSUER}","sub":"alice","aud":"{AUD}","exp":4102444800}}"#
        ))
    );
    let good = || TokenSpec::default().aud(AUD);
    let bearer = |t: &str| vec![("Authorization".to_string(), format!("Bearer {t}"))];
    let rows: Vec<Row> = vec![
        ("ES256", bearer(&mint(good())), (200, ""), (200, "")),
        (
            "RS256",
            bearer(&mint(good().alg(Alg::Rs256))),
            (200, ""),
            (200, ""),
        ),
        (
            "EdDSA",
            bearer(&mint(good().alg(Alg::EdDsa))),
            (200, ""),
            (200, ""),
        ),
        ("no token", vec![], (200, ""), (200, "")),
        (
            "lowercase bearer = no token",
            vec![("Authorization".into(), format!("bearer {}", mint(good())))],
            (200, ""),
            (200, ""),
        ),
        (
            "cookie",
            vec![("Cookie".into(), format!("np_scope_token={}", mint(good())))],
            (200, ""),
            (200, ""),
        ),
        (
            "expired",
            bearer(&mint(good().exp_in(Some(-3600)))),
            (401, "Jwt is expired"),
            (401, "Jwt is expired"),
        ),
        // Claims before the signature, as jwt_authn: a forged expired token costs no signature
        // work and is refused as expired.
        (
            "expired and forged",
            bearer(&mint(good().exp_in(Some(-3600)).tamper())),
            (401, "Jwt is expired"),
            (401, "Jwt is expired"),
        ),
        (
            "not yet valid",
            bearer(&mint(TokenSpec {
                nbf_in: Some(3600),
                ..good()
            })),
            (401, "Jwt not yet valid"),
            (401, "Jwt not yet valid"),
        ),
        (
            "bad signature",
            bearer(&mint(good().tamper())),
            (401, "Jwt verification fails"),
            (401, "Jwt verification fails"),
        ),
        (
            "unknown kid",
            bearer(&mint(good().kid("nope"))),
            (401, "Jwks doesn't have key to match kid or alg from Jwt"),
            (401, "Jwks doesn't have key to match kid or alg from Jwt"),
        ),
        (
            "other issuer",
            bearer(&mint(good().iss("https://other.example"))),
            (401, "Jwt issuer is not configured"),
            (401, "Jwt issuer is not configured"),
        ),
        // Differences, deliberate:
        // - Istio answers an audience mismatch with 401 like every other token failure; Envoy's
        //   jwt_authn with 403.
        (
            "wrong audience",
            bearer(&mint(TokenSpec::default().aud("other"))),
            (403, "Audiences in Jwt are not allowed"),
            (401, "Audiences in Jwt are not allowed"),
        ),
        // - meshguard requires `exp` by default (requireExpiration); jwt_authn accepts eternal tokens.
        (
            "no exp",
            bearer(&mint(good().exp_in(None))),
            (200, ""),
            (401, "Jwt is missing the required exp claim"),
        ),
        // - alg "none" (empty signature): both refuse, each with its own wording.
        (
            "alg none",
            bearer(&alg_none),
            (
                401,
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
            ),
            (
                401,
                "Jwt header [alg] none is not allowed: the Jwt is unsigned",
            ),
        ),
    ];
    let mut table = String::new();
    let mut mismatches = Vec::new();
    for (case, headers, want_native, want_mg) in &rows {
        let mut got = Vec::new();
        for listener in ["native", LISTENER] {
            let mut req = Req::get("/api/compare");
            req.headers = headers.clone();
            let r = send(stack.port(listener), &req).unwrap();
            let body = if r.status == 200 {
                String::new()
            } else {
                r.text()
            };
            got.push((r.status, body));
        }
        table.push_str(&format!(
            "{case:30} native {:?}  meshguard {:?}\n",
            got[0], got[1]
        ));
        let want = [want_native, want_mg];
        for (i, name) in ["native", "meshguard"].iter().enumerate() {
            if (got[i].0, got[i].1.as_str()) != (want[i].0, want[i].1) {
                mismatches.push(format!(
                    "{case}: {name} gave {:?}, expected {:?}",
                    got[i], want[i]
                ));
            }
        }
    }
    eprintln!("{table}");
    assert!(mismatches.is_empty(), "{}\n{table}", mismatches.join("\n"));
}
