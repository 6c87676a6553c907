// Per-VM memory of the token cache inside V8: verifies and caches 10 000 distinct ES256 tokens in
// a fresh module instance per capacity and reports the module's live heap bytes (counted by the
// micro crate's allocator) and its linear memory size (what the VM really holds; it never shrinks).
//   node bench/micro/memory.mjs <module.wasm> <tokens-dir> <out.json>
import { readFileSync, writeFileSync } from "node:fs";
import { instantiate } from "./module.mjs";

const [wasmPath, dir, outPath] = process.argv.slice(2);
const module = await WebAssembly.compile(readFileSync(wasmPath));
const tokens = readFileSync(`${dir}/ES256-cold.txt`, "utf8").split("\n").filter(Boolean).slice(0, 10000);
const jwks = readFileSync(`${dir}/jwks.json`, "utf8");
const results = [];
for (const capacity of [0, 1024, 10000]) {
  const { exports, put } = await instantiate(module);
  const [jp, jl] = put(jwks), [tp, tl] = put(tokens[0]), [ip, il] = put("https://bench.meshguard.test");
  if (exports.mg_setup(jp, jl, tp, tl, ip, il, BigInt(Math.floor(Date.now() / 1000))) !== 0) throw new Error("setup");
  exports.mg_cache_new(capacity);
  const heap0 = exports.mg_live_bytes(), pages0 = exports.memory.buffer.byteLength;
  let ok = 0;
  for (const t of tokens) {
    const [p, l] = put(t);
    ok += exports.mg_cache_add(p, l);
    exports.mg_free(p, l);
  }
  // A measurement of an empty cache (e.g. expired tokens) is worthless: fail loudly.
  if (ok !== tokens.length) throw new Error(`memory: only ${ok} of ${tokens.length} tokens verified`);
  const r = {
    capacity, tokens: tokens.length, verified: ok, entries: exports.mg_cache_len(),
    heap_bytes: exports.mg_live_bytes() - heap0,
    linear_memory_before: pages0, linear_memory_after: exports.memory.buffer.byteLength,
  };
  console.log(`v8 cache capacity ${String(capacity).padStart(6)}: ${r.verified} verified, ${r.entries} entries, ` +
    `heap +${r.heap_bytes} B (${Math.round(r.heap_bytes / Math.max(1, r.entries))} per entry), ` +
    `linear memory ${r.linear_memory_before / 65536} -> ${r.linear_memory_after / 65536} pages (64 KiB)`);
  results.push(r);
}
writeFileSync(outPath, JSON.stringify(results, null, 1));
