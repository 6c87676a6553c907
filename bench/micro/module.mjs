// The benchmark module in V8, as wasm.mjs, memory.mjs and breakdown.mjs load it: every import it
// declares (proxy-wasm host calls pulled in with the filter crate) stubbed, since the measured
// functions call none of them, and `put` to copy a string into its memory (through `mg_alloc`).
const enc = new TextEncoder();

export async function instantiate(module) {
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    if (imp.kind === "function") imports[imp.module][imp.name] = () => 0;
  }
  const { exports } = await WebAssembly.instantiate(module, imports);
  const put = (text) => {
    const data = enc.encode(text);
    const ptr = exports.mg_alloc(data.length);
    new Uint8Array(exports.memory.buffer, ptr, data.length).set(data);
    return [ptr, data.length];
  };
  return { exports, put };
}
