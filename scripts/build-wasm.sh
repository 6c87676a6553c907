#!/usr/bin/env bash
# Builds target/wasm32-unknown-unknown/release/meshguard.wasm by the first route that works:
#   1. "rustup":  the wasm32 std is already installed for the active rustup toolchain;
#   2. "rustup-add": `rustup target add wasm32-unknown-unknown` (bounded by a time limit);
#   3. "debian":  Debian's rustc-web/cargo-web/rust-web-src + lld-19, building std from source
#                 with -Zbuild-std (works on a fresh machine with no rustup target at all).
# Force a route with MESHGUARD_WASM_ROUTE=rustup|debian (CI uses the default choice).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
CRATE=${MESHGUARD_WASM_CRATE:-meshguard}
# Honour CARGO_TARGET_DIR (parallel builds use their own target directories).
OUT="${CARGO_TARGET_DIR:-target}/$TARGET/release/${CRATE//-/_}.wasm"
ADD_TIMEOUT=${MESHGUARD_RUSTUP_TIMEOUT:-240}

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

build_rustup() {
  cargo build --release --target "$TARGET" -p "$CRATE"
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
    /usr/bin/cargo build --release --target "$TARGET" -Zbuild-std=std,panic_abort -p "$CRATE"
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
echo "build-wasm: $OUT ($(stat -c %s "$OUT") bytes) via route=$route" >&2
