//! Project Wycheproof's signature vectors (`filter/testdata/wycheproof/`, origin and license in
//! its README) through the filter's own path: each test group's public key becomes a JWK, which
//! [`Jwks::parse`] admits (or skips) as it admits an IdP's keys; each vector's message and
//! signature then go to [`Jwk::verify`] with the JWS `alg` of the group, as a token's signing input
//! and signature do (`verify.rs`). Every vector of every file is run:
//! - `valid` must be accepted, `invalid` refused; `acceptable` may go either way (counted per
//!   way);
//! - a group whose parameters are no JWS algorithm (PKCS#1 v1.5 or PSS with SHA-1 or SHA-224,
//!   PSS whose MGF1 hash or salt length is not the JWS one, RFC 7518 §3.5, ECDSA P-256 or P-384
//!   over SHA-512) must refuse every vector, `valid` ones included, under every `alg` of its
//!   family;
//! - a group whose key the JWKS admission skips (RSA moduli under 2048 bits) refuses every
//!   vector; only `acceptable` vectors may be in such a group.
//!
//! Any other answer fails the test, naming the file and the `tcId`s.
//!
//! Every file runs once per crypto provider (`jose/provider.rs`: meshguard-crypto and
//! RustCrypto, both compiled in tests), with one report line each. Each vector is also verified
//! with the message's SHA-256 given beside it, as a token that misses the cache is (RS256, PS256
//! and ES256 then take the digest instead of hashing): both answers must be the same.

use std::fmt;

use super::*;
use crate::jose::key::Signed;
use crate::jose::key::provider::{ProviderId, with_provider};

/// The providers every file runs through.
const PROVIDERS: [ProviderId; 2] = [ProviderId::MeshguardCrypto, ProviderId::RustCrypto];

/// The test data directory (copied into the crate: the tests never read outside it).
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/wycheproof/");

/// What one file gave.
#[derive(Default)]
struct Report {
    file: &'static str,
    provider: Option<ProviderId>,
    valid_accepted: usize,
    invalid_refused: usize,
    acceptable_accepted: usize,
    acceptable_refused: usize,
    /// Vectors (of any result) of a parameter set that JWS does not define, refused.
    not_jws_refused: usize,
    /// Vectors under a key that the JWKS admission skipped (with its reason), refused.
    key_skipped_refused: usize,
    skip_reasons: Vec<String>,
    wrong: Vec<String>,
}

