#!/usr/bin/env bash
# Verification time per algorithm in V8 for the two crypto providers (SECURITY.md, "Crypto
# providers"): the micro benchmark's module (bench/micro, the filter's release profile: every crate
# at opt-level 3, SIMD128 on, as bench/micro.sh's first level) built twice, default (meshguard-crypto) and `--features rustcrypto`, both measured
# in one Node process (`--no-liftoff`, as Envoy runs V8), batch by batch in turn, RUNS times.
# Prints a Markdown table of the best (lowest) of the RUNS per-run medians of `verify` (parse +
# signature + claims, a cache miss), µs.
#
#   bench/micro/providers.sh [RUNS]        (default 5; ~1 min per run after the builds)
#
# Inputs and per-run JSON go to $MESHGUARD_BENCH_OUT (default target/bench/providers).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target/bench}
OUT=${MESHGUARD_BENCH_OUT:-$CARGO_TARGET_DIR/providers}
MANIFEST=bench/micro/Cargo.toml
mkdir -p "$OUT"
command -v node >/dev/null 2>&1 || { echo "providers: node not found" >&2; exit 1; }

echo "providers: native build (writes the benchmark's tokens, $OUT/micro-cases.json)" >&2
cargo build --quiet --release --manifest-path "$MANIFEST" --bin micro
"$CARGO_TARGET_DIR/release/micro" "$OUT" >/dev/null

# SIMD128 as the filter's module is built (scripts/build-wasm.sh), unless MESHGUARD_WASM_SIMD=off.
SIMD_CONFIG=(--config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128"]')
case "${MESHGUARD_WASM_SIMD:-on}" in off|0|no) SIMD_CONFIG=() ;; esac
specs=()
for provider in meshguard-crypto rustcrypto; do
  features=()
  [ "$provider" = rustcrypto ] && features=(--features rustcrypto)
  echo "providers: wasm build, $provider" >&2
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/providers-$provider" \
    cargo build --quiet --release --manifest-path "$MANIFEST" --lib --target wasm32-unknown-unknown \
    "${SIMD_CONFIG[@]}" "${features[@]}"
  specs+=("$provider=$CARGO_TARGET_DIR/providers-$provider/wasm32-unknown-unknown/release/meshguard_micro.wasm")
done

for run in $(seq 1 "$RUNS"); do
  echo "providers: V8 run $run of $RUNS (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  node --no-liftoff bench/micro/wasm.mjs "$OUT/micro-cases.json" "$OUT/run$run-" "${specs[@]}" >&2
done

python3 - "$OUT" "$RUNS" <<'EOF'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
best = {}
for run in range(1, runs + 1):
    for label in ("meshguard-crypto", "rustcrypto"):
        with open(f"{out}/run{run}-{label}.json") as f:
            for r in json.load(f)["results"]:
                key = (label, r["alg"])
                best[key] = min(best.get(key, float("inf")), r["verify_us"])
print("| alg | meshguard-crypto (default) µs | RustCrypto µs | RustCrypto / default |")
print("|---|---:|---:|---:|")
for alg in ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"):
    own, rc = best[("meshguard-crypto", alg)], best[("rustcrypto", alg)]
    n = lambda us: f"{us:,.0f}".replace(",", " ")
    print(f"| {alg} | {n(own)} | {n(rc)} | {rc / own:.1f}× |")
EOF
