#!/usr/bin/env bash
# Installs Debian's `docker-registry` (the CNCF distribution registry) and `skopeo`, which
# `make oci-registry` (scripts/registry-roundtrip.sh) needs, if they are missing. Idempotent: when
# both are on PATH it only prints their versions.
#   exit 0  both tools present (installed now or before)
#   exit 3  they cannot be installed here (no apt-get, not root and no password-less sudo, or the
#           install failed); the reason is on stderr. The caller decides whether that is a skip.
# apt-get is bounded by MESHGUARD_APT_TIMEOUT seconds per step (default 300); ~15 s on a fresh
# Debian 12 machine.
set -euo pipefail

have() { command -v docker-registry >/dev/null 2>&1 && command -v skopeo >/dev/null 2>&1; }

if ! have; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "install-registry-tools: docker-registry/skopeo missing and there is no apt-get" >&2; exit 3; }
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-registry-tools: docker-registry/skopeo missing; not root and no password-less sudo" >&2
    exit 3
  fi
  T=${MESHGUARD_APT_TIMEOUT:-300}
  apt() { timeout "$T" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
  echo "install-registry-tools: installing docker-registry skopeo with apt-get" >&2
  # Try with the package lists as they are first; refresh them only if that fails.
  if ! apt install -y -qq --no-install-recommends docker-registry skopeo >/dev/null 2>&1; then
    apt update -qq >&2 || true
    apt install -y -qq --no-install-recommends docker-registry skopeo >/dev/null || {
      echo "install-registry-tools: apt-get install docker-registry skopeo failed" >&2; exit 3; }
  fi
  have || { echo "install-registry-tools: installed, but docker-registry/skopeo not on PATH" >&2; exit 3; }
fi

echo "install-registry-tools: $(docker-registry --version 2>&1 | head -n 1); $(skopeo --version)" >&2