impl Report {
    fn total(&self) -> usize {
        self.valid_accepted
            + self.invalid_refused
            + self.acceptable_accepted
            + self.acceptable_refused
            + self.not_jws_refused
            + self.key_skipped_refused
            + self.wrong.len()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{:?}]: {} vectors: valid accepted {}, invalid refused {}, acceptable accepted {} / refused {}",
            self.file,
            self.provider,
            self.total(),
            self.valid_accepted,
            self.invalid_refused,
            self.acceptable_accepted,
            self.acceptable_refused,
        )?;
        if self.not_jws_refused > 0 {
            write!(
                f,
                ", not a JWS parameter set, refused {}",
                self.not_jws_refused
            )?;
        }
        if self.key_skipped_refused > 0 {
            write!(
                f,
                ", refused with the key skipped ({}) {}",
                self.skip_reasons.join(", "),
                self.key_skipped_refused
            )?;
        }
        if !self.wrong.is_empty() {
            write!(f, "; WRONG {}: {}", self.wrong.len(), self.wrong.join(" "))?;
        }
        Ok(())
    }
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// The group's key as a JWK (built from the vector's raw public key, not its own JWK, so that
/// every file goes the same way), the JWS algorithms to try, and whether the group's parameters
/// are a JWS algorithm at all (when not, every vector must be refused under each of `algs`).
fn group_key(file: &str, group: &Value) -> (Value, Vec<Algorithm>, bool) {
    let sha = group["sha"].as_str();
    let rsa_key = |pk: &Value| {
        let n = hex(str_of(pk, "modulus"));
        let start = n.iter().position(|&b| b != 0).unwrap();
        json!({"kty": "RSA", "kid": "w",
            "n": b64::encode(&n[start..]), "e": b64::encode(&hex(str_of(pk, "publicExponent")))})
    };
    if file.starts_with("ecdsa_") {
        let pk = &group["publicKey"];
        let point = hex(str_of(pk, "uncompressed"));
        assert_eq!(point[0], 4);
        let (x, y) = point[1..].split_at((point.len() - 1) / 2);
        // JWS fixes the hash per curve; P-256 or P-384 with SHA-512 is no JWS algorithm.
        let (crv, alg, jws) = match (str_of(pk, "curve"), sha) {
            ("secp256r1", Some(sha)) => ("P-256", Algorithm::Es256, sha == "SHA-256"),
            ("secp384r1", Some(sha)) => ("P-384", Algorithm::Es384, sha == "SHA-384"),
            ("secp521r1", Some(sha)) => ("P-521", Algorithm::Es512, sha == "SHA-512"),
            other => panic!("{file}: unknown curve {other:?}"),
        };
        let jwk = json!({"kty": "EC", "crv": crv, "kid": "w",
            "x": b64::encode(x), "y": b64::encode(y)});
        (jwk, vec![alg], jws)
    } else if file.starts_with("ed25519") {
        let pk = hex(str_of(&group["publicKey"], "pk"));
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "w", "x": b64::encode(&pk)});
        (jwk, vec![Algorithm::EdDsa], true)
    } else if file.starts_with("rsa_pss_") {
        let jwk = rsa_key(&group["publicKey"]);
        let mgf = (
            group["mgf"].as_str(),
            group["mgfSha"].as_str(),
            group["sLen"].as_u64(),
        );
        let jws = match (sha, mgf) {
            (Some("SHA-256"), (Some("MGF1"), Some("SHA-256"), Some(32))) => Some(Algorithm::Ps256),
            (Some("SHA-384"), (Some("MGF1"), Some("SHA-384"), Some(48))) => Some(Algorithm::Ps384),
            (Some("SHA-512"), (Some("MGF1"), Some("SHA-512"), Some(64))) => Some(Algorithm::Ps512),
            _ => None,
        };
        match jws {
            Some(alg) => (jwk, vec![alg], true),
            None => {
                let all = vec![Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512];
                (jwk, all, false)
            }
        }
    } else if file.starts_with("rsa_") {
        // rsa_signature_* carry `publicKey`, the sig_gen files the private key's public half.
        let pk = if group["publicKey"].is_object() {
            &group["publicKey"]
        } else {
            &group["privateKey"]
        };
        let jwk = rsa_key(pk);
        match sha {
            Some("SHA-256") => (jwk, vec![Algorithm::Rs256], true),
            Some("SHA-384") => (jwk, vec![Algorithm::Rs384], true),
            Some("SHA-512") => (jwk, vec![Algorithm::Rs512], true),
            _ => {
                let all = vec![Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512];
                (jwk, all, false)
            }
        }
    } else {
        panic!("{file}: unknown family")
    }
}

/// Runs every vector of `file` with keys built by `provider`.
fn run(file: &'static str, provider: ProviderId) -> Report {
    with_provider(provider, || run_selected(file, provider))
}

fn run_selected(file: &'static str, provider: ProviderId) -> Report {
    let path = format!("{DIR}{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut report = Report {
        file,
        provider: Some(provider),
        ..Report::default()
    };
    for group in doc["testGroups"].as_array().unwrap() {
        let (jwk, algs, jws) = group_key(file, group);
        let parsed = Jwks::parse(json!({"keys": [jwk]}).to_string().as_bytes());
        let key = match &parsed {
            Ok(set) => Some(&set.keys()[0]),
            Err(JwksError::NoUsableKey { .. }) => {
                // Why: parse it next to a valid key to read the skip reason.
                let with = json!({"keys": [jwk, p256_jwk("ok")]});
                let reason = jwks(with).skipped()[0].reason.reason().to_owned();
                if !report.skip_reasons.contains(&reason) {
                    report.skip_reasons.push(reason);
                }
                None
            }
            Err(e) => panic!("{file}: {e}"),
        };
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let (msg, sig) = (hex(str_of(test, "msg")), hex(str_of(test, "sig")));
            let accepted = key.is_some_and(|k| algs.iter().any(|&alg| k.verify(alg, &msg, &sig)));
            let digest = meshguard_crypto::sha256(&msg);
            let prehashed = Signed::with_sha256(&msg, &digest);
            let accepted_prehashed = key.is_some_and(|k| {
                algs.iter()
                    .any(|&alg| k.verify_signed(alg, prehashed, &sig))
            });
            if accepted_prehashed != accepted {
                report.wrong.push(format!(
                    "tcId {id}: {accepted} from the message, {accepted_prehashed} from its SHA-256"
                ));
                continue;
            }
            let result = str_of(test, "result");
            let counter = match (key.is_some(), jws, result, accepted) {
                // Under a skipped key nothing verifies; a `valid` vector there would mean that
                // the admission refuses a key Wycheproof considers good.
                (false, _, "invalid" | "acceptable", false) => {
                    Some(&mut report.key_skipped_refused)
                }
                (false, ..) => None,
                (true, false, _, false) => Some(&mut report.not_jws_refused),
                (true, false, _, true) => None,
                (true, true, "valid", true) => Some(&mut report.valid_accepted),
                (true, true, "invalid", false) => Some(&mut report.invalid_refused),
                (true, true, "acceptable", true) => Some(&mut report.acceptable_accepted),
                (true, true, "acceptable", false) => Some(&mut report.acceptable_refused),
                _ => None,
            };
            match counter {
                Some(n) => *n += 1,
                None => report
                    .wrong
                    .push(format!("tcId {id} ({result}, accepted: {accepted})")),
            }
        }
    }
    let expected = doc["numberOfTests"].as_u64().unwrap() as usize;
    assert_eq!(report.total(), expected, "{file}: vectors counted");
    report
}

