//! Differential target `provider_diff`: the same (key, message, signature) through both crypto
//! providers of the filter (meshguard-crypto and RustCrypto, `filter/src/jose/provider.rs`), by
//! the filter's own JWK admission ([`Jwks::parse_with_provider`]) and verification. Any
//! disagreement, in admission (the error, or the key kind) or in the verdict, panics.
//!
//! Input: `family, variant, key, msg_len (u16 BE), msg, sig (the rest)`, with `family % 6`:
//! 0 RSA PKCS#1 v1.5, 1 RSA-PSS (`variant % 3`: SHA-256/384/512; key `n_len (u16 BE), n,
//! e_len (u8, ≤ 8), e`), 2 P-256, 3 P-384, 4 P-521 (key `x || y`, 32/48/66 bytes each),
//! 5 Ed25519 (32 bytes). `MESHGUARD_DIFF_FAMILY=0..5` forces the family (the first byte is then
//! still read and ignored): one curve family per long run. Seed such a run with that family's
//! files only (`corpus/provider_diff/valid-*-<family>-*`; the others would be read as the forced
//! family's layout), e.g. from `fuzz/`, after `cargo +nightly fuzz build -O provider_diff`:
//!
//! ```text
//! mkdir -p /tmp/seeds-2 /tmp/work-2 && cp corpus/provider_diff/*-2-* /tmp/seeds-2/
//! MESHGUARD_DIFF_FAMILY=2 nice -n 19 target/x86_64-unknown-linux-gnu/release/provider_diff \
//!     /tmp/work-2 /tmp/seeds-2 -max_total_time=600 -max_len=24576 -rss_limit_mb=2048 \
//!     -timeout=10 -print_final_stats=1
//! ```
//!
//! Included by `fuzz_targets/provider_diff.rs` and `tests/replay.rs` (`#[path]`).

use meshguard::jose::{Algorithm, Jwks};
use meshguard_test_support::b64;
use serde_json::{Value, json};

/// Reads `n` bytes.
fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Some(head)
}

fn forced_family() -> Option<u8> {
    static FAMILY: std::sync::OnceLock<Option<u8>> = std::sync::OnceLock::new();
    *FAMILY.get_or_init(|| {
        std::env::var("MESHGUARD_DIFF_FAMILY")
            .ok()
            .and_then(|v| v.parse::<u8>().ok())
    })
}

/// The JWK, the algorithm and the rest of the input (msg_len, msg, sig).
fn decode(mut data: &[u8]) -> Option<(Value, Algorithm, &[u8])> {
    let head = take(&mut data, 2)?;
    let family = forced_family().unwrap_or(head[0]) % 6;
    let variant = head[1] % 3;
    let ec = |data: &mut &[u8], len: usize, crv: &str| -> Option<Value> {
        let x = take(data, len)?;
        let y = take(data, len)?;
        Some(json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)}))
    };
    let (jwk, alg) = match family {
        0 | 1 => {
            let n_len = usize::from(u16::from_be_bytes(take(&mut data, 2)?.try_into().ok()?));
            let n = take(&mut data, n_len)?;
            let e_len = usize::from(take(&mut data, 1)?[0] % 9);
            let e = take(&mut data, e_len)?;
            let algs = if family == 0 {
                [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512]
            } else {
                [Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512]
            };
            (
                json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
                algs[usize::from(variant)],
            )
        }
        2 => (ec(&mut data, 32, "P-256")?, Algorithm::Es256),
        3 => (ec(&mut data, 48, "P-384")?, Algorithm::Es384),
        4 => (ec(&mut data, 66, "P-521")?, Algorithm::Es512),
        _ => {
            let x = take(&mut data, 32)?;
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}),
                Algorithm::EdDsa,
            )
        }
    };
    Some((jwk, alg, data))
}

/// The target body.
pub fn provider_diff(data: &[u8]) {
    let Some((jwk, alg, mut rest)) = decode(data) else {
        return;
    };
    let Some(len) = take(&mut rest, 2) else {
        return;
    };
    let msg_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let Some(msg) = take(&mut rest, msg_len) else {
        return;
    };
    let sig = rest;
    let doc = json!({"keys": [jwk]}).to_string();
    let own = Jwks::parse_with_provider(doc.as_bytes(), false);
    let rc = Jwks::parse_with_provider(doc.as_bytes(), true);
    match (&own, &rc) {
        (Ok(own), Ok(rc)) => {
            let (Some(a), Some(b)) = (own.keys().first(), rc.keys().first()) else {
                panic!("admitted without a key");
            };
            assert_eq!(a.kind(), b.kind(), "key kinds differ");
            let verdicts = (
                a.verify_signature(alg, msg, sig),
                b.verify_signature(alg, msg, sig),
            );
            assert_eq!(
                verdicts.0,
                verdicts.1,
                "{alg:?}: meshguard-crypto says {}, RustCrypto {} (msg {} bytes, sig {} bytes)",
                verdicts.0,
                verdicts.1,
                msg.len(),
                sig.len()
            );
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "refusals differ"),
        _ => panic!(
            "admission differs: meshguard-crypto {:?}, RustCrypto {:?}",
            own.as_ref().map(|_| ()).map_err(ToString::to_string),
            rc.as_ref().map(|_| ()).map_err(ToString::to_string)
        ),
    }
}

/// Seeds: a valid signature per family and hash (tests/support's fixed keys), written by
/// `cargo test --release --no-default-features --test replay -- --ignored write_provider_diff_seeds`.
#[cfg(test)]
mod seeds {
    use meshguard_test_support::{Key, b64_decode};

    fn field(jwk: &serde_json::Value, name: &str) -> Vec<u8> {
        b64_decode(jwk[name].as_str().unwrap())
    }

    #[test]
    #[ignore]
    fn write_provider_diff_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/provider_diff");
        std::fs::create_dir_all(&dir).unwrap();
        let msg = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmdXp6In0";
        let cases: [(u8, u8, &str); 11] = [
            (0, 0, "RS256"),
            (0, 1, "RS384"),
            (0, 2, "RS512"),
            (1, 0, "PS256"),
            (1, 1, "PS384"),
            (1, 2, "PS512"),
            (2, 0, "ES256"),
            (3, 0, "ES384"),
            (4, 0, "ES512"),
            (5, 0, "EdDSA"),
            (5, 1, "EdDSA"),
        ];
        for (family, variant, alg) in cases {
            let key = Key::for_alg(alg);
            let jwk = key.jwk("k");
            let mut input = vec![family, variant];
            match family {
                0 | 1 => {
                    let n = field(&jwk, "n");
                    let e = field(&jwk, "e");
                    input.extend_from_slice(&(n.len() as u16).to_be_bytes());
                    input.extend_from_slice(&n);
                    input.push(e.len() as u8);
                    input.extend_from_slice(&e);
                }
                5 => input.extend_from_slice(&field(&jwk, "x")),
                _ => {
                    input.extend_from_slice(&field(&jwk, "x"));
                    input.extend_from_slice(&field(&jwk, "y"));
                }
            }
            let msg: &[u8] = if variant == 1 && family == 5 {
                b""
            } else {
                msg
            };
            input.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            input.extend_from_slice(msg);
            input.extend_from_slice(&key.sign(alg, msg));
            std::fs::write(dir.join(format!("valid-{alg}-{family}-{variant}")), &input).unwrap();
        }
    }
}
