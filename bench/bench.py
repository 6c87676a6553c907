#!/usr/bin/env python3
"""meshguard's side-by-side benchmark (`make bench`; see bench/README.md).

    bench/bench.py macro [--duration S] [--rounds N] [--connections C] [--quick]
    bench/bench.py report-micro <out-dir> <opt-levels...>
    bench/bench.py profile [--targets meshguard,native] [--mix cold] [--alg RS256]

macro: Envoys on loopback with the same listener and route (a direct 200 response, so only
the filters differ): `pass` (no auth filter), `native` (Envoy's jwt_authn with jwt_cache_config),
`meshguard` (the wasm filter, V8), `meshguard-rc` (the same, the module built with the RustCrypto
provider) and reference floors. Same inline JWKS, same tokens. wrk drives each with the steady mix
(one token reused) and the cold mix (N distinct tokens, N above every cache size), for ES256 and
RS256, in interleaved rounds (pass, native, meshguard, pass, ...) so drift (thermal, other
processes) hits all alike; then the DPoP mix (RFC 9449: one bound ES256 token, a fresh proof per
request) on `meshguard-dpop` / `meshguard-rc-dpop`, with `pass` as its floor. Each run also
records the Envoy process's CPU time per request. Writes bench/results/macro.{json,md,svg}.

profile: where an Envoy worker's CPU goes per request under one mix, sampled with `perf record`
(module code compiled by V8, Envoy with V8's runtime, the kernel), and which of the module's
instructions are hottest, read back from the running worker. Writes bench/results/profile.md.

Only loopback; every load run is bounded by --duration. Nothing here asserts a number.
"""

import argparse
import base64
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://bench.meshguard.test"
AUDIENCE = "api.bench.test"
TARGETS = os.environ.get(
    "MESHGUARD_BENCH_TARGETS",
    "pass,native,meshguard,meshguard-rc,floor,abi-read,abi-memo,abi-noop,meshguard-dpop,meshguard-rc-dpop",
).split(",")
# The abi floors (bench/abi-floor) verify nothing: they run in the steady mixes only.
STEADY_ONLY = {"abi-read", "abi-memo", "abi-noop"}
# The RustCrypto-provider module (MESHGUARD_CRYPTO=rustcrypto ./scripts/build-wasm.sh).
RC_TARGETS = {"meshguard-rc", "meshguard-rc-dpop"}
# meshguard with `dpop.required`: they run the DPoP mix only (a bearer token is refused there),
# and the DPoP mix runs on them and on `pass` only (Envoy's jwt_authn has no DPoP).
DPOP_TARGETS = {"meshguard-dpop", "meshguard-rc-dpop"}
DPOP_MIX_TARGETS = DPOP_TARGETS | {"pass"}
# Their bearer counterparts (the steady ES256 row a DPoP row is compared with).
DPOP_BEARER = {"meshguard-dpop": "meshguard", "meshguard-rc-dpop": "meshguard-rc"}
ALGS = ["ES256", "RS256"]
MIXES = [("steady", "ES256"), ("steady", "RS256"), ("cold", "ES256"), ("cold", "RS256"),
         ("dpop", "ES256")]
BASE_PORT = int(os.environ.get("MESHGUARD_BENCH_PORT", "19100"))
CACHE_ENTRIES = 1024
DPOP_REPLAY_ENTRIES = 1 << 20
DPOP_MAX_AGE = 3600
# The DPoP mix's requests: wrk sends this Host (plaintext http, so :scheme is http) and this path;
# every proof's `htu` is http://DPOP_HOST/bench. One Host for every target lets one list of proofs
# serve every DPoP Envoy of a round (each has its own replay cache).
DPOP_HOST = "api.bench.test"
DPOP_HTU = f"http://{DPOP_HOST}/bench"
# Fixed P-256 scalars: the benchmark issuer's ES256 key (tests/support `p256_key_from(0x11)`, the
# key `micro mint` signs with) and the DPoP client's key.
ISSUER_P256_SCALAR = 0x11
CLIENT_P256_SCALAR = 0x2A


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def loadavg():
    return os.getloadavg()[0]


# ---------------------------------------------------------------------------------------------
# tools and inputs