/// Runs the files, prints one line each (`--nocapture` shows them), fails on any wrong answer.
fn check_files(files: &[&'static str]) {
    let reports: Vec<Report> = files
        .iter()
        .flat_map(|f| PROVIDERS.map(|p| run(f, p)))
        .collect();
    for r in &reports {
        println!("{r}");
    }
    let wrong: Vec<String> = reports
        .iter()
        .filter(|r| !r.wrong.is_empty())
        .map(ToString::to_string)
        .collect();
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
}

#[test]
fn ecdsa_p256_sha256() {
    check_files(&["ecdsa_secp256r1_sha256_p1363_test.json"]);
}

#[test]
fn ecdsa_p384_sha384() {
    check_files(&["ecdsa_secp384r1_sha384_p1363_test.json"]);
}

#[test]
fn ecdsa_p521_sha512() {
    check_files(&["ecdsa_secp521r1_sha512_p1363_test.json"]);
}

/// P-256 and P-384 signatures over SHA-512 digests: no JWS algorithm, so ES256 and ES384 refuse
/// every one, `valid` ones included (the hash is part of the `alg`).
#[test]
fn ecdsa_with_another_hash_is_refused() {
    check_files(&[
        "ecdsa_secp256r1_sha512_p1363_test.json",
        "ecdsa_secp384r1_sha512_p1363_test.json",
    ]);
}

#[test]
fn ed25519() {
    check_files(&["ed25519_test.json"]);
}

#[test]
fn rsa_pkcs1_2048_to_4096() {
    check_files(&[
        "rsa_signature_2048_sha256_test.json",
        "rsa_signature_2048_sha384_test.json",
        "rsa_signature_2048_sha512_test.json",
        "rsa_signature_3072_sha256_test.json",
        "rsa_signature_3072_sha384_test.json",
        "rsa_signature_3072_sha512_test.json",
        "rsa_signature_4096_sha256_test.json",
        "rsa_signature_4096_sha384_test.json",
        "rsa_signature_4096_sha512_test.json",
    ]);
}

#[test]
fn rsa_pkcs1_8192() {
    check_files(&[
        "rsa_signature_8192_sha256_test.json",
        "rsa_signature_8192_sha384_test.json",
        "rsa_signature_8192_sha512_test.json",
    ]);
}

#[test]
fn rsa_pkcs1_sig_gen() {
    check_files(&[
        "rsa_pkcs1_1024_sig_gen_test.json",
        "rsa_pkcs1_1536_sig_gen_test.json",
        "rsa_pkcs1_2048_sig_gen_test.json",
        "rsa_pkcs1_3072_sig_gen_test.json",
        "rsa_pkcs1_4096_sig_gen_test.json",
    ]);
}

#[test]
fn rsa_pss() {
    check_files(&[
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_pss_2048_sha384_mgf1_48_test.json",
        "rsa_pss_3072_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha384_mgf1_48_test.json",
        "rsa_pss_4096_sha512_mgf1_64_test.json",
    ]);
}

/// Parameter sets that JWS does not define (other MGF1 hashes, other salt lengths, SHA-1 and
/// SHA-224) are refused even where the signature is valid; the three JWS sets in this file
/// (SHA-256/MGF1-SHA-256/32, …) are accepted.
#[test]
fn rsa_pss_misc() {
    check_files(&["rsa_pss_misc_test.json"]);
}
