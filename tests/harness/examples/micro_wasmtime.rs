//! The verification micro benchmark (`bench/micro`) inside wasmtime, beside its V8 run
//! (`bench/micro/wasm.mjs`): the same module, the same cases, the same method (a warm-up, batches
//! of ~100 ms, the median of 7). Envoy runs V8; this shows how much of a number is the engine.
//! Run by `bench/micro.sh`:
//!
//! ```text
//! cargo run -q -p meshguard-harness --example micro_wasmtime -- <micro-cases.json> <out.json> <module.wasm>
//! ```
//!
//! Every import of the module (proxy-wasm host calls pulled in with the filter crate) is stubbed
//! with zeros: the measured functions call none of them. Plain cranelift at its default
//! optimisation level, no fuel metering (the harness's test engine meters fuel; this one must not).

use std::time::Instant;

use serde_json::{Value, json};
use wasmtime::{
    Engine, ExternType, Func, Instance, Memory, Module, Store, TypedFunc, Val, ValType,
};

type Res<T> = Result<T, String>;
/// `mg_setup(jwks ptr, len, token ptr, len, issuer ptr, len, now)`.
type SetupArgs = (u32, u32, u32, u32, u32, u32, u64);

struct Micro {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    setup: TypedFunc<SetupArgs, i32>,
    ops: Vec<(&'static str, TypedFunc<u32, u32>)>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Micro {
    fn load(path: &str) -> Res<Micro> {
        let engine = Engine::default();
        let module = Module::from_file(&engine, path).map_err(err)?;
        let mut store = Store::new(&engine, ());
        let mut imports = Vec::new();
        for import in module.imports() {
            let ExternType::Func(ty) = import.ty() else {
                return Err(format!("import {} is not a function", import.name()));
            };
            let results: Vec<ValType> = ty.results().collect();
            let stub = Func::new(&mut store, ty, move |_, _, out| {
                for (slot, ty) in out.iter_mut().zip(&results) {
                    *slot = match ty {
                        ValType::I64 => Val::I64(0),
                        ValType::F32 => Val::F32(0),
                        ValType::F64 => Val::F64(0),
                        _ => Val::I32(0),
                    };
                }
                Ok(())
            });
            imports.push(stub.into());
        }
        let instance = Instance::new(&mut store, &module, &imports).map_err(err)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or("no exported memory")?;
        let alloc = instance
            .get_typed_func(&mut store, "mg_alloc")
            .map_err(err)?;
        let setup = instance
            .get_typed_func(&mut store, "mg_setup")
            .map_err(err)?;
        let mut ops = Vec::new();
        for op in ["verify", "parse", "digest", "hit"] {
            let f = instance
                .get_typed_func(&mut store, &format!("mg_{op}"))
                .map_err(err)?;
            ops.push((op, f));
        }
        Ok(Micro {
            store,
            memory,
            alloc,
            setup,
            ops,
        })
    }

    fn put(&mut self, text: &str) -> Res<(u32, u32)> {
        let len = u32::try_from(text.len()).map_err(err)?;
        let ptr = self.alloc.call(&mut self.store, len).map_err(err)?;
        self.memory
            .write(&mut self.store, ptr as usize, text.as_bytes())
            .map_err(err)?;
        Ok((ptr, len))
    }

    fn setup(&mut self, case: &Value) -> Res<()> {
        let text = |k: &str| {
            case.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (jp, jl) = self.put(&text("jwks"))?;
        let (tp, tl) = self.put(&text("token"))?;
        let (ip, il) = self.put(&text("iss"))?;
        let now = case.get("now").and_then(Value::as_u64).unwrap_or(0);
        match self
            .setup
            .call(&mut self.store, (jp, jl, tp, tl, ip, il, now))
        {
            Ok(0) => Ok(()),
            other => Err(format!("setup failed: {other:?}")),
        }
    }

    /// µs per call of `op`: iterations for ~100 ms batches after a ~30 ms warm-up, median of 7.
    fn time(&mut self, op: usize) -> Res<f64> {
        let (name, f) = self.ops.get(op).cloned().ok_or("no such op")?;
        let mut n = 1u32;
        let start = Instant::now();
        while start.elapsed().as_millis() < 30 {
            f.call(&mut self.store, n).map_err(err)?;
            n = n.saturating_mul(2);
        }
        let per = start.elapsed().as_secs_f64() / f64::from(n.saturating_sub(1).max(1));
        let iters = ((0.1 / per).round() as u32).clamp(1, 1_000_000);
        let mut samples = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let ok = f.call(&mut self.store, iters).map_err(err)?;
            if ok != iters {
                return Err(format!("{name}: {ok}/{iters} succeeded"));
            }
            samples.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(iters));
        }
        samples.sort_by(f64::total_cmp);
        samples
            .get(3)
            .copied()
            .ok_or_else(|| "no samples".to_owned())
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cases, out, module] = args.as_slice() else {
        return Err("usage: micro_wasmtime <micro-cases.json> <out.json> <module.wasm>".into());
    };
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(cases).map_err(err)?).map_err(err)?;
    let bytes = std::fs::metadata(module).map_err(err)?.len();
    let mut micro = Micro::load(module)?;
    let mut results = Vec::new();
    for case in &cases {
        micro.setup(case)?;
        let alg = case.get("alg").and_then(Value::as_str).unwrap_or("?");
        let mut row = serde_json::Map::new();
        row.insert("alg".into(), json!(alg));
        let mut line = format!("wasmtime {alg:6}");
        for op in 0..micro.ops.len() {
            let us = micro.time(op)?;
            let name = micro.ops.get(op).map_or("?", |(n, _)| n);
            line.push_str(&format!("   {name} {us:.2} us"));
            row.insert(format!("{name}_us"), json!(us));
        }
        println!("{line}");
        results.push(Value::Object(row));
    }
    let doc = json!({ "label": "wasmtime", "wasm_bytes": bytes, "results": results });
    std::fs::write(out, serde_json::to_string_pretty(&doc).map_err(err)?).map_err(err)?;
    Ok(())
}