def ensure_tools(args):
    envoy = run(["scripts/install-envoy.sh"], capture_output=True, text=True).stdout.strip()
    if not shutil.which("wrk"):
        log("installing wrk (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        run(["apt-get", "install", "-y", "-qq", "wrk"], env=env)
    # Where `make wasm` puts it: CARGO_TARGET_DIR honoured, as by scripts/build-wasm.sh.
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    wasm = Path(os.environ.get("MESHGUARD_BENCH_WASM",
                               target / "wasm32-unknown-unknown/release/meshguard.wasm"))
    if not args.no_build and "MESHGUARD_BENCH_WASM" not in os.environ:
        run(["./scripts/build-wasm.sh"])
    if {"meshguard", "meshguard-dpop"} & set(TARGETS) and not wasm.exists():
        sys.exit(f"bench: {wasm} missing (make wasm)")
    wasm_rc = Path(os.environ.get("MESHGUARD_BENCH_WASM_RC",
                                  target / "rustcrypto/wasm32-unknown-unknown/release/meshguard.wasm"))
    if RC_TARGETS & set(TARGETS):
        if not args.no_build and "MESHGUARD_BENCH_WASM_RC" not in os.environ:
            run(["./scripts/build-wasm.sh"], env=dict(os.environ, MESHGUARD_CRYPTO="rustcrypto"))
        if not wasm_rc.exists():
            skipped = [t for t in TARGETS if t in RC_TARGETS]
            for t in skipped:
                TARGETS.remove(t)
            log("*" * 78)
            log(f"SKIPPING {', '.join(skipped)}: {wasm_rc} missing "
                "(MESHGUARD_CRYPTO=rustcrypto ./scripts/build-wasm.sh, or run without --no-build)")
            log("*" * 78)
    if len(TARGETS) > 10:
        sys.exit("bench: at most 10 targets (admin ports are the listener ports + 10)")
    if STEADY_ONLY & set(TARGETS):
        env = dict(os.environ, MESHGUARD_WASM_CRATE="abi-floor")
        env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target"))
        run(["./scripts/build-wasm.sh"], env=env)
    return envoy, wasm, wasm_rc


def abi_floor_wasm():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / \
        "wasm32-unknown-unknown/release/abi_floor.wasm"


def mint(out, n, name="tokens"):
    """Tokens valid for 2 h; re-minted when older than 1 h or when N changed."""
    tokens = out / name
    stamp = tokens / "stamp.json"
    if stamp.exists():
        s = json.loads(stamp.read_text())
        if s.get("n") == n and time.time() - s.get("at", 0) < 3600:
            return tokens
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target/bench"))
    run(["cargo", "build", "--quiet", "--release", "--manifest-path", "bench/micro/Cargo.toml",
         "--bin", "micro"], env=env)
    log(f"minting 1 steady + {n} cold tokens per algorithm")
    run([str(Path(env["CARGO_TARGET_DIR"]) / "release/micro"), "mint", str(tokens), str(n)])
    stamp.write_text(json.dumps({"n": n, "at": time.time()}))
    return tokens


# ---------------------------------------------------------------------------------------------
# DPoP (RFC 9449) inputs: a bound access token and fresh proofs, by Python `cryptography`


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def p256_key(scalar_byte):
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.derive_private_key(int.from_bytes(bytes([scalar_byte]) * 32, "big"), ec.SECP256R1())


def es256_sign(key, signing_input):
    """A JWS ES256 signature: raw r || s (64 bytes), base64url without padding."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def p256_jwk(key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
            "y": b64u(n.y.to_bytes(32, "big"))}


def dpop_inputs(tokens):
    """(access token, proof header segment, ath): the steady ES256 token's claims plus
    `cnf.jkt` (RFC 7638 thumbprint of the client key), re-signed by the issuer's ES256 key."""
    issuer, client = p256_key(ISSUER_P256_SCALAR), p256_key(CLIENT_P256_SCALAR)
    ijwk = p256_jwk(issuer)
    keys = json.loads((tokens / "jwks.json").read_text())["keys"]
    if not any(k.get("x") == ijwk["x"] and k.get("y") == ijwk["y"] for k in keys):
        sys.exit("bench: the benchmark's ES256 key is not the P-256 scalar 0x11…: cannot mint "
                 "the DPoP access token")
    header, payload, _ = (tokens / "ES256-steady.txt").read_text().strip().split(".")
    claims = json.loads(b64u_decode(payload))
    cjwk = p256_jwk(client)
    canonical = json.dumps({m: cjwk[m] for m in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    claims["cnf"] = {"jkt": b64u(hashlib.sha256(canonical.encode()).digest())}
    body = header + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    token = body + "." + es256_sign(issuer, body.encode())
    proof_header = b64u(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": cjwk},
                                   separators=(",", ":")).encode())
    return token, proof_header, b64u(hashlib.sha256(token.encode("ascii")).digest())


def _proof_chunk(job):
    proof_header, ath, prefix, iat, start, count = job
    client = p256_key(CLIENT_P256_SCALAR)
    out = []
    for i in range(start, start + count):
        payload = b64u(json.dumps({"jti": f"{prefix}-{i}", "htm": "GET", "htu": DPOP_HTU,
                                   "iat": iat, "ath": ath}, separators=(",", ":")).encode())
        body = proof_header + "." + payload
        out.append(body + "." + es256_sign(client, body.encode()))
    return out


def dpop_proofs(inputs, n, path=None):
    """n proofs with distinct `jti`s (a random prefix: never one sent before), `iat` now; written
    one per line to `path` when given."""
    _, proof_header, ath = inputs
    prefix, iat = secrets.token_hex(8), int(time.time())
    workers = max(1, min(os.cpu_count() or 1, 4)) if n >= 2000 else 1
    step = math.ceil(n / workers)
    jobs = [(proof_header, ath, prefix, iat, k, min(step, n - k)) for k in range(0, n, step)]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            chunks = pool.map(_proof_chunk, jobs)
    else:
        chunks = [_proof_chunk(j) for j in jobs]
    proofs = [p for c in chunks for p in c]
    if path:
        path.write_text("\n".join(proofs) + "\n")
    return proofs


# ---------------------------------------------------------------------------------------------
# Envoy configurations


def listener(port, filters):
    return f"""
static_resources:
  listeners:
  - name: bench
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok\\n" }} }}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def admin(port):
    return f"admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}\n"


def configs(jwks, wasm, wasm_rc):
    native = f"""          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                bench:
                  issuer: {ISSUER}
                  audiences: [{AUDIENCE}]
                  local_jwks: {{ inline_string: {json.dumps(jwks)} }}
                  jwt_cache_config: {{ jwt_cache_size: {CACHE_ENTRIES} }}
              rules:
              - match: {{ prefix: "/" }}
                requires: {{ provider_name: bench }}"""
    plugin = {"jwtRules": [{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks}]}
    if os.environ.get("MESHGUARD_BENCH_CACHE_KNOB", "1") == "1":
        plugin["tokenCacheEntries"] = CACHE_ENTRIES
    # The same rule, DPoP required (RFC 9449; the rule reads `Authorization: DPoP` by itself).
    plugin_dpop = json.loads(json.dumps(plugin))
    plugin_dpop["jwtRules"][0]["dpop"] = {"required": True, "maxAgeSeconds": DPOP_MAX_AGE}
    plugin_dpop["dpopReplayCacheEntries"] = DPOP_REPLAY_ENTRIES
    def wasm_filter(plugin, module=wasm, vm="meshguard"):
        value = plugin if isinstance(plugin, str) else json.dumps(plugin)
        return f"""          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {vm}
                root_id: {vm}
                vm_config:
                  vm_id: {vm}
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {json.dumps(str(module))} }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {json.dumps(value)}"""
    # floor: the same module with no rules and no policies — it reads nothing and decides
    # nothing, so it measures what any proxy-wasm filter costs on this Envoy (the ABI's floor).
    # abi-read / abi-noop (bench/abi-floor): the least any proxy-wasm JWT filter can do per
    # request (read the token locations and the clock, remove the token header), and the least
    # any proxy-wasm filter can do (nothing, two VM entries), without an SDK. abi-memo: abi-read
    # plus the least meshguard's hit path adds (the `access-control-request-method` read, one
    # cache hit).
    floor = abi_floor_wasm()
    return {"pass": "", "native": native, "meshguard": wasm_filter(plugin),
            "meshguard-rc": wasm_filter(plugin, wasm_rc),
            "meshguard-dpop": wasm_filter(plugin_dpop),
            "meshguard-rc-dpop": wasm_filter(plugin_dpop, wasm_rc),
            "floor": wasm_filter({}),
            "abi-read": wasm_filter("read", floor, "abi_floor"),
            "abi-memo": wasm_filter("memo", floor, "abi_floor"),
            "abi-noop": wasm_filter("noop", floor, "abi_floor")}


def write_configs(out, jwks, wasm, wasm_rc):
    paths = {}
    filters = configs(jwks, wasm, wasm_rc)
    for k, name in enumerate(TARGETS):
        text = admin(BASE_PORT + 10 + k) + listener(BASE_PORT + k, filters[name])
        path = out / "envoy" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def port(name):
    return BASE_PORT + TARGETS.index(name)


def admin_port(name):
    return BASE_PORT + 10 + TARGETS.index(name)


# ---------------------------------------------------------------------------------------------
# Envoy processes


def get(p, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def start_envoys(envoy, paths, out, concurrency):
    procs = {}
    for name, path in paths.items():
        logf = open(out / "envoy" / f"{name}.log", "w")
        procs[name] = subprocess.Popen(
            [envoy, "-c", str(path), "--concurrency", str(concurrency), "--disable-hot-restart",
             "-l", "warning", "--log-format", "[%Y-%m-%d %T.%e][%l] %v"],
            stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.time() + 60
    for name in paths:
        while True:
            if procs[name].poll() is not None:
                stop_envoys(procs)
                sys.exit(f"bench: envoy {name} exited; see {out}/envoy/{name}.log")
            try:
                if get(admin_port(name), "/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                stop_envoys(procs)
                sys.exit(f"bench: envoy {name} not ready in 60 s; see {out}/envoy/{name}.log")
            time.sleep(0.2)
    return procs


def stop_envoys(procs):
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def sanity(tokens, dpop):
    """Every Envoy answers 200 to a good token; those that authenticate answer 401 to a bad
    one (a benchmark of a filter that is not running would be worthless). The DPoP Envoys answer
    200 to a bound token with a fresh proof, 401 to the same proof again (a replay) and 401 to
    the token as a bearer token."""
    for alg in ALGS:
        tok = (tokens / f"{alg}-steady.txt").read_text().strip()
        bad = tok[:-8] + ("AAAAAAAA" if not tok.endswith("AAAAAAAA") else "BBBBBBBB")
        for name in TARGETS:
            if name in DPOP_TARGETS:
                continue
            status, body = get(port(name), "/bench", {"Authorization": f"Bearer {tok}"})
            if status != 200:
                sys.exit(f"bench: {name} answered {status} to a valid {alg} token: {body[:200]}")
            status, _ = get(port(name), "/bench", {"Authorization": f"Bearer {bad}"})
            want = 401 if name in ("native", "meshguard", "meshguard-rc") else 200
            if status != want:
                sys.exit(f"bench: {name} answered {status} to a forged {alg} token (want {want})")
    if not dpop:
        return
    token = dpop[0]
    proofs = dpop_proofs(dpop, 2 * len(TARGETS))
    for name in (t for t in TARGETS if t in DPOP_MIX_TARGETS):
        proof = proofs.pop()
        headers = {"Host": DPOP_HOST, "Authorization": f"DPoP {token}", "DPoP": proof}
        status, body = get(port(name), "/bench", headers)
        if status != 200:
            sys.exit(f"bench: {name} answered {status} to a valid DPoP request: {body[:200]}")
        if name not in DPOP_TARGETS:
            continue
        status, _ = get(port(name), "/bench", headers)
        if status != 401:
            sys.exit(f"bench: {name} answered {status} to a replayed DPoP proof (want 401)")
        status, _ = get(port(name), "/bench", {"Host": DPOP_HOST, "Authorization": f"Bearer {token}"})
        if status != 401:
            sys.exit(f"bench: {name} answered {status} to a DPoP-bound token as bearer (want 401)")


def stats(name, prefix):
    try:
        _, body = get(admin_port(name), f"/stats?filter={prefix}")
    except OSError:
        return {}
    out = {}
    for line in body.splitlines():
        m = re.match(r"^(\S+): (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


# ---------------------------------------------------------------------------------------------
# wrk


def cpu_ns(pid):
    """CPU time of every thread of process `pid` so far, in ns (schedstat; /proc/<pid>/stat's
    clock ticks when schedstat is missing)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    if total:
        return total
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wrk(name, tokens_file, duration, connections, threads, pid=None, proofs_file=None):
    env = dict(os.environ, MESHGUARD_TOKENS=str(tokens_file))
    script = "tokens.lua"
    if proofs_file:
        script = "dpop.lua"
        env.update(MESHGUARD_PROOFS=str(proofs_file), MESHGUARD_HOST=DPOP_HOST,
                   MESHGUARD_THREADS=str(threads))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "5s", "-s", str(ROOT / "bench/wrk" / script),
           f"http://127.0.0.1:{port(name)}/bench"]
    cpu0 = cpu_ns(pid) if pid else None
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    cpu1 = cpu_ns(pid) if pid else None
    for line in res.stdout.splitlines():
        if line.startswith("MESHGUARD_RESULT "):
            r = json.loads(line.split(" ", 1)[1])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            if cpu0 is not None and cpu1 is not None and r["requests"]:
                r["cpu_us"] = (cpu1 - cpu0) / 1e3 / r["requests"]
            return r
    sys.exit(f"bench: wrk gave no result for {name}: {res.stdout}\n{res.stderr}")


