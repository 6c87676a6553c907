#!/usr/bin/env python3
"""meshguard's side-by-side benchmark (`make bench`; see bench/README.md).

    bench/bench.py macro [--duration S] [--rounds N] [--connections C] [--quick]
    bench/bench.py report-micro <out-dir> <opt-levels...>

macro: three Envoys on loopback with the same listener and route (a direct 200 response, so only
the filters differ): `pass` (no auth filter), `native` (Envoy's jwt_authn with jwt_cache_config)
and `meshguard` (the wasm filter, V8). Same inline JWKS, same tokens. wrk drives each with the
steady mix (one token reused) and the cold mix (N distinct tokens, N above every cache size), for
ES256 and RS256, in interleaved rounds (pass, native, meshguard, pass, ...) so drift (thermal,
other processes) hits all three alike. Writes bench/results/macro.{json,md,svg}.

Only loopback; every load run is bounded by --duration. Nothing here asserts a number.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://bench.meshguard.test"
AUDIENCE = "api.bench.test"
TARGETS = os.environ.get("MESHGUARD_BENCH_TARGETS",
                         "pass,native,meshguard,floor,abi-read,abi-noop").split(",")
# The abi floors (bench/abi-floor) verify nothing: they run in the steady mixes only.
STEADY_ONLY = {"abi-read", "abi-noop"}
ALGS = ["ES256", "RS256"]
MIXES = [("steady", "ES256"), ("steady", "RS256"), ("cold", "ES256"), ("cold", "RS256")]
BASE_PORT = int(os.environ.get("MESHGUARD_BENCH_PORT", "19100"))
CACHE_ENTRIES = 1024


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
    if "meshguard" in TARGETS and not wasm.exists():
        sys.exit(f"bench: {wasm} missing (make wasm)")
    if STEADY_ONLY & set(TARGETS):
        env = dict(os.environ, MESHGUARD_WASM_CRATE="abi-floor")
        env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target"))
        run(["./scripts/build-wasm.sh"], env=env)
    return envoy, wasm


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


def configs(jwks, wasm):
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
    # any proxy-wasm filter can do (nothing, two VM entries), without an SDK.
    floor = abi_floor_wasm()
    return {"pass": "", "native": native, "meshguard": wasm_filter(plugin),
            "floor": wasm_filter({}),
            "abi-read": wasm_filter("read", floor, "abi_floor"),
            "abi-noop": wasm_filter("noop", floor, "abi_floor")}


def write_configs(out, jwks, wasm):
    paths = {}
    filters = configs(jwks, wasm)
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


def sanity(tokens):
    """Every Envoy answers 200 to a good token; the two that authenticate answer 401 to a bad
    one (a benchmark of a filter that is not running would be worthless)."""
    for alg in ALGS:
        tok = (tokens / f"{alg}-steady.txt").read_text().strip()
        bad = tok[:-8] + ("AAAAAAAA" if not tok.endswith("AAAAAAAA") else "BBBBBBBB")
        for name in TARGETS:
            status, body = get(port(name), "/bench", {"Authorization": f"Bearer {tok}"})
            if status != 200:
                sys.exit(f"bench: {name} answered {status} to a valid {alg} token: {body[:200]}")
            status, _ = get(port(name), "/bench", {"Authorization": f"Bearer {bad}"})
            want = 401 if name in ("native", "meshguard") else 200
            if status != want:
                sys.exit(f"bench: {name} answered {status} to a forged {alg} token (want {want})")


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


def wrk(name, tokens_file, duration, connections, threads):
    env = dict(os.environ, MESHGUARD_TOKENS=str(tokens_file))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "5s", "-s", str(ROOT / "bench/wrk/tokens.lua"),
           f"http://127.0.0.1:{port(name)}/bench"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    for line in res.stdout.splitlines():
        if line.startswith("MESHGUARD_RESULT "):
            r = json.loads(line.split(" ", 1)[1])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    sys.exit(f"bench: wrk gave no result for {name}: {res.stdout}\n{res.stderr}")


def macro(args):
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    envoy, wasm = ensure_tools(args)
    wasm_bytes = wasm.stat().st_size if wasm.exists() else 0
    if args.validate_only:
        tokens = mint(out, 1, "tokens-validate")
        paths = write_configs(out, (tokens / "jwks.json").read_text().strip(), wasm)
        for name, path in paths.items():
            res = subprocess.run([envoy, "--mode", "validate", "-l", "error", "-c", str(path)],
                                 capture_output=True, text=True, cwd=ROOT)
            if res.returncode != 0:
                sys.exit(f"bench-validate: {path} FAILED\n{res.stdout}{res.stderr}")
            log(f"validate: {path.relative_to(ROOT)} OK")
        return
    tokens = mint(out, args.tokens)
    jwks = (tokens / "jwks.json").read_text().strip()
    paths = write_configs(out, jwks, wasm)
    version = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()
    log(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    procs = start_envoys(envoy, paths, out, args.concurrency)
    runs = []
    try:
        sanity(tokens)
        # Warm-up: V8 compiles the module at load; the warm-up fills caches and connection pools.
        for mix, alg in MIXES:
            for name in TARGETS:
                if mix == "cold" and name in STEADY_ONLY:
                    continue
                wrk(name, tokens / f"{alg}-{mix}.txt", args.warmup, args.connections, args.threads)
        for rnd in range(args.rounds):
            for mix, alg in MIXES:
                for name in TARGETS:
                    if mix == "cold" and name in STEADY_ONLY:
                        continue
                    r = wrk(name, tokens / f"{alg}-{mix}.txt", args.duration, args.connections,
                            args.threads)
                    r.update(target=name, mix=mix, alg=alg, round=rnd, load=loadavg())
                    runs.append(r)
                    log(f"round {rnd + 1}/{args.rounds} {mix:6} {alg} {name:9} "
                        f"{r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  "
                        f"p99 {r['p99_us'] / 1000:6.2f} ms  errors {r['status_errors']}")
        counters = {name: stats(name, prefix) for name, prefix in
                    [("meshguard", "wasmcustom"), ("native", "jwt_authn")] if name in TARGETS}
    finally:
        stop_envoys(procs)
    load_after = os.getloadavg()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "envoy": version, "wasm_bytes": wasm_bytes, "cpus": os.cpu_count(),
        "concurrency": args.concurrency, "connections": args.connections,
        "wrk_threads": args.threads, "duration_s": args.duration, "rounds": args.rounds,
        "cold_tokens": args.tokens, "cache_entries": CACHE_ENTRIES,
        "load_before": load_before, "load_after": load_after, "counters": counters,
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
        f"(both); meshguard.wasm {meta['wasm_bytes']} bytes; load average before "
        f"{meta['load_before'][0]:.2f}, after {meta['load_after'][0]:.2f}.",
        "",
        "| mix | alg | target | req/s | p50 ms | p99 ms | req/s vs native | p99 vs native | errors | req/s per round |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mix, alg in MIXES:
        nat = t.get((mix, alg, "native"))
        for name in TARGETS:
            r = t.get((mix, alg, name))
            if not r:
                continue
            ratio = f"{r['rps'] / nat['rps']:.2f}×" if nat else "-"
            p99 = f"{r['p99_ms'] / nat['p99_ms']:.2f}×" if nat and nat["p99_ms"] else "-"
            lines.append(
                f"| {mix} | {alg} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {ratio} | {p99} | {r['errors']} | "
                f"{', '.join(str(x) for x in r['rps_all'])} |")
    c = meta.get("counters", {}).get("meshguard", {})
    if c:
        lines += ["", "meshguard counters at the end: "
                  + ", ".join(f"`{k}` {v}" for k, v in sorted(c.items()))]
    lines += ["", "Goals: steady within 0.03 of abi-read with p99 ≤ 1.2× native; cold ES256 ≥ 1.00×, cold RS256 ≥ 0.80× native.",
              "See bench/README.md for how to read this."]
    return "\n".join(lines) + "\n"


def svg(t, meta):
    colors = {"pass": "#9e9e9e", "native": "#1f77b4", "meshguard": "#ff7f0e", "floor": "#c7c7c7",
              "abi-read": "#98df8a", "abi-noop": "#2ca02c"}
    groups = [(m, a) for m, a in MIXES if any((m, a, n) in t for n in TARGETS)]
    top = max([r["rps"] for r in t.values()] + [1])
    w, h, left, bottom, gw, bw = 900, 400, 70, 320, 205, 28
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
    for g, (mix, alg) in enumerate(groups):
        x0 = left + 20 + g * gw
        for k, name in enumerate(TARGETS):
            r = t.get((mix, alg, name))
            if not r:
                continue
            x = x0 + k * (bw + 4)
            bh = r["rps"] * scale
            out.append(f'<rect x="{x}" y="{bottom - bh:.1f}" width="{bw}" height="{bh:.1f}" '
                       f'fill="{colors[name]}"/>')
            out.append(f'<text x="{x + bw / 2}" y="{bottom - bh - 4:.1f}" text-anchor="middle" '
                       f'font-size="10">{r["rps"]:.0f}</text>')
        out.append(f'<text x="{x0 + (len(TARGETS) - 1) / 2 * (bw + 4) + bw / 2}" y="{bottom + 18}" text-anchor="middle">'
                   f'{mix} {alg}</text>')
    for k, name in enumerate(TARGETS):
        x = left + 20 + (k % 3) * 260
        y = h - 48 + (k // 3) * 20
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colors[name]}"/>')
        label = {"pass": "pass-through", "native": "native jwt_authn", "meshguard": "meshguard",
                 "floor": "meshguard, empty config",
                 "abi-read": "abi floor: read token + clock, remove",
                 "abi-noop": "abi floor: nothing"}[name]
        out.append(f'<text x="{x + 16}" y="{y + 10}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


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
    (out / "micro.md").write_text("\n".join(lines) + "\n")
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
                   help="write the three Envoy configs and check them with --mode validate")
    r = sub.add_parser("report-micro")
    r.add_argument("out")
    r.add_argument("levels", nargs="*")
    args = ap.parse_args()
    if args.cmd == "macro":
        if args.quick:
            args.duration, args.rounds, args.warmup = 3, 1, 1
        macro(args)
    else:
        report_micro(args.out, args.levels)


if __name__ == "__main__":
    main()
