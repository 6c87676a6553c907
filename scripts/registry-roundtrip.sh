#!/usr/bin/env bash
# The OCI image through a real registry (`make oci-registry`, part of `make test`):
#   1. starts Debian's docker-registry (CNCF distribution) on 127.0.0.1:<free port>, storage in a
#      temp dir;
#   2. pushes with skopeo both formats of `meshguard oci`: compat (the layout `make oci` writes)
#      and artifact (written here with --format artifact), plus the OCI archive `make oci` writes;
#   3. checks the registry serves the manifest bytes unchanged (digest = the one the CLI printed,
#      also in the Docker-Content-Digest header), pulls each image back into a new OCI layout,
#      checks every blob (manifest, config, the Wasm layer) is byte-identical to the one pushed,
#      and runs `meshguard oci-verify` on the pulled layouts.
# The registry is always stopped and the temp dir removed. Takes a few seconds.
# The tools are installed by scripts/install-registry-tools.sh; only if they cannot be installed
# does this print "SKIPPED: ..." and exit 0 (MESHGUARD_REGISTRY_REQUIRED=1 makes that a failure).
#   scripts/registry-roundtrip.sh LAYOUT TAG WASM [ARCHIVE]
# The CLI: $MESHGUARD_CLI if set (a path to the meshguard binary), else `cargo run -p meshguard-cli`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 3 ] || { echo "usage: $0 LAYOUT TAG WASM [ARCHIVE]" >&2; exit 2; }
LAYOUT=$1 TAG=$2 WASM=$3 ARCHIVE=${4:-}
say() { echo "oci-registry: $*"; }
fail() { echo "oci-registry: FAILED: $*" >&2; exit 1; }

if ! ./scripts/install-registry-tools.sh; then
  if [ "${MESHGUARD_REGISTRY_REQUIRED:-0}" = 1 ]; then
    fail "docker-registry/skopeo cannot be installed and MESHGUARD_REGISTRY_REQUIRED=1"
  fi
  echo "################################################################################"
  echo "oci-registry: SKIPPED: docker-registry/skopeo cannot be installed on this machine"
  echo "oci-registry: SKIPPED: the real-registry round trip of the OCI image did NOT run"
  echo "################################################################################"
  exit 0
fi

if [ -n "${MESHGUARD_CLI:-}" ]; then CLI=("$MESHGUARD_CLI"); else CLI=("${CARGO:-cargo}" run -q -p meshguard-cli --); fi
for f in "$LAYOUT/index.json" "$WASM"; do [ -f "$f" ] || fail "$f missing (run make oci)"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshguard-registry.XXXXXX")
REG_PID=
cleanup() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# skopeo: our own trust policy (no signatures for a loopback registry), bounded in time.
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$TMP/policy.json"
sk() { timeout 60 skopeo --policy "$TMP/policy.json" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
digest_of() { grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1; }   # first digest in stdin

# --- the registry on a free loopback port (retry if the port is taken in between) ----------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for attempt in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 40000))
  port_open "$PORT" && continue
  mkdir -p "$TMP/storage"
  cat >"$TMP/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $TMP/storage
http:
  addr: 127.0.0.1:$PORT
EOF
  docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 1 100); do
    port_open "$PORT" && break
    kill -0 "$REG_PID" 2>/dev/null || break
    sleep 0.1
  done
  port_open "$PORT" && break
  kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=
done
[ -n "$REG_PID" ] || { cat "$TMP/registry.log" >&2 || true; fail "docker-registry did not start"; }
REG=127.0.0.1:$PORT
say "docker-registry listening on $REG (pid $REG_PID)"

