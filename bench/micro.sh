#!/usr/bin/env bash
# Micro benchmarks: verify per algorithm natively and inside V8 (Node with --no-liftoff, as
# Envoy's V8 runs: proxy-wasm-cpp-host turns Liftoff off), with meshguard and its other
# dependencies at opt-level 3 (the filter's) and "z" (the verification crates always at 3).
# Writes bench/results/micro.md (+ the JSON it is made from). Bounded: ~2-3 min after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${MESHGUARD_BENCH_OUT:-bench/results}
mkdir -p "$OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target/bench}
MANIFEST=bench/micro/Cargo.toml

echo "micro: native build" >&2
cargo build --quiet --release --manifest-path "$MANIFEST" --bin micro
"$CARGO_TARGET_DIR/release/micro" "$OUT"

command -v node >/dev/null 2>&1 || { echo "micro: node not found, skipping the V8 run" >&2; exit 0; }
# The opt-level of meshguard and its dependencies other than the verification crates
# (meshguard-crypto, meshguard-reader, sha2, the Ed25519 crates: always 3; the build has no LTO,
# so each crate keeps its own). The first is the filter's own (3).
LEVELS=${MESHGUARD_MICRO_OPT_LEVELS:-3 z}
# SIMD128 as the filter's module is built (scripts/build-wasm.sh), unless MESHGUARD_WASM_SIMD=off.
SIMD_CONFIG=(--config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128"]')
case "${MESHGUARD_WASM_SIMD:-on}" in off|0|no) SIMD_CONFIG=() ;; esac
specs=()
for level in $LEVELS; do
  echo "micro: wasm build, opt-level=$level (meshguard; verification crates at 3)" >&2
  case $level in [0-9]) value=$level ;; *) value="\"$level\"" ;; esac
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/opt-$level" \
    cargo build --quiet --release --manifest-path "$MANIFEST" --lib --target wasm32-unknown-unknown \
    --config "profile.release.package.\"*\".opt-level=$value" "${SIMD_CONFIG[@]}"
  specs+=("opt$level=$CARGO_TARGET_DIR/opt-$level/wasm32-unknown-unknown/release/meshguard_micro.wasm")
done
# All opt-levels measured in one V8 process, batch by batch in turn.
node --no-liftoff bench/micro/wasm.mjs "$OUT/micro-cases.json" "$OUT/micro-v8-" "${specs[@]}"

# The first opt-level's module once more in wasmtime (cranelift; the engine of tests/harness),
# to tell the engine's share from the code's. Built in the workspace's own target directory,
# where `make harness` already compiled wasmtime.
first=${LEVELS%% *}
echo "micro: wasmtime run (tests/harness/examples/micro_wasmtime.rs)" >&2
CARGO_TARGET_DIR="${MESHGUARD_HARNESS_TARGET_DIR:-$(pwd)/target}" \
  cargo run --quiet -p meshguard-harness --example micro_wasmtime -- "$OUT/micro-cases.json" \
  "$OUT/micro-wasmtime.json" "$CARGO_TARGET_DIR/opt-$first/wasm32-unknown-unknown/release/meshguard_micro.wasm"

# Token cache memory at 10 000 distinct tokens (native heap, and V8 heap + linear memory), and
# the cold-request breakdown below: ES256 and RS256 tokens (RSA signing makes ~50 s of it).
MEM="$OUT/tokens-mem"
# Minted tokens are valid for 2 h: mint again when missing or older than an hour.
if [ ! -s "$MEM/ES256-cold.txt" ] || [ ! -s "$MEM/RS256-cold.txt" ] ||
   [ -n "$(find "$MEM/ES256-cold.txt" "$MEM/RS256-cold.txt" -mmin +60)" ]; then
  "$CARGO_TARGET_DIR/release/micro" mint "$MEM" 10000
fi
"$CARGO_TARGET_DIR/release/micro" memory "$MEM" | tee "$OUT/memory-native.txt"
node --no-liftoff bench/micro/memory.mjs \
  "$CARGO_TARGET_DIR/opt-$first/wasm32-unknown-unknown/release/meshguard_micro.wasm" "$MEM" "$OUT/memory-v8.json"
# A whole request through the engine, cold and steady, and the phases of a cold one, per
# algorithm (the same minted tokens: more than the cache holds, so each cold request is a miss
# and an eviction).
node --no-liftoff bench/micro/breakdown.mjs "$MEM" "$OUT/breakdown-v8.json" \
  "opt$first=$CARGO_TARGET_DIR/opt-$first/wasm32-unknown-unknown/release/meshguard_micro.wasm"
python3 bench/bench.py report-micro "$OUT" $LEVELS
