//! Native micro benchmark: mints one token per algorithm with fixed keys, times parse + verify,
//! parse alone and the cache key (SHA-256), and writes the cases for the wasm run.
//!
//!   micro <out-dir>   writes <out-dir>/micro-cases.json and <out-dir>/micro-native.json

use std::time::Instant;

use meshguard_micro::Case;
use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

const ISS: &str = "https://bench.meshguard.test";
/// Fixed "now" so every run verifies the same bytes.
const NOW: u64 = support::NOW;

/// The benchmark's key for `alg` (tests/support): Istio's published RSA test key, and the EC and
/// Ed25519 keys every earlier result was measured with (scalars 0x11…, 0x22…, seed 0x33…).
fn key(alg: &str) -> Key {
    match alg {
        "ES256" => Key::from(support::p256_key_from(0x11)),
        "ES384" => Key::from(support::p384_key_from(0x22)),
        "ES512" => Key::p521(),
        "EdDSA" => Key::from(support::ed25519_key_from(0x33)),
        _ => Key::rsa(),
    }
}

/// The kid of `alg`'s key in the benchmark's JWKS.
fn kid(alg: &str) -> &'static str {
    support::kid_for(alg)
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1234567890", "aud": ["api.bench.test"],
        "exp": NOW + 3600, "iat": NOW - 10, "nbf": NOW - 10,
        "jti": "b0c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e",
        "scope": "read:orders write:orders", "email": "user@example.test",
        "groups": ["eng", "oncall"], "azp": "bench-client"
    })
}

/// `claims` as `alg` by the benchmark's key, header `{"alg", "typ": "JWT", "kid"}`.
fn token_with(alg: &str, claims: &Value) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid(alg)});
    let key = key(alg);
    support::mint_with(&header, claims, |m| key.sign(alg, m))
}

/// (name, JWKS, token) for every algorithm family we serve.
fn cases() -> Vec<(&'static str, Value, String)> {
    ["ES256", "RS256", "PS256", "ES384", "ES512", "EdDSA"]
        .into_iter()
        .map(|alg| {
            let jwks = support::jwks_of([key(alg).jwk(kid(alg))]);
            (alg, jwks, token_with(alg, &claims()))
        })
        .collect()
}

/// Median microseconds per operation over 7 batches of about 100 ms each.
fn time_us(mut op: impl FnMut(u32) -> u32) -> f64 {
    let start = Instant::now();
    let mut calib = 1u32;
    while start.elapsed().as_millis() < 20 {
        op(calib);
        calib = calib.saturating_mul(2);
    }
    let per = start.elapsed().as_secs_f64() / f64::from(calib.saturating_sub(1).max(1));
    let iters = ((0.1 / per) as u32).clamp(1, 1_000_000);
    let mut samples: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(op(iters));
            t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[3]
}

/// `micro memory <tokens-dir>`: live heap bytes of a token cache after 10 000 distinct ES256
/// tokens (from `<dir>/ES256-cold.txt`, minted with n >= 10000), for capacities 1024 and 10 000.
fn memory(dir: &str) {
    let tokens = std::fs::read_to_string(format!("{dir}/ES256-cold.txt")).expect("tokens");
    let jwks = std::fs::read_to_string(format!("{dir}/jwks.json")).expect("jwks");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let case = Case::new(jwks.as_bytes(), String::new(), ISS, now).expect("case");
    let list: Vec<&str> = tokens.lines().take(10_000).collect();
    for capacity in [1024usize, 10_000] {
        let before = meshguard_micro::live_bytes();
        let mut cache = meshguard::cache::TokenCache::new(capacity);
        let ok = list.iter().filter(|t| case.cache_add(&mut cache, t)).count();
        // A measurement of an empty cache (e.g. expired tokens) is worthless: fail loudly.
        assert!(ok == list.len(), "memory: only {ok} of {} tokens verified", list.len());
        let bytes = meshguard_micro::live_bytes() - before;
        println!(
            "native cache capacity {capacity:6}: {ok} tokens verified, {} entries, {bytes} live bytes ({} per entry)",
            cache.len(),
            bytes / cache.len().max(1)
        );
    }
}