def runs_in(name, mix):
    """Whether target `name` runs in `mix`."""
    if mix == "dpop":
        return name in DPOP_MIX_TARGETS
    if name in DPOP_TARGETS:
        return False
    return not (mix == "cold" and name in STEADY_ONLY)


class DpopRuns:
    """The DPoP mix's proof lists: a fresh list for each (round, warm-up), shared by that round's
    DPoP targets (separate Envoys, separate replay caches), never one proof sent twice to one
    Envoy. Its size is the run's duration × a rate cap: 3× the fastest DPoP run so far, before
    the first one 1.5× the fastest steady ES256 run of a meshguard target (a DPoP request does a
    steady request's work and more), else MESHGUARD_BENCH_DPOP_RATE (40 000/s); the lua script
    reports a list it ran through (its replays would be 401s, counted as errors)."""

    def __init__(self, tokens, dir_):
        self.inputs = dpop_inputs(tokens)
        self.dir = dir_
        self.fixed = os.environ.get("MESHGUARD_BENCH_DPOP_RATE")
        self.file, self.key = None, None
        self.generated = 0

    def cap(self, runs):
        if self.fixed:
            return float(self.fixed)
        dpop = [r["rps"] for r in runs if r["mix"] == "dpop" and r["target"] in DPOP_TARGETS]
        if dpop:
            return 3 * max(dpop)
        steady = [r["rps"] for r in runs if (r["mix"], r["alg"]) == ("steady", "ES256")
                  and r["target"] in DPOP_BEARER.values()]
        return 1.5 * max(steady) if steady else 40000.0

    def proofs(self, key, duration, runs):
        """The proof file of `key` (a round), generated when the round changes."""
        if key != self.key:
            n = math.ceil(self.cap(runs) * (duration + 1))
            t = time.time()
            self.file = self.dir / "dpop-proofs.txt"
            dpop_proofs(self.inputs, n, self.file)
            self.key = key
            self.generated += n
            log(f"dpop: {n} fresh proofs for {key} in {time.time() - t:.1f} s")
        return self.file


