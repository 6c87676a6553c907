#!/usr/bin/env bash
# Builds target/wasm32-unknown-unknown/release/meshguard.wasm by the first route that works:
#   1. "rustup":  the wasm32 std is already installed for the active rustup toolchain;
#   2. "rustup-add": `rustup target add wasm32-unknown-unknown` (bounded by a time limit);
#   3. "debian":  Debian's rustc-web/cargo-web/rust-web-src + lld-19, building std from source
#                 with -Zbuild-std (works on a fresh machine with no rustup target at all).
# Force a route with MESHGUARD_WASM_ROUTE=rustup|debian (CI uses the default choice).
# Then meshguard.wasm goes through binaryen's `wasm-opt -Oz` (installed from Debian when missing,
# bounded; without it the module is left as built and the script says so). MESHGUARD_WASM_OPT=off
# skips it. MESHGUARD_WASM_NAMES=1 keeps the name section for scripts/wasm-size.py (meshguard's own
# `strip` setting, Cargo.toml `[profile.release.package.meshguard]`, set to "debuginfo") and skips
# wasm-opt, which would drop it.
# MESHGUARD_CRYPTO=rustcrypto (`make wasm CRYPTO=rustcrypto`) builds meshguard with the RustCrypto
# crypto provider (cargo feature `rustcrypto`; SECURITY.md, "Crypto providers") into its own
# target directory, `<target dir>/rustcrypto/`, so the module is
# target/rustcrypto/wasm32-unknown-unknown/release/meshguard.wasm and the default build's
# module and artifacts are left alone. The default (unset or `meshguard-crypto`) is meshguard's own.
# The module uses wasm SIMD128 (`-C target-feature=+simd128`: RSA's column sums on SIMD lanes,
# docs/performance.md; both pinned Envoys' V8 and wasmtime run it). MESHGUARD_WASM_SIMD=off builds
# a module without it, for a VM that refuses SIMD (such a VM refuses the whole module at load: a
# module cannot detect it at run time), into `<target dir>/nosimd/`.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
CRATE=${MESHGUARD_WASM_CRATE:-meshguard}
CARGO_EXTRA=()
case "${MESHGUARD_CRYPTO:-meshguard-crypto}" in
  meshguard-crypto|"") ;;
  rustcrypto)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/rustcrypto"
    CARGO_EXTRA+=(--features meshguard/rustcrypto)
    echo "build-wasm: crypto provider RustCrypto (into $CARGO_TARGET_DIR)" >&2
    ;;
  *) echo "build-wasm: unknown MESHGUARD_CRYPTO '$MESHGUARD_CRYPTO' (meshguard-crypto|rustcrypto)" >&2; exit 2 ;;
esac
case "${MESHGUARD_WASM_SIMD:-on}" in
  on|1|yes) CARGO_EXTRA+=(--config 'target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128"]'); SIMD=on ;;
  off|0|no)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/nosimd"
    echo "build-wasm: without SIMD128 (into $CARGO_TARGET_DIR)" >&2
    SIMD=off
    ;;
  *) echo "build-wasm: unknown MESHGUARD_WASM_SIMD '$MESHGUARD_WASM_SIMD' (on|off)" >&2; exit 2 ;;
esac
# Honour CARGO_TARGET_DIR (parallel builds use their own target directories).
OUT="${CARGO_TARGET_DIR:-target}/$TARGET/release/${CRATE//-/_}.wasm"
ADD_TIMEOUT=${MESHGUARD_RUSTUP_TIMEOUT:-240}
APT_TIMEOUT=${MESHGUARD_APT_TIMEOUT:-240}
# -Oz: the smallest pass, ~14 % fewer bytes at the same speed in V8 (docs/performance.md,
# "wasm-opt"). The features are the ones rustc's wasm32 target emits (its target_features
# section, which the stripped release build drops); binaryen refuses the module without them.
WASM_OPT_ARGS=(-Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int)
[ "$SIMD" = on ] && WASM_OPT_ARGS+=(--enable-simd)