# --- the two formats, with the digests and module hash the CLI prints ----------------------
WASM_SHA=$(sha "$WASM")
out=$("${CLI[@]}" oci-verify "$LAYOUT") || fail "oci-verify $LAYOUT: $out"
COMPAT_DIGEST=$(digest_of <<<"$out")
grep -q "Compat format" <<<"$out" || fail "$LAYOUT is not the compat format: $out"
out=$("${CLI[@]}" oci --wasm "$WASM" --out "$TMP/artifact" --tag "$TAG" --format artifact) \
  || fail "meshguard oci --format artifact: $out"
ARTIFACT_DIGEST=$(grep 'manifest digest' <<<"$out" | digest_of)
[ -n "$COMPAT_DIGEST" ] && [ -n "$ARTIFACT_DIGEST" ] || fail "no manifest digest from the CLI"
say "module sha256:$WASM_SHA; compat manifest $COMPAT_DIGEST; artifact manifest $ARTIFACT_DIGEST"

# Every blob of layout $1 is in layout $2 with the same bytes, and nothing else is.
same_blobs() {
  local a=$1/blobs/sha256 b=$2/blobs/sha256 f
  [ "$(ls "$a")" = "$(ls "$b")" ] || { diff <(ls "$a") <(ls "$b") >&2 || true; return 1; }
  for f in "$a"/*; do cmp -s "$f" "$b/${f##*/}" || { echo "blob ${f##*/} differs" >&2; return 1; }; done
}

roundtrip() {
  local name=$1 src=$2 digest=$3 ref=$REG/meshguard:$4 pulled=$TMP/pulled-$1 got hdr=
  sk copy -q --preserve-digests --dest-tls-verify=false "$src" "docker://$ref" \
    || fail "$name: skopeo copy $src -> docker://$ref"
  sk inspect --raw --tls-verify=false "docker://$ref" >"$TMP/$name.manifest" \
    || fail "$name: skopeo inspect --raw docker://$ref"
  got=sha256:$(sha "$TMP/$name.manifest")
  [ "$got" = "$digest" ] || fail "$name: registry serves manifest $got, the CLI printed $digest"
  if command -v curl >/dev/null 2>&1; then
    hdr=$(curl -fsS -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "http://$REG/v2/meshguard/manifests/$4" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p') \
      || fail "$name: HEAD /v2/meshguard/manifests/$4"
    [ "$hdr" = "$digest" ] || fail "$name: Docker-Content-Digest '$hdr', expected $digest"
  fi
  say "$name: pushed $src -> $ref, registry digest $got${hdr:+ (also its Docker-Content-Digest)}"
  [ "${src%%:*}" = oci ] || return 0   # the archive: digest only (its blobs are the compat layout's)
  sk copy -q --preserve-digests --src-tls-verify=false "docker://$ref" "oci:$pulled:$TAG" \
    || fail "$name: skopeo copy docker://$ref -> oci:$pulled:$TAG"
  local lay=${src#oci:}; lay=${lay%:*}
  same_blobs "$lay" "$pulled" || fail "$name: pulled blobs differ from the pushed ones"
  out=$("${CLI[@]}" oci-verify "$pulled") || fail "$name: oci-verify of the pulled layout: $out"
  [ "$(digest_of <<<"$out")" = "$digest" ] || fail "$name: pulled layout manifest != $digest: $out"
  grep -q "(sha256:$WASM_SHA)" <<<"$out" || fail "$name: pulled module is not $WASM: $out"
  say "$name: pulled back into $pulled, blobs byte-identical; $out"
}

roundtrip compat "oci:$LAYOUT:$TAG" "$COMPAT_DIGEST" "$TAG"
roundtrip artifact "oci:$TMP/artifact:$TAG" "$ARTIFACT_DIGEST" "$TAG-artifact"
if [ -n "$ARCHIVE" ]; then
  [ -f "$ARCHIVE" ] || fail "$ARCHIVE missing (run make oci)"
  roundtrip archive "oci-archive:$ARCHIVE" "$COMPAT_DIGEST" "$TAG-archive"
fi
say "ok: both formats round-tripped through docker-registry $REG with unchanged digests and bytes"