def macro(args):
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    envoy, wasm, wasm_rc = ensure_tools(args)
    wasm_bytes = wasm.stat().st_size if wasm.exists() else 0
    wasm_rc_bytes = wasm_rc.stat().st_size if wasm_rc.exists() else 0
    if args.validate_only:
        tokens = mint(out, 1, "tokens-validate")
        paths = write_configs(out, (tokens / "jwks.json").read_text().strip(), wasm, wasm_rc)
        for name, path in paths.items():
            res = subprocess.run([envoy, "--mode", "validate", "-l", "error", "-c", str(path)],
                                 capture_output=True, text=True, cwd=ROOT)
            if res.returncode != 0:
                sys.exit(f"bench-validate: {path} FAILED\n{res.stdout}{res.stderr}")
            log(f"validate: {path.relative_to(ROOT)} OK")
        return
    tokens = mint(out, args.tokens)
    jwks = (tokens / "jwks.json").read_text().strip()
    paths = write_configs(out, jwks, wasm, wasm_rc)
    dpop = DpopRuns(tokens, tokens) if DPOP_TARGETS & set(TARGETS) else None
    mixes = [(m, a) for m, a in MIXES if m != "dpop" or dpop]
    version = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()
    log(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    procs = start_envoys(envoy, paths, out, args.concurrency)
    runs, seen = [], []

    def one(name, mix, alg, duration, key):
        pid = procs[name].pid
        if mix == "dpop":
            tokens_file = tokens / "dpop-token.txt"
            tokens_file.write_text(dpop.inputs[0] + "\n")
            r = wrk(name, tokens_file, duration, args.connections, args.threads, pid,
                    dpop.proofs(key, duration, seen))
            if name not in DPOP_TARGETS:
                r["wrapped"] = 0  # pass reads no proof: re-sending one is harmless there
            elif r.get("wrapped"):
                log(f"WARNING: {name}: the DPoP proof list ran out ({r['wrapped']} proofs "
                    "re-sent, refused as replays); raise MESHGUARD_BENCH_DPOP_RATE")
        else:
            r = wrk(name, tokens / f"{alg}-{mix}.txt", duration, args.connections,
                    args.threads, pid)
        r.update(target=name, mix=mix, alg=alg)
        seen.append(r)
        return r

    try:
        sanity(tokens, dpop.inputs if dpop else None)
        # Warm-up: V8 compiles the module at load; the warm-up fills caches and connection pools.
        for mix, alg in mixes:
            for name in TARGETS:
                if runs_in(name, mix):
                    one(name, mix, alg, args.warmup, "warm-up")
        for rnd in range(args.rounds):
            for mix, alg in mixes:
                for name in TARGETS:
                    if not runs_in(name, mix):
                        continue
                    r = one(name, mix, alg, args.duration, f"round {rnd + 1}")
                    r.update(round=rnd, load=loadavg())
                    runs.append(r)
                    cpu = f"{r['cpu_us']:6.1f}" if "cpu_us" in r else "     -"
                    log(f"round {rnd + 1}/{args.rounds} {mix:6} {alg} {name:17} "
                        f"{r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  "
                        f"p99 {r['p99_us'] / 1000:6.2f} ms  CPU {cpu} µs/req  "
                        f"errors {r['status_errors']}")
        counters = {name: stats(name, prefix) for name, prefix in
                    [("meshguard", "wasmcustom"), ("meshguard-rc", "wasmcustom"),
                     ("meshguard-dpop", "wasmcustom"), ("meshguard-rc-dpop", "wasmcustom"),
                     ("native", "jwt_authn")] if name in TARGETS}
    finally:
        stop_envoys(procs)
        if dpop and dpop.file:
            dpop.file.unlink(missing_ok=True)
    load_after = os.getloadavg()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "envoy": version, "wasm_bytes": wasm_bytes, "wasm_rc_bytes": wasm_rc_bytes,
        "cpus": os.cpu_count(), "targets": list(TARGETS),
        "concurrency": args.concurrency, "connections": args.connections,
        "wrk_threads": args.threads, "duration_s": args.duration, "rounds": args.rounds,
        "cold_tokens": args.tokens, "cache_entries": CACHE_ENTRIES,
        "load_before": load_before, "load_after": load_after, "counters": counters,
        "dpop_proofs_generated": dpop.generated if dpop else 0,
    }
    (out / "macro.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    summary = summarize(runs)
    (out / "macro.md").write_text(markdown(summary, meta))
    (out / "macro.svg").write_text(svg(summary, meta))
    print((out / "macro.md").read_text())


# ---------------------------------------------------------------------------------------------
# reports


def summarize(runs):
    """Median over rounds per (mix, alg, target): req/s, p50, p99, and the error count."""
    table = {}
    for mix, alg in MIXES:
        for name in TARGETS:
            rs = [r for r in runs if r["mix"] == mix and r["alg"] == alg and r["target"] == name]
            if not rs:
                continue
            table[(mix, alg, name)] = {
                "rps": statistics.median(r["rps"] for r in rs),
                "rps_all": [round(r["rps"]) for r in rs],
                "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
                "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
                "errors": sum(r["status_errors"] + r["timeouts"] + r["read_errors"]
                              + r["connect_errors"] for r in rs),
                "cpu_us": (statistics.median(r["cpu_us"] for r in rs)
                           if all("cpu_us" in r for r in rs) else None),
                "wrapped": sum(r.get("wrapped", 0) for r in rs),
            }
    return table


def markdown(t, meta):
    lines = [
        "# meshguard vs Envoy jwt_authn — macro benchmark",
        "",
        f"{meta['date']}; {meta['envoy']}; {meta['cpus']} CPUs; Envoy --concurrency "
        f"{meta['concurrency']}; wrk -t{meta['wrk_threads']} -c{meta['connections']} "
        f"-d{meta['duration_s']}s × {meta['rounds']} interleaved rounds (median shown); "
        f"cold mix = {meta['cold_tokens']} distinct tokens; caches: {meta['cache_entries']} entries "
        f"(both); meshguard.wasm {meta['wasm_bytes']} bytes"
        + (f", RustCrypto build (meshguard-rc) {meta['wasm_rc_bytes']} bytes"
           if meta.get("wasm_rc_bytes") and RC_TARGETS & set(meta.get("targets", TARGETS)) else "")
        + "; load average before "
        f"{meta['load_before'][0]:.2f}, after {meta['load_after'][0]:.2f}.",
        "",
        "*CPU µs/req*: the Envoy process's CPU time (all threads) during the run over its "
        "requests.",
        "",
        "| mix | alg | target | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs native | p99 vs native | errors | req/s per round |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mix, alg in MIXES:
        nat = t.get((mix, alg, "native"))
        for name in TARGETS:
            r = t.get((mix, alg, name))
            if not r:
                continue
            ratio = f"{r['rps'] / nat['rps']:.2f}×" if nat else "-"
            p99 = f"{r['p99_ms'] / nat['p99_ms']:.2f}×" if nat and nat["p99_ms"] else "-"
            cpu = f"{r['cpu_us']:.1f}" if r.get("cpu_us") is not None else "-"
            lines.append(
                f"| {mix} | {alg} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {cpu} | {ratio} | {p99} | {r['errors']} | "
                f"{', '.join(str(x) for x in r['rps_all'])} |")
    lines += dpop_markdown(t)
    for name in ("meshguard", "meshguard-rc", "meshguard-dpop", "meshguard-rc-dpop"):
        c = meta.get("counters", {}).get(name, {})
        if c:
            lines += ["", f"{name} counters at the end: "
                      + ", ".join(f"`{k}` {v}" for k, v in sorted(c.items()) if v)]
    lines += ["", "Goals: steady within 0.03 of abi-read with p99 ≤ 1.2× native; cold ES256 ≥ 1.00×, cold RS256 ≥ 0.80× native.",
              "See bench/README.md for how to read this."]
    return "\n".join(lines) + "\n"


def dpop_markdown(t):
    """The DPoP mix against the same module's steady ES256 bearer row: what a DPoP request adds."""
    rows = []
    for name, bearer in DPOP_BEARER.items():
        d, b = t.get(("dpop", "ES256", name)), t.get(("steady", "ES256", bearer))
        if not d or not b:
            continue
        p = t.get(("dpop", "ES256", "pass"))
        have_cpu = d["cpu_us"] is not None and b["cpu_us"] is not None
        added = f"{d['cpu_us'] - b['cpu_us']:+.1f}" if have_cpu else "-"
        ratio = f"{d['cpu_us'] / b['cpu_us']:.2f}×" if have_cpu and b["cpu_us"] else "-"
        over = "-"
        if have_cpu and p and p["cpu_us"] is not None and b["cpu_us"] > p["cpu_us"]:
            over = f"{(d['cpu_us'] - p['cpu_us']) / (b['cpu_us'] - p['cpu_us']):.2f}×"
        fmt = lambda r: f"{r['cpu_us']:.1f}" if r and r["cpu_us"] is not None else "-"
        cold = t.get(("cold", "ES256", bearer))
        rows.append(f"| {bearer} | {b['rps']:.0f} | {d['rps']:.0f} | {d['rps'] / b['rps']:.2f}× | "
                    f"{fmt(b)} | {fmt(d)} | {added} | {ratio} | {over} | {fmt(cold)} | "
                    f"{d['errors']} |")
    if not rows:
        return []
    return ["", "DPoP (RFC 9449): `Authorization: DPoP <bound ES256 token>` + a fresh ES256 proof "
            "per request (`dpop.required`), against the same module's steady ES256 bearer row "
            "(the same token cached: the difference is the proof's parse, signature, checks and "
            "replay record). *filter cost ratio* = (DPoP − pass) / (bearer − pass) in CPU µs/req, "
            "pass from the DPoP mix; *cold ES256* (one full ES256 verification per request, the "
            "same module) is what one proof signature should cost. Errors must be 0 (a replayed "
            "proof is a 401).", "",
            "| module | bearer req/s | DPoP req/s | req/s ratio | bearer CPU µs/req | "
            "DPoP CPU µs/req | added µs/req | CPU ratio | filter cost ratio | cold ES256 CPU µs/req "
            "| DPoP errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"] + rows


def svg(t, meta):
    colors = {"pass": "#9e9e9e", "native": "#1f77b4", "meshguard": "#ff7f0e",
              "meshguard-rc": "#d62728", "floor": "#c7c7c7", "abi-read": "#98df8a",
              "abi-memo": "#bcbd22",
              "abi-noop": "#2ca02c", "meshguard-dpop": "#ffbb78", "meshguard-rc-dpop": "#ff9896"}
    labels = {"pass": "pass-through", "native": "native jwt_authn", "meshguard": "meshguard",
              "meshguard-rc": "meshguard, RustCrypto build", "floor": "meshguard, empty config",
              "abi-read": "abi floor: read token + clock, remove",
              "abi-memo": "abi floor: + the CORS preflight header, a cache hit",
              "abi-noop": "abi floor: nothing", "meshguard-dpop": "meshguard, DPoP",
              "meshguard-rc-dpop": "meshguard RustCrypto, DPoP"}
    groups = [((m, a), [n for n in TARGETS if (m, a, n) in t]) for m, a in MIXES]
    groups = [(g, names) for g, names in groups if names]
    present = [n for n in TARGETS if any(n in names for _, names in groups)]
    top = max([r["rps"] for r in t.values()] + [1])
    left, bottom, bw, gap = 70, 320, 28, 24
    w = max(900, left + 20 + sum(len(names) * (bw + 4) + gap for _, names in groups) + 10)
    h = bottom + 40 + 20 * math.ceil(len(present) / 3) + 10
    scale = (bottom - 50) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="15">'
           f'req/s (median of {meta["rounds"]} rounds, higher is better)</text>']
    for k in range(5):
        v = top * k / 4
        y = bottom - v * scale
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    x0 = left + 20
    for (mix, alg), names in groups:
        for k, name in enumerate(names):
            r = t[(mix, alg, name)]
            x = x0 + k * (bw + 4)
            bh = r["rps"] * scale
            out.append(f'<rect x="{x}" y="{bottom - bh:.1f}" width="{bw}" height="{bh:.1f}" '
                       f'fill="{colors.get(name, "#000")}"/>')
            out.append(f'<text x="{x + bw / 2}" y="{bottom - bh - 4:.1f}" text-anchor="middle" '
                       f'font-size="10">{r["rps"]:.0f}</text>')
        out.append(f'<text x="{x0 + (len(names) * (bw + 4) - 4) / 2}" y="{bottom + 18}" '
                   f'text-anchor="middle">{mix} {alg}</text>')
        x0 += len(names) * (bw + 4) + gap
    for k, name in enumerate(present):
        x = left + 20 + (k % 3) * 260
        y = bottom + 40 + (k // 3) * 20
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colors.get(name, "#000")}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 10}">{labels.get(name, name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def breakdown_lines(path):
    """The cold-request breakdown (bench/micro/breakdown.mjs) as a table: each phase's µs,
    derived from the phases timed alone, and what is left of the cold request."""
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    lines = []
    for r in doc["results"]:
        alg = r.get("alg", "ES256")
        cold, steady = r["cold"] - r["headers"], r["steady"] - r["headers"]
        sig, parse, digest = r["signature"], r["parse"], r["digest"]
        claims = r["verify"] - parse - sig
        insert = r["cache_insert"] - digest
        rest = cold - steady - r["verify"] - r["cache_insert"]
        rows = [(f"signature ({alg}, meshguard-crypto; with its base64url and its own hash of the "
                 "signing input)", sig),
                ("token parse (base64url + JSON)", parse),
                ("key lookup + claim checks", claims),
                ("cache key (SHA-256 of the token)", digest),
                ("cache insert into a full cache (one eviction)", insert),
                ("what a cached request does too (token location, memo, claim headers)", steady),
                ("the rest of the miss path", rest)]
        lines += ["", f"Where a cold {alg} request's time goes inside the module ({r['label']}, V8, "
                  f"load average {doc['load']:.2f}): a whole request through the engine with a new "
                  f"token (a miss and an eviction) takes {cold:.1f} µs, with the cached token "
                  f"{steady:.2f} µs; the phases timed alone over the same tokens "
                  "(bench/micro/src/request.rs). The ABI and Envoy's own work are not in it: "
                  "`make bench`'s floor modules measure those.", "",
                  "| phase | µs | share of the cold request |", "|---|---:|---:|"]
        lines += [f"| {name} | {us:.2f} | {100 * us / cold:.0f} % |" for name, us in rows]
    return lines


