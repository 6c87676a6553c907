#!/usr/bin/env bash
# Generates the demo PKI that envoy/gateway.yaml, envoy/mesh.yaml and envoy/minimal-https.yaml
# refer to, into envoy/certs/ (git-ignored): a CA, server certificates, and a client certificate
# carrying a SPIFFE URI SAN. Idempotent (keeps existing files unless FORCE=1). Demo use only.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=envoy/certs
mkdir -p "$OUT"
if [ -s "$OUT/ca.pem" ] && [ -s "$OUT/order-service.pem" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "gen-demo-certs: $OUT already populated" >&2
  exit 0
fi
command -v openssl >/dev/null || { echo "gen-demo-certs: openssl is required" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=meshguard demo CA" -keyout "$OUT/ca-key.pem" -out "$OUT/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# leaf NAME SUBJECT_ALT_NAME EXTENDED_KEY_USAGE
leaf() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$OUT/$1-key.pem" -out "$tmp/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' "$2" "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca-key.pem" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days 825 -extfile "$tmp/$1.ext" -out "$OUT/$1.pem" 2>/dev/null
}
leaf my-app      "DNS:my-app.example.com,DNS:localhost,IP:127.0.0.1" serverAuth
leaf payments    "URI:spiffe://cluster.local/ns/payments/sa/payments-api,DNS:localhost,IP:127.0.0.1" "serverAuth,clientAuth"
leaf order-service "URI:spiffe://cluster.local/ns/order/sa/order-service" clientAuth
chmod 600 "$OUT"/*-key.pem
echo "gen-demo-certs: wrote $OUT/{ca,my-app,payments,order-service}.pem (+ keys)" >&2
