#!/usr/bin/env bash
# Regenerates the client certificates of filter/src/peer.rs's tests (openssl; self-signed, no
# private keys kept: only the certificates' SANs and subjects are read). Run from this folder.
set -euo pipefail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cert() { # name subject san
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" \
    -days 36500 -subj "$2" ${3:+-addext "subjectAltName=$3"} -out "$1.pem" 2>/dev/null
}
cert two-uris "/CN=two-uris" "URI:spiffe://cluster.local/ns/a/sa/allow,URI:spiffe://cluster.local/ns/a/sa/deny,DNS:two.example.com"
cert dns-only "/CN=dns-only/O=meshguard" "DNS:client.example.com,DNS:alt.example.com"
cert no-san "/CN=no-san"
