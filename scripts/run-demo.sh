#!/usr/bin/env bash
# `make run`: the local demo. Builds the wasm, installs the pinned Envoy (.tools/), starts on
# loopback the demo IdP (:18080), the echo upstream (:18081) and Envoy with meshguard (:10000,
# admin :9901), prints curl lines to try, and runs until Ctrl-C; then stops everything it started.
# Ports: MESHGUARD_DEMO_{ENVOY,ADMIN,IDP,ECHO}_PORT. Logs: .tools/demo/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_PORT=${MESHGUARD_DEMO_ENVOY_PORT:-10000}
ADMIN_PORT=${MESHGUARD_DEMO_ADMIN_PORT:-9901}
IDP_PORT=${MESHGUARD_DEMO_IDP_PORT:-18080}
ECHO_PORT=${MESHGUARD_DEMO_ECHO_PORT:-18081}
RUN=.tools/demo
mkdir -p "$RUN"

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }

if ! command -v curl >/dev/null 2>&1; then  # readiness polls and the printed lines use curl
  echo "run-demo: installing curl" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$ENVOY_PORT" "$ADMIN_PORT" "$IDP_PORT" "$ECHO_PORT"; do
  if port_busy "$p"; then
    echo "run-demo: 127.0.0.1:$p is already in use (a demo still running? set MESHGUARD_DEMO_*_PORT)" >&2
    exit 1
  fi
done

say "== building meshguard.wasm"
./scripts/build-wasm.sh
say "== installing Envoy (pinned, into .tools/)"
ENVOY=$(./scripts/install-envoy.sh)
say "== building the demo IdP"
cargo build -q -p meshguard-demo-idp
IDP_BIN=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/meshguard-demo-idp

PIDS=()
cleanup() {
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    say "== stopping (pids ${PIDS[*]})"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive=0
      for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ISSUER="http://127.0.0.1:$IDP_PORT"
"$IDP_BIN" idp --listen "127.0.0.1:$IDP_PORT" --issuer "$ISSUER" >"$RUN/idp.log" 2>&1 &
PIDS+=($!)
"$IDP_BIN" echo --listen "127.0.0.1:$ECHO_PORT" >"$RUN/echo.log" 2>&1 &
PIDS+=($!)

sed -e "s/port_value: 10000/port_value: $ENVOY_PORT/" -e "s/port_value: 9901/port_value: $ADMIN_PORT/" \
    -e "s/18080/$IDP_PORT/g" -e "s/port_value: 18081/port_value: $ECHO_PORT/" envoy/demo.yaml > "$RUN/envoy.yaml"
"$ENVOY" -c "$RUN/envoy.yaml" --concurrency 2 --disable-hot-restart -l info --log-path "$RUN/envoy.log" \
  >/dev/null 2>&1 &
PIDS+=($!)

# Bounded readiness polls.
wait_for() { # URL WHAT
  for _ in $(seq 300); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "run-demo: $2 exited; see $RUN/" >&2; tail -n 20 "$RUN"/*.log >&2; exit 1; }; done
    sleep 0.1
  done
  echo "run-demo: $2 not ready after 30 s; see $RUN/" >&2; exit 1
}
wait_for "http://127.0.0.1:$IDP_PORT/stats" "demo IdP"
wait_for "http://127.0.0.1:$ECHO_PORT/" "echo upstream"
wait_for "http://127.0.0.1:$ADMIN_PORT/ready" "Envoy"

E="http://127.0.0.1:$ENVOY_PORT"
T="http://127.0.0.1:$IDP_PORT/token"
cat <<EOT

meshguard demo is running (Envoy $("$ENVOY" --version 2>/dev/null | grep -o '/[0-9.]*/' | tr -d / | head -1), 2 workers). Paste these; Ctrl-C stops everything.

# 1. valid token → 200; the echo shows x-user-id: alice, x-user-email, and no authorization header
curl -s -H "Authorization: Bearer \$(curl -s '$T?sub=alice&aud=api.demo&email=alice@example.com')" $E/api/hello

# 2. expired token → 401, WWW-Authenticate: Bearer realm="$E/api/hello", error="invalid_token", error_description="Jwt is expired"
curl -si -H "Authorization: Bearer \$(curl -s '$T?sub=alice&aud=api.demo&exp_in=-3600')" $E/api/hello

# 3. no token on a protected path → 403 "RBAC: access denied"   (and /public/ → 200)
curl -si $E/api/hello
curl -s  $E/public/hello

# 4. spoofed x-user-id without a token → 200 on /public/, and the echo shows no x-user-id
curl -s -H 'x-user-id: admin' $E/public/hello

# 5. wrong audience → 401, error_description="Audiences in Jwt are not allowed"
curl -si -H "Authorization: Bearer \$(curl -s '$T?sub=alice&aud=someone-else')" $E/api/hello

# more: token in a cookie (→ 200); EdDSA / RS256 tokens; key rotation (new tokens verify after
# meshguard refetches on the unknown kid); JWKS outage; metrics
curl -s --cookie "demo_token=\$(curl -s '$T?sub=bob&aud=api.demo')" $E/api/hello
curl -s -H "Authorization: Bearer \$(curl -s '$T?alg=EdDSA&aud=api.demo')" $E/api/hello
curl -s -X POST http://127.0.0.1:$IDP_PORT/rotate
curl -s -X POST 'http://127.0.0.1:$IDP_PORT/mode?jwks=500'     # then ?jwks=ok
curl -s http://127.0.0.1:$IDP_PORT/stats                       # JWKS fetch count
curl -s 'http://127.0.0.1:$ADMIN_PORT/stats?filter=wasmcustom'

EOT

# Run until Ctrl-C, or until one of the three exits.
set +e
wait -n "${PIDS[@]}"
echo "run-demo: stopped (Ctrl-C, or one of the processes exited); logs in $RUN/" >&2
exit 1
