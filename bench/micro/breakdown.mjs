// Where a cold request's time goes inside the module, in V8 (Node --no-liftoff, as Envoy runs it):
//   node --no-liftoff bench/micro/breakdown.mjs <tokens-dir> <out.json> <label>=<module.wasm>...
// <tokens-dir> is `micro mint`'s output (jwks.json, <ALG>-steady.txt, <ALG>-cold.txt with more
// tokens than the 1 024-entry cache holds), for ES256 and RS256, whichever it holds. Per module and
// algorithm: a whole request through the engine with a
// cached token (steady) and with a new one (cold: a miss and an eviction each time), and the
// phases of the cold one timed alone over the same tokens (src/request.rs). Modules are measured
// batch by batch in turn, so a change of load affects all alike.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { instantiate } from "./module.mjs";

const [dir, outPath, ...specs] = process.argv.slice(2);
const PHASES = ["cold", "steady", "headers", "parse", "digest", "verify", "signature", "cache_insert"];

async function load(spec, alg) {
  const [label, path] = spec.split("=");
  const { exports: e, put } = await instantiate(await WebAssembly.compile(readFileSync(path)));
  const jwks = readFileSync(`${dir}/jwks.json`, "utf8").trim();
  const tokens = readFileSync(`${dir}/${alg}-steady.txt`, "utf8") + readFileSync(`${dir}/${alg}-cold.txt`, "utf8");
  const [jp, jl] = put(jwks), [tp, tl] = put(tokens);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const status = e.mg_breakdown_setup(jp, jl, tp, tl, now);
  if (status !== 0) throw new Error(`${label} ${alg}: breakdown setup failed (${status}); mint the tokens again`);
  return { label: `${label} ${alg}`, module: label, alg, e, samples: Object.fromEntries(PHASES.map((p) => [p, []])) };
}

const ALGS = ["ES256", "RS256"].filter((alg) => existsSync(`${dir}/${alg}-cold.txt`));
if (ALGS.length === 0) throw new Error(`${dir}: no ES256 or RS256 tokens (micro mint)`);
const mods = [];
for (const alg of ALGS) for (const spec of specs) mods.push(await load(spec, alg));
const run = (m, phase, n) => {
  const ok = m.e.mg_breakdown(PHASES.indexOf(phase), n);
  if (ok !== n) throw new Error(`${m.label} ${phase}: ${ok}/${n}`);
};
// Warm-up (TurboFan compiles everything), then batches of a fixed count per phase, in turn.
for (const m of mods) for (const p of PHASES) run(m, p, 2000);
const ITERS = { cold: 1500, steady: 100000, headers: 100000, parse: 20000, digest: 50000, verify: 1500, signature: 1500, cache_insert: 50000 };
for (let batch = 0; batch < 9; batch++) {
  for (const p of PHASES) {
    for (const m of mods) {
      const t = performance.now();
      run(m, p, ITERS[p]);
      m.samples[p].push(((performance.now() - t) * 1000) / ITERS[p]);
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const out = [];
for (const m of mods) {
  if (m.e.mg_breakdown_responses() !== 0) throw new Error(`${m.label}: the engine answered a request`);
  const r = Object.fromEntries(PHASES.map((p) => [p, median(m.samples[p])]));
  Object.assign(r, { label: m.module, alg: m.alg });
  out.push(r);
  console.log(`v8/${m.label} ` + PHASES.map((p) => `${p} ${r[p].toFixed(2)}`).join("  ") + "  (µs)");
}
writeFileSync(outPath, JSON.stringify({ load: (await import("node:os")).loadavg()[0], results: out }, null, 2));
