//! Stable-toolchain driver for the fuzz targets (no libFuzzer):
//! - `corpus_replays`: every file of `corpus/<target>/` runs through its target;
//! - `mutation_smoke`: seeded random mutations of the corpus (bit flips, byte inserts and
//!   deletions, splices, interesting bytes) for `MESHGUARD_FUZZ_SECS` seconds per target (default
//!   2), a bounded stand-in for libFuzzer where nightly is unavailable.
//!
//! Run: `cargo test --manifest-path fuzz/Cargo.toml --no-default-features --release`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Target = fn(&[u8]);

#[path = "../src/provider_diff.rs"]
mod provider_diff;

const TARGETS: &[(&str, Target)] = &[
    ("token", meshguard_fuzz::token),
    ("jwks", meshguard_fuzz::jwks),
    ("config", meshguard_fuzz::config),
    ("policy", meshguard_fuzz::policy),
    ("extract", meshguard_fuzz::extract),
    ("cnf", meshguard_fuzz::cnf),
    ("dpop", meshguard_fuzz::dpop),
    ("provider_diff", provider_diff::provider_diff),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

#[test]
fn corpus_replays() {
    for (name, target) in TARGETS {
        let files = corpus(name);
        assert!(!files.is_empty(), "corpus/{name} is empty");
        for (path, bytes) in &files {
            // A panic names the file: rerun it alone with the libFuzzer binary or this test.
            eprintln!("replay {}", path.display());
            target(bytes);
        }
        eprintln!("replay: {name}: {} inputs", files.len());
    }
}

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\xef\xbb\xbf",
    b".",
    b"..",
    b"=",
    b"%",
    b"%00",
    b"%2F",
    b";",
    b"&",
    b"?",
    b"\"",
    b"\\",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"1e300",
    b"-1",
    b"18446744073709551616",
    b"\"alg\":\"none\"",
    b"\"kid\":\"../../x\"",
    b"spiffe://",
    b"/ns/",
    b"Bearer ",
    b"*",
    b"{**}",
    b"::ffff:10.0.0.1",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[(PathBuf, Vec<u8>)]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                if let Some(b) = input.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next() as u8);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = rng.below(len - at).min(16) + 1;
                input.drain(at..(at + n).min(len));
            }
            3 => {
                let at = rng.below(len + 1);
                let word = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(at..at, word.iter().copied());
            }
            4 if !pool.is_empty() => {
                let (_, other) = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                let take = rng.below(other.len() - from + 1).min(64);
                let at = rng.below(len + 1);
                input.splice(at..at, other[from..from + take].iter().copied());
            }
            5 if len > 1 => {
                let at = rng.below(len);
                input.truncate(at.max(1));
            }
            _ => {
                let at = rng.below(len + 1);
                let n = rng.below(8) + 1;
                let b = rng.next() as u8;
                input.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
    input.truncate(64 * 1024);
}

#[test]
fn mutation_smoke() {
    let secs: u64 = std::env::var("MESHGUARD_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("MESHGUARD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d65_7368_6775_6172);
    for (index, (name, target)) in TARGETS.iter().enumerate() {
        let pool = corpus(name);
        let mut rng = Rng(seed ^ ((index as u64 + 1) << 32) | 1);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut execs: u64 = 0;
        while Instant::now() < deadline && execs < 50_000_000 {
            let mut input = pool
                .get(rng.below(pool.len()))
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            mutate(&mut rng, &mut input, &pool);
            let result = std::panic::catch_unwind(|| target(&input));
            if result.is_err() {
                let out = std::env::temp_dir().join(format!("meshguard-fuzz-crash-{name}"));
                let _ = std::fs::write(&out, &input);
                panic!(
                    "{name}: crash on a mutated input, saved to {}",
                    out.display()
                );
            }
            execs += 1;
        }
        eprintln!("mutation_smoke: {name}: {execs} execs in {secs} s");
    }
}