if [ "${MESHGUARD_WASM_NAMES:-0}" = 1 ]; then
  # A package override's `strip` wins over the profile's (and CARGO_PROFILE_RELEASE_STRIP).
  CARGO_EXTRA+=(--config 'profile.release.package.meshguard.strip="debuginfo"')
  MESHGUARD_WASM_OPT=off
fi

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

build_rustup() {
  cargo build --release --target "$TARGET" -p "$CRATE" "${CARGO_EXTRA[@]}"
}

build_debian() {
  if ! [ -x /usr/bin/cargo ] || ! [ -d /usr/lib/rustlib/src/rust/library ] || ! [ -x /usr/lib/llvm-19/bin/wasm-ld ]; then
    echo "build-wasm: installing Debian's rustc-web cargo-web rust-web-src lld-19" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq rustc-web cargo-web rust-web-src lld-19 >/dev/null
  fi
  # Use Debian's rustc explicitly: a rustup proxy earlier on PATH has no wasm32 std.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
    /usr/bin/cargo build --release --target "$TARGET" -Zbuild-std=std,panic_abort -p "$CRATE" "${CARGO_EXTRA[@]}"
}

# wasm-opt on the freshly built module, in place. Cargo links its pristine output over $OUT on
# every build, so the optimised module is kept beside it with the SHA-256 of its input: an
# unchanged build reuses it instead of running wasm-opt again (6-12 s).
wasm_opt() {
  local cached="$OUT.wasm-opt" input
  if [ "$CRATE" != meshguard ]; then
    return 0
  fi
  case "${MESHGUARD_WASM_OPT:-on}" in
    off|0|no) echo "build-wasm: wasm-opt skipped (MESHGUARD_WASM_OPT=${MESHGUARD_WASM_OPT})" >&2; return 0 ;;
  esac
  input=$(sha256sum <"$OUT")
  if [ -s "$cached" ] && [ "$input" = "$(cat "$cached.input" 2>/dev/null)" ]; then
    cp "$cached" "$OUT.opt" && mv "$OUT.opt" "$OUT"
    echo "build-wasm: wasm-opt ${WASM_OPT_ARGS[0]}: unchanged module, optimised copy reused" >&2
    return 0
  fi
  if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: installing Debian's binaryen (wasm-opt)" >&2
    DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" \
      bash -c 'apt-get update -qq >/dev/null && apt-get install -y -qq binaryen >/dev/null' >&2 || true
  fi
  if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: WARNING: wasm-opt unavailable (binaryen could not be installed): $OUT is NOT optimised (~12 % bigger, same behaviour)" >&2
    return 0
  fi
  local before
  before=$(stat -c %s "$OUT")
  if wasm-opt "${WASM_OPT_ARGS[@]}" "$OUT" -o "$OUT.opt"; then
    cp "$OUT.opt" "$cached"
    echo "$input" >"$cached.input"
    mv "$OUT.opt" "$OUT"
    echo "build-wasm: wasm-opt ${WASM_OPT_ARGS[0]}: $before -> $(stat -c %s "$OUT") bytes" >&2
  else
    rm -f "$OUT.opt"
    echo "build-wasm: WARNING: wasm-opt failed: $OUT is NOT optimised" >&2
  fi
}

route=${MESHGUARD_WASM_ROUTE:-}
if [ -z "$route" ]; then
  if have_rustup_target; then
    route=rustup
  elif command -v rustup >/dev/null 2>&1 && timeout "$ADD_TIMEOUT" rustup target add "$TARGET" >&2 && have_rustup_target; then
    route=rustup-add
  else
    route=debian
  fi
fi

echo "build-wasm: route=$route" >&2
case "$route" in
  rustup|rustup-add) build_rustup ;;
  debian) build_debian ;;
  *) echo "build-wasm: unknown route '$route' (rustup|debian)" >&2; exit 2 ;;
esac

test -s "$OUT" || { echo "build-wasm: $OUT was not produced" >&2; exit 1; }
wasm_opt
echo "build-wasm: $OUT ($(stat -c %s "$OUT") bytes) via route=$route" >&2
