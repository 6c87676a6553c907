// Times the micro benchmark inside V8 (Node), the wasm engine Envoy embeds. Run Node with
// --no-liftoff: Envoy's V8 integration turns Liftoff off, so modules run TurboFan code only.
//   node --no-liftoff bench/micro/wasm.mjs <micro-cases.json> <out-prefix> <label>=<module.wasm>...
// Several modules (e.g. one per opt-level) are measured batch by batch in turn, so a change of
// machine load affects all of them alike. Writes <out-prefix><label>.json per module. The host
// calls a module imports are stubbed (module.mjs).
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { instantiate } from "./module.mjs";

const [casesPath, outPrefix, ...specs] = process.argv.slice(2);

async function load(spec) {
  const [label, path] = spec.split("=");
  const bytes = readFileSync(path);
  const { exports, put } = await instantiate(await WebAssembly.compile(bytes));
  return { label, bytes: bytes.length, exports, put, results: [] };
}

function setup({ exports: e, put }, c) {
  const [jp, jl] = put(c.jwks), [tp, tl] = put(c.token), [ip, il] = put(c.iss);
  if (e.mg_setup(jp, jl, tp, tl, ip, il, BigInt(c.now)) !== 0) throw new Error(`setup ${c.alg}`);
}

// Iterations for a ~100 ms batch (after a warm-up that lets TurboFan compile everything).
function calibrate(fn) {
  let n = 1, t0 = performance.now();
  while (performance.now() - t0 < 30) { fn(n); n *= 2; }
  const per = (performance.now() - t0) / (n - 1);
  return Math.max(1, Math.min(1e6, Math.round(100 / per)));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const OPS = ["verify", "parse", "digest", "hit"];
const mods = [];
for (const spec of specs) mods.push(await load(spec));
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
// Warm-up: every case and operation of every module runs for a while before anything is timed.
// V8 compiles TurboFan code in background threads, which on 2 cores would still be busy during
// the first case's batches (ES256 measured ~30 µs slow, first, without this).
for (const c of cases) {
  for (const m of mods) {
    setup(m, c);
    for (const op of OPS) {
      const t0 = performance.now();
      for (let n = 1; performance.now() - t0 < 150; n = Math.min(n * 2, 64)) m.exports[`mg_${op}`](n);
    }
  }
}
for (const c of cases) {
  for (const m of mods) setup(m, c);
  const row = Object.fromEntries(mods.map((m) => [m.label, { alg: c.alg }]));
  for (const op of OPS) {
    const fns = mods.map((m) => (n) => m.exports[`mg_${op}`](n));
    const iters = fns.map(calibrate);
    const samples = mods.map(() => []);
    for (let batch = 0; batch < 7; batch++) {
      fns.forEach((fn, i) => {
        const t = performance.now();
        const ok = fn(iters[i]);
        if (ok !== iters[i]) throw new Error(`${mods[i].label} ${c.alg} ${op}: ${ok}/${iters[i]}`);
        samples[i].push(((performance.now() - t) * 1000) / iters[i]);
      });
    }
    mods.forEach((m, i) => { row[m.label][`${op}_us`] = median(samples[i]); });
  }
  for (const m of mods) {
    const r = row[m.label];
    console.log(`v8/${m.label} ${c.alg.padEnd(6)} verify ${r.verify_us.toFixed(1).padStart(8)} us   parse ${r.parse_us.toFixed(2).padStart(6)} us   sha256 ${r.digest_us.toFixed(2).padStart(5)} us   hit ${r.hit_us.toFixed(2).padStart(5)} us`);
    m.results.push(r);
  }
}
for (const m of mods) {
  writeFileSync(`${outPrefix}${m.label}.json`, JSON.stringify({ label: `v8/${m.label}`, wasm_bytes: m.bytes, results: m.results }, null, 2));
}
