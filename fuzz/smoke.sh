#!/usr/bin/env bash
# Fuzz smoke for `make test` (make fuzz-smoke) and the long runs (make fuzz).
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Route, first that works, printed as `fuzz-smoke: route=...`:
#   libfuzzer  a nightly toolchain is installed and cargo-fuzz is on PATH, or installs with
#              `cargo install cargo-fuzz --locked` within FUZZ_INSTALL_TIMEOUT seconds (default
#              600; measured 1.5 min on 2 cores): each target runs under libFuzzer + ASan for
#              SECONDS, seeded from fuzz/corpus/<target> (copied: the checked-in corpus never
#              grows here);
#   stable     otherwise: every corpus file replayed on the stable toolchain, then SECONDS of
#              seeded random mutations per target (fuzz/tests/replay.rs; every target).
# Force one with MESHGUARD_FUZZ_ROUTE=libfuzzer|stable. Crashes fail the run; libFuzzer keeps the
# input in fuzz/artifacts/<target>/ and prints the command that reproduces it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
secs="${1:-30}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(token jwks config policy extract cnf dpop provider_diff)
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$here/../target/fuzz}"
route="${MESHGUARD_FUZZ_ROUTE:-}"

have_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }

if [ -z "$route" ] || [ "$route" = libfuzzer ]; then
    if have_nightly && ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "fuzz-smoke: installing cargo-fuzz (bounded to ${FUZZ_INSTALL_TIMEOUT:-600} s)"
        timeout "${FUZZ_INSTALL_TIMEOUT:-600}" cargo install cargo-fuzz --locked --quiet || true
    fi
    if have_nightly && command -v cargo-fuzz >/dev/null 2>&1; then
        route=libfuzzer
    elif [ "$route" = libfuzzer ]; then
        echo "fuzz-smoke: route=libfuzzer needs a nightly toolchain and cargo-fuzz" >&2
        exit 1
    else
        route=stable
    fi
fi
echo "fuzz-smoke: route=$route, ${secs} s per target: ${targets[*]}"

cd "$here"
case "$route" in
libfuzzer)
    cargo +nightly fuzz build -O
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    for t in "${targets[@]}"; do
        mkdir -p "$work/$t"
        log="$work/$t.log"
        if ! cargo +nightly fuzz run -O "$t" "$work/$t" "corpus/$t" -- \
            -max_total_time="$secs" -max_len=24576 -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "fuzz-smoke: $t FAILED (input saved under fuzz/artifacts/$t/)"
            exit 1
        fi
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
        echo "fuzz-smoke: $t OK, ${execs:-?} execs in ${secs} s"
    done
    ;;
stable)
    MESHGUARD_FUZZ_SECS="$secs" cargo test --release --no-default-features --test replay \
        -- --nocapture --test-threads=1 2>&1 | grep -v '^replay /'
    ;;
*)
    echo "fuzz-smoke: unknown route $route" >&2
    exit 1
    ;;
esac