/// `micro mint <dir> <n> [ALG]`: the macro benchmark's inputs, valid for two hours from now: `jwks.json`
/// (the ES256 and RS256 keys) and, per algorithm, `<alg>-steady.txt` (one token) and
/// `<alg>-cold.txt` (`n` distinct tokens, one per line).
fn mint(dir: &str, n: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut keys = Vec::new();
    let only = std::env::args().nth(4);
    for (alg, jwks, _) in cases()
        .into_iter()
        .filter(|(a, _, _)| ["ES256", "RS256"].contains(a))
        .filter(|(a, _, _)| only.as_deref().is_none_or(|o| o == *a))
    {
        keys.extend(jwks["keys"].as_array().expect("keys").iter().cloned());
        let one = |i: usize| {
            let mut c = claims();
            c["exp"] = json!(now + 7200);
            c["iat"] = json!(now - 10);
            c["nbf"] = json!(now - 10);
            c["sub"] = json!(format!("user-{i:08}"));
            c["jti"] = json!(format!("bench-{alg}-{i:08}"));
            token_with(alg, &c)
        };
        std::fs::write(format!("{dir}/{alg}-steady.txt"), one(0) + "\n").expect("write");
        let mut cold = String::new();
        for i in 1..=n {
            cold.push_str(&one(i));
            cold.push('\n');
        }
        std::fs::write(format!("{dir}/{alg}-cold.txt"), cold).expect("write");
        eprintln!("micro mint: {alg}: 1 steady + {n} cold tokens");
    }
    std::fs::write(format!("{dir}/jwks.json"), json!({"keys": keys}).to_string()).expect("write");
}

/// `micro breakdown <dir> <phase> <iters> [ES256|RS256]`: one phase of the cold-request
/// breakdown natively (`request::Phase` by index) for one algorithm's minted tokens (ES256 unless
/// named), e.g. under `perf record` to see which functions a phase spends in.
fn breakdown(args: &[String]) {
    let usage = "usage: micro breakdown <minted dir> <phase 0-7> <iters> [ES256|RS256]";
    let dir = args.get(2).expect(usage);
    let phase = args.get(3).and_then(|p| p.parse().ok()).and_then(meshguard_micro::request::Phase::from_index).expect(usage);
    let iters = args.get(4).and_then(|n| n.parse().ok()).expect(usage);
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).expect("minted file");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let alg = args.get(5).map_or("ES256", String::as_str);
    let tokens = read(&format!("{alg}-steady.txt")) + &read(&format!("{alg}-cold.txt"));
    let b = meshguard_micro::request::Breakdown::new(read("jwks.json").trim(), &tokens, now).expect("breakdown");
    let t = Instant::now();
    assert_eq!(b.run(phase, iters), iters, "every run succeeds");
    println!("{:.2} us per run", t.elapsed().as_secs_f64() * 1e6 / f64::from(iters));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("memory") {
        return memory(args.get(2).map_or("bench/results", String::as_str));
    }
    if args.get(1).map(String::as_str) == Some("mint") {
        let dir = args.get(2).expect("usage: micro mint <dir> <n>");
        let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20_000);
        return mint(dir, n);
    }
    if args.get(1).map(String::as_str) == Some("breakdown") {
        return breakdown(&args);
    }
    let out = args.get(1).cloned().unwrap_or_else(|| "bench/results".into());
    std::fs::create_dir_all(&out).expect("out dir");
    let mut case_docs = Vec::new();
    let mut results = Vec::new();
    for (alg, jwks, token) in cases() {
        let case = Case::new(jwks.to_string().as_bytes(), token.clone(), ISS, NOW).expect("case");
        assert_eq!(case.verify(1), 1, "{alg} token verifies");
        let verify = time_us(|n| case.verify(n));
        let parse = time_us(|n| case.parse(n));
        let digest = time_us(|n| case.digest(n));
        let hit = time_us(|n| case.hit(n));
        println!("native {alg:6} verify {verify:8.1} us   parse {parse:6.2} us   sha256 {digest:5.2} us   hit {hit:5.2} us   token {} B", token.len());
        results.push(json!({"alg": alg, "verify_us": verify, "parse_us": parse, "digest_us": digest, "hit_us": hit, "token_bytes": token.len()}));
        case_docs.push(json!({"alg": alg, "jwks": jwks.to_string(), "token": token, "iss": ISS, "now": NOW}));
    }
    std::fs::write(format!("{out}/micro-cases.json"), serde_json::to_string_pretty(&case_docs).expect("json")).expect("write");
    std::fs::write(format!("{out}/micro-native.json"), serde_json::to_string_pretty(&results).expect("json")).expect("write");
}