def report_micro(out, levels):
    out = Path(out)
    native = {r["alg"]: r for r in json.loads((out / "micro-native.json").read_text())}
    v8 = {}
    for lv in levels:
        p = out / f"micro-v8-opt{lv}.json"
        if p.exists():
            v8[lv] = json.loads(p.read_text())
    lines = ["# Verification micro benchmark", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
             f"{os.getloadavg()[0]:.2f}; µs per operation (median of 7 batches); wasm = V8 "
             f"(Node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
             "--no-liftoff like Envoy), and the first opt-level's module in wasmtime 48 (cranelift, "
             "tests/harness/examples/micro_wasmtime.rs) when it ran.", "",
             "verify = parse + signature + claims (a cache miss); parse = base64url + JSON only; "
             "sha256 = the cache key of a token not in the hot-token memo; hit = a whole cache hit "
             "(memo key, lookup, time re-check).", ""]
    head = "| alg | native verify | native parse | native sha256 | native hit |"
    sep = "|---|---:|---:|---:|---:|"
    wt_path = out / "micro-wasmtime.json"
    wasmtime = ({r["alg"]: r for r in json.loads(wt_path.read_text())["results"]}
                if wt_path.exists() else {})
    for lv in v8:
        head += f" V8 opt-{lv} verify | V8/native |"
        sep += "---:|---:|"
    if wasmtime:
        head += " wasmtime verify | wasmtime/native |"
        sep += "---:|---:|"
    lines += [head, sep]
    for alg, n in native.items():
        row = (f"| {alg} | {n['verify_us']:.1f} | {n['parse_us']:.2f} | {n['digest_us']:.2f} | "
               f"{n.get('hit_us', 0):.2f} |")
        for lv, doc in v8.items():
            r = next((x for x in doc["results"] if x["alg"] == alg), None)
            row += f" {r['verify_us']:.1f} | {r['verify_us'] / n['verify_us']:.1f}× |" if r else " - | - |"
        if wasmtime:
            w = wasmtime.get(alg)
            row += f" {w['verify_us']:.1f} | {w['verify_us'] / n['verify_us']:.1f}× |" if w else " - | - |"
        lines.append(row)
    if v8:
        lines += ["", "| opt-level | bench module bytes | V8 parse µs (ES256 token) | V8 sha256 µs | V8 cache hit µs |",
                  "|---|---:|---:|---:|---:|"]
        for lv, doc in v8.items():
            r = doc["results"][0]
            lines.append(f"| {lv} | {doc['wasm_bytes']} | {r['parse_us']:.2f} | {r['digest_us']:.2f} | "
                         f"{r.get('hit_us', 0):.2f} |")
    sizes = out / "wasm-sizes.json"
    if sizes.exists():
        lines += ["", "| opt-level | meshguard.wasm bytes |", "|---|---:|"]
        for lv, b in json.loads(sizes.read_text()).items():
            lines.append(f"| {lv} | {b} |")
    mem = out / "memory-v8.json"
    if mem.exists():
        lines += ["", "Token cache memory, 10 000 distinct ES256 tokens verified and offered to a fresh "
                  "cache (V8, counted heap bytes and the module's linear memory):", "",
                  "| capacity | entries | heap bytes | per entry | linear memory before → after |",
                  "|---:|---:|---:|---:|---|"]
        for r in json.loads(mem.read_text()):
            per = r["heap_bytes"] // max(1, r["entries"]) if r["entries"] else "-"
            lines.append(f"| {r['capacity']} | {r['entries']} | {r['heap_bytes']} | {per} | "
                         f"{r['linear_memory_before'] / 2**20:.2f} MiB → "
                         f"{r['linear_memory_after'] / 2**20:.2f} MiB |")
    native_mem = out / "memory-native.txt"
    if native_mem.exists():
        lines += ["", "Native (64-bit) heap: " + "; ".join(native_mem.read_text().strip().splitlines())]
    lines += breakdown_lines(out / "breakdown-v8.json")
    (out / "micro.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# profile: perf samples of one Envoy worker per target

# perf's cpu-clock period: every sample stands for this much of the worker's CPU time.
PROFILE_PERIOD_NS = 250_000


def worker_tid(pid):
    """The thread id of Envoy's first worker (`wrk:worker_0`), which runs the filters."""
    for task in sorted(os.listdir(f"/proc/{pid}/task")):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                if f.read().startswith("wrk:worker"):
                    return int(task)
        except OSError:
            pass
    sys.exit(f"bench profile: no worker thread in Envoy {pid}")


def where(dso):
    """The part of the process a sample's DSO stands for."""
    if dso.startswith("/tmp/perf-") or dso.startswith("[JIT]") or dso == "[unknown]":
        return "module code (V8 JIT)"
    if "kernel" in dso or dso.startswith("[k"):
        return "kernel"
    if "envoy" in dso:
        return "Envoy (with V8's runtime)"
    return "libraries (libc, vdso)"


def disassemble(pid, page, jit_ips, objdump):
    """Sampled mnemonics of one 4 KiB page of the module's compiled code, read from the live
    worker and disassembled: {mnemonic: samples}."""
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(page)
            code = f.read(0x1000)
    except OSError:
        return {}
    blob = ROOT / "bench/results/profile-page.bin"
    blob.write_bytes(code)
    asm = subprocess.run([objdump, "-D", "-b", "binary", "-m", "i386:x86-64",
                          f"--adjust-vma={page:#x}", str(blob)], capture_output=True, text=True).stdout
    blob.unlink()
    ops = {}
    for line in asm.splitlines():
        addr, _, rest = line.partition(":")
        fields = rest.split("\t")
        try:
            ip = int(addr.strip(), 16)
        except ValueError:
            continue
        if ip in jit_ips and len(fields) > 2 and fields[2].strip():
            op = fields[2].split()[0]
            ops[op] = ops.get(op, 0) + jit_ips[ip]
    return ops


def hot_instructions(pid, jit_ips, top=12):
    """What the module's samples land on: the pages of compiled code holding 0.5 % or more of
    them, disassembled (objdump). Pages whose sampled code multiplies on SIMD lanes (`vpmuludq`,
    which only RSA's Montgomery products use) are counted apart; the hottest page's mnemonics
    are listed."""
    objdump = shutil.which("objdump")
    total = sum(jit_ips.values())
    pages = {}
    for ip, n in jit_ips.items():
        pages[ip & ~0xFFF] = pages.get(ip & ~0xFFF, 0) + n
    if not pages or not objdump:
        return None
    ranked = sorted(pages.items(), key=lambda kv: -kv[1])
    hottest, simd = {}, 0
    for k, (page, n) in enumerate(ranked):
        if n < total / 200:
            break
        ops = disassemble(pid, page, jit_ips, objdump)
        if k == 0:
            hottest = ops
        if "vpmuludq" in ops or "pmuludq" in ops:
            simd += n
    return {"share": ranked[0][1] / total, "pages": len(pages), "simd_mul": simd / total,
            "ops": sorted(hottest.items(), key=lambda kv: -kv[1])[:top]}


def profile(args):
    perf = shutil.which("perf")
    if not perf:
        sys.exit("bench profile: needs `perf` (Debian: linux-perf)")
    TARGETS[:] = args.targets.split(",")
    out = ROOT / "bench/results"
    envoy, wasm, wasm_rc = ensure_tools(args)
    tokens = mint(out, args.tokens)
    paths = write_configs(out, (tokens / "jwks.json").read_text().strip(), wasm, wasm_rc)
    tokens_file = tokens / f"{args.alg}-{args.mix}.txt"
    procs = start_envoys(envoy, paths, out, 1)
    results = []
    try:
        for name in TARGETS:
            pid = procs[name].pid
            tid = worker_tid(pid)
            wrk(name, tokens_file, 2, args.connections, 1)  # warm-up
            data = out / f"profile-{name}.data"
            rec = subprocess.Popen([perf, "record", "-q", "-e", "cpu-clock", "-c",
                                    str(PROFILE_PERIOD_NS), "-t", str(tid), "-o", str(data)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            r = wrk(name, tokens_file, args.duration, args.connections, 1)
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=30)
            script = subprocess.run([perf, "script", "-i", str(data), "-F", "ip,dso"],
                                    capture_output=True, text=True).stdout
            data.unlink()
            parts, jit_ips = {}, {}
            for line in script.splitlines():
                ip, _, dso = line.strip().partition(" ")
                part = where(dso.strip("()"))
                parts[part] = parts.get(part, 0) + 1
                if part.startswith("module"):
                    ip = int(ip, 16)
                    jit_ips[ip] = jit_ips.get(ip, 0) + 1
            us = {k: v * PROFILE_PERIOD_NS / 1e3 / r["requests"] for k, v in parts.items()}
            results.append({"target": name, "rps": r["rps"], "us": us,
                            "hot": hot_instructions(pid, jit_ips)})
            log(f"{name}: {sum(us.values()):.1f} CPU µs/req sampled ("
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(us.items(), key=lambda kv: -kv[1])) + ")")
    finally:
        stop_envoys(procs)
    version = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout.strip()
    parts = ["module code (V8 JIT)", "Envoy (with V8's runtime)", "kernel", "libraries (libc, vdso)"]
    lines = [f"# Where a worker's CPU goes: {args.mix} {args.alg}", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {version}; Envoy --concurrency 1; "
             f"wrk -t1 -c{args.connections} -d{args.duration}s; perf cpu-clock every "
             f"{PROFILE_PERIOD_NS // 1000} µs of the worker thread's CPU; load average "
             f"{os.getloadavg()[0]:.2f}. CPU µs per request from the samples. The targets run one "
             "after the other with perf attached, so read each row's shares; compare targets in "
             "`macro.md` (interleaved rounds).", "",
             "| target | req/s | " + " | ".join(parts) + " | total |",
             "|---|---:|" + "---:|" * (len(parts) + 1)]
    for r in results:
        lines.append(f"| {r['target']} | {r['rps']:.0f} | "
                     + " | ".join(f"{r['us'].get(p, 0):.1f}" for p in parts)
                     + f" | {sum(r['us'].values()):.1f} |")
    for r in results:
        h = r["hot"]
        if h:
            lines += ["", f"{r['target']}: the hottest 4 KiB of module code holds "
                      f"{100 * h['share']:.0f} % of the module's samples ({h['pages']} pages "
                      "sampled); its most sampled instructions (x86-64 as V8 emitted them):", "",
                      ", ".join(f"`{op}` {n}" for op, n in h["ops"]), "",
                      f"Pages whose sampled code multiplies on SIMD lanes (`vpmuludq`: RSA's "
                      f"Montgomery products, nothing else in the module): {100 * h['simd_mul']:.0f} % "
                      f"of the module's samples, {h['simd_mul'] * r['us'].get(parts[0], 0):.1f} µs "
                      "per request."]
    (out / "profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("macro")
    m.add_argument("--duration", type=int, default=int(os.environ.get("MESHGUARD_BENCH_DURATION", 8)))
    m.add_argument("--rounds", type=int, default=int(os.environ.get("MESHGUARD_BENCH_ROUNDS", 3)))
    m.add_argument("--warmup", type=int, default=2)
    m.add_argument("--connections", type=int, default=8)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads (= wasm VMs)")
    m.add_argument("--tokens", type=int, default=5000, help="distinct tokens of the cold mix")
    m.add_argument("--no-build", action="store_true", help="use the existing meshguard.wasm")
    m.add_argument("--quick", action="store_true", help="1 round of 3 s (a smoke run)")
    m.add_argument("--validate-only", action="store_true",
                   help="write the Envoy configs and check them with --mode validate")
    pr = sub.add_parser("profile")
    pr.add_argument("--targets", default="meshguard,native")
    pr.add_argument("--mix", choices=["steady", "cold"], default="cold")
    pr.add_argument("--alg", choices=ALGS, default="RS256")
    pr.add_argument("--duration", type=int, default=8)
    pr.add_argument("--connections", type=int, default=8)
    pr.add_argument("--tokens", type=int, default=5000, help="distinct tokens of the cold mix")
    pr.add_argument("--no-build", action="store_true", help="use the existing meshguard.wasm")
    r = sub.add_parser("report-micro")
    r.add_argument("out")
    r.add_argument("levels", nargs="*")
    args = ap.parse_args()
    if args.cmd == "macro":
        if args.quick:
            args.duration, args.rounds, args.warmup = 3, 1, 1
        macro(args)
    elif args.cmd == "profile":
        profile(args)
    else:
        report_micro(args.out, args.levels)


if __name__ == "__main__":
    main()
