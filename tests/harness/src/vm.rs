//! One worker VM: a wasmtime `Store` + `Instance` of the module, and Envoy's side of every
//! `env.proxy_*` import the Rust SDK 0.2 uses.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use wasmtime::{
    Caller, Engine, Func, Instance, Linker, Memory, Module, Result, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc, Val, WasmTy, format_err,
};

use crate::abi::{
    self, LogLevel, buffer_type, map_type, metric_type, serialize_pairs, status, stream_type,
};
use crate::calls::CallKind;
use crate::state::{
    CallRecord, CallResponse, Headers, LocalResponse, LogEntry, Metric, MetricKind, Queue, Shared,
    Stream,
};

/// Everything a host function can reach from a `Caller`.
pub(crate) struct VmState {
    pub worker: usize,
    pub shared: Rc<RefCell<Shared>>,
    pub limits: StoreLimits,
    pub memory: Option<Memory>,
    pub malloc: Option<TypedFunc<i32, i32>>,
    /// The export `malloc` is bound to (`malloc` or `proxy_on_memory_allocate`), for the record.
    pub malloc_name: &'static str,
    /// Every ABI crossing of this VM, counted (see `crate::calls`).
    pub crossings: BTreeMap<(CallKind, &'static str), u64>,
    pub vm_id: String,
    pub root_id: String,
    pub plugin_name: String,
    pub root_context: u32,
    pub next_context_id: u32,
    /// The context the host is calling into, and the one `proxy_set_effective_context` chose.
    pub current: u32,
    pub effective: Option<u32>,
    pub streams: BTreeMap<u32, Rc<RefCell<Stream>>>,
    /// Available to the guest only inside `proxy_on_configure`, as in Envoy.
    pub plugin_config: Option<Vec<u8>>,
    pub vm_config: Vec<u8>,
    /// Properties every context sees (NUL-joined path → encoded value).
    pub global_properties: HashMap<String, Vec<u8>>,
    pub tick_period_ms: u32,
    pub next_tick_ns: Option<u64>,
    pub calls: BTreeMap<u32, CallRecord>,
    pub next_call_token: u32,
    pub call_response: Option<CallResponse>,
    /// `proxy_get_status` per context: (code, message).
    pub status: HashMap<u32, (u32, String)>,
    pub metric_ids: HashMap<u32, String>,
    pub next_metric_id: [u32; 3],
    pub done_pending: bool,
    pub done_called: bool,
}

impl VmState {
    pub fn new(worker: usize, shared: Rc<RefCell<Shared>>, memory_limit: usize) -> Self {
        Self {
            worker,
            shared,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            memory: None,
            malloc: None,
            malloc_name: "malloc",
            crossings: BTreeMap::new(),
            vm_id: String::new(),
            root_id: String::new(),
            plugin_name: String::new(),
            root_context: 1,
            next_context_id: 2,
            current: 0,
            effective: None,
            streams: BTreeMap::new(),
            plugin_config: None,
            vm_config: Vec::new(),
            global_properties: HashMap::new(),
            tick_period_ms: 0,
            next_tick_ns: None,
            calls: BTreeMap::new(),
            next_call_token: 1,
            call_response: None,
            status: HashMap::new(),
            metric_ids: HashMap::new(),
            next_metric_id: [0, 1, 2],
            done_pending: false,
            done_called: false,
        }
    }

    fn context(&self) -> u32 {
        self.effective.unwrap_or(self.current)
    }

    fn stream(&self) -> Option<Rc<RefCell<Stream>>> {
        self.streams.get(&self.context()).cloned()
    }

    /// Records one ABI crossing for the VM and, when the context it happens in (the effective
    /// one, as for every host function) is an HTTP stream, for that stream. The only place that
    /// counts: imports reach it through [`import`], entries through `Worker::call_func` and
    /// `copy_out`.
    pub fn record(&mut self, kind: CallKind, name: &'static str) {
        *self.crossings.entry((kind, name)).or_insert(0) += 1;
        if let Some(s) = self.streams.get(&self.context()) {
            s.borrow_mut().crossings.push((kind, name));
        }
    }
}

/// A worker VM.
pub(crate) struct Worker {
    pub store: Store<VmState>,
    pub instance: Instance,
    /// Set when the VM trapped: like Envoy, a failed VM is not called again.
    pub failed: Option<String>,
    pub fuel: u64,
}

impl Worker {
    pub fn instantiate(
        engine: &Engine,
        module: &Module,
        linker: &Linker<VmState>,
        state: VmState,
        fuel: u64,
    ) -> Result<Self> {
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_fuel(fuel)?;
        let instance = linker.instantiate(&mut store, module)?;
        let memory = instance.get_memory(&mut store, "memory");
        if memory.is_none() {
            return Err(format_err!("the module exports no `memory`"));
        }
        let (malloc_name, malloc) = match instance.get_typed_func::<i32, i32>(&mut store, "malloc")
        {
            Ok(f) => ("malloc", f),
            Err(_) => (
                "proxy_on_memory_allocate",
                instance
                    .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
                    .map_err(|e| format_err!("the module exports no allocator (`malloc`): {e}"))?,
            ),
        };
        if instance
            .get_func(&mut store, "proxy_abi_version_0_2_1")
            .is_none()
        {
            return Err(format_err!(
                "the module does not export proxy_abi_version_0_2_1 (not a proxy-wasm 0.2.1 module)"
            ));
        }
        store.data_mut().memory = memory;
        store.data_mut().malloc = Some(malloc);
        store.data_mut().malloc_name = malloc_name;
        Ok(Self {
            store,
            instance,
            failed: None,
            fuel,
        })
    }

    /// Calls an exported callback with i32 arguments, as context `context`. A missing export is
    /// skipped (Envoy does the same) and yields `None`.
    pub fn call(&mut self, name: &'static str, context: u32, args: &[i32]) -> Result<Option<i32>> {
        if let Some(why) = &self.failed {
            return Err(format_err!(
                "worker {} is failed (an earlier call trapped), refusing {name}: {why}",
                self.store.data().worker
            ));
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        self.call_func(func, name, context, args)
    }

    fn call_func(
        &mut self,
        func: Func,
        name: &'static str,
        context: u32,
        args: &[i32],
    ) -> Result<Option<i32>> {
        let worker = self.store.data().worker;
        self.store.set_fuel(self.fuel)?;
        {
            let d = self.store.data_mut();
            d.current = context;
            d.effective = None;
            d.record(CallKind::Entry, name);
        }
        let logs_before = self.store.data().shared.borrow().logs.len();
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let n_results = func.ty(&self.store).results().len();
        let mut results = vec![Val::I32(0); n_results];
        let outcome = func.call(&mut self.store, &params, &mut results);
        self.store.data_mut().effective = None;
        // Fuel is one unit per wasm instruction: what this callback executed (nested allocator
        // re-entries included), charged to its context.
        let used = self
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(self.fuel));
        if let Some(s) = self.store.data().streams.get(&context) {
            s.borrow_mut().instructions += used;
        }
        match outcome {
            Ok(()) => Ok(results.first().and_then(Val::i32)),
            Err(e) => {
                let shared = self.store.data().shared.borrow();
                let panic_lines: Vec<String> = shared
                    .logs
                    .iter()
                    .skip(logs_before)
                    .filter(|l| l.worker == worker && l.level == LogLevel::Critical)
                    .map(|l| l.message.clone())
                    .collect();
                drop(shared);
                let mut msg = if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
                    format!(
                        "worker {worker}: {name}{args:?} exceeded the execution budget of {} \
                         wasm instructions (a runaway loop?)",
                        self.fuel
                    )
                } else {
                    format!("worker {worker}: {name}{args:?} trapped: {e:?}")
                };
                if !panic_lines.is_empty() {
                    msg.push_str("\nguest panic (logged by the SDK at critical level): ");
                    msg.push_str(&panic_lines.join("\n"));
                }
                self.failed = Some(msg.clone());
                Err(format_err!("{msg}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Guest memory.

type C<'a> = Caller<'a, VmState>;

fn read(c: &mut C<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = c.data().memory?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    mem.data(&*c).get(start..end).map(<[u8]>::to_vec)
}

fn read_str(c: &mut C<'_>, ptr: i32, len: i32) -> Option<String> {
    read(c, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn write(c: &mut C<'_>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(mem) = c.data().memory else {
        return false;
    };
    let start = ptr as u32 as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match mem.data_mut(&mut *c).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn write_u32(c: &mut C<'_>, ptr: i32, v: u32) -> bool {
    write(c, ptr, &v.to_le_bytes())
}

/// Envoy's `copyToPointerSize`: allocate in the guest with its `malloc`, copy, and store the
/// pointer and size. An empty value is returned as (0, 0) without allocating.
fn copy_out(c: &mut C<'_>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    if bytes.is_empty() {
        if !write_u32(c, ptr_ptr, 0) || !write_u32(c, size_ptr, 0) {
            return Ok(status::INVALID_MEMORY_ACCESS);
        }
        return Ok(status::OK);
    }
    let malloc = c
        .data()
        .malloc
        .clone()
        .ok_or_else(|| format_err!("no guest allocator"))?;
    let name = c.data().malloc_name;
    c.data_mut().record(CallKind::Entry, name);
    let addr = malloc.call(&mut *c, bytes.len() as i32)?;
    if addr == 0 || !write(c, addr, bytes) {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    if !write_u32(c, ptr_ptr, addr as u32) || !write_u32(c, size_ptr, bytes.len() as u32) {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    Ok(status::OK)
}

macro_rules! try_mem {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(status::INVALID_MEMORY_ACCESS),
        }
    };
}

fn log_line(c: &mut C<'_>, level: LogLevel, message: String) {
    let entry = LogEntry {
        worker: c.data().worker,
        context_id: c.data().context(),
        level,
        message,
    };
    eprintln!("meshguard-harness: {entry}");
    c.data().shared.borrow_mut().logs.push(entry);
}

fn note(c: &mut C<'_>, text: String) {
    eprintln!("meshguard-harness note: {text}");
    c.data().shared.borrow_mut().notes.push(text);
}

// ---------------------------------------------------------------------------------------------
// Header maps.

/// Runs `f` on the map `ty` of the current context if Envoy has it at this moment (`None` when it
/// would be a null map). `mutable`: Envoy's `getMap` (HTTP-call response maps are read-only).
fn with_map<R>(
    c: &mut C<'_>,
    ty: i32,
    mutable: bool,
    f: impl FnOnce(&mut Headers) -> R,
) -> Option<R> {
    match ty {
        map_type::HTTP_CALL_RESPONSE_HEADERS | map_type::HTTP_CALL_RESPONSE_TRAILERS => {
            if mutable {
                return None;
            }
            let resp = c.data_mut().call_response.as_mut()?;
            if ty == map_type::HTTP_CALL_RESPONSE_HEADERS {
                Some(f(&mut resp.headers))
            } else {
                Some(f(&mut resp.trailers))
            }
        }
        map_type::REQUEST_HEADERS
        | map_type::REQUEST_TRAILERS
        | map_type::RESPONSE_HEADERS
        | map_type::RESPONSE_TRAILERS => {
            let stream = c.data().stream()?;
            let mut s = stream.borrow_mut();
            let s = &mut *s;
            match ty {
                map_type::REQUEST_HEADERS if s.req_headers_live => Some(f(&mut s.req_headers)),
                map_type::REQUEST_TRAILERS if s.req_trailers_live => s.req_trailers.as_mut().map(f),
                map_type::RESPONSE_HEADERS if s.resp_headers_live => Some(f(&mut s.resp_headers)),
                map_type::RESPONSE_TRAILERS if s.resp_trailers_live => {
                    s.resp_trailers.as_mut().map(f)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn lookup_property(c: &mut C<'_>, path: &str) -> Option<Vec<u8>> {
    let d = c.data();
    let stream = d.stream();
    if let Some(s) = &stream
        && let Some(v) = s.borrow().properties.get(path)
    {
        return Some(v.clone());
    }
    match path {
        "plugin_name" => return Some(d.plugin_name.clone().into_bytes()),
        "plugin_root_id" => return Some(d.root_id.clone().into_bytes()),
        "plugin_vm_id" => return Some(d.vm_id.clone().into_bytes()),
        _ => {}
    }
    if let Some(v) = d.global_properties.get(path) {
        return Some(v.clone());
    }
    let s = stream?;
    let s = s.borrow();
    let parts: Vec<&str> = path.split('\0').collect();
    if parts.first() == Some(&"request") && s.req_headers_live {
        let h = &s.req_headers;
        let text = |name: &str| h.get_bytes(name).map(<[u8]>::to_vec);
        match parts.as_slice() {
            ["request", "path"] => return text(":path"),
            ["request", "url_path"] => {
                return text(":path")
                    .map(|p| p.split(|b| *b == b'?').next().unwrap_or(&[]).to_vec());
            }
            ["request", "query"] => {
                return text(":path").map(|p| match p.iter().position(|b| *b == b'?') {
                    Some(i) => p.get(i + 1..).unwrap_or(&[]).to_vec(),
                    None => Vec::new(),
                });
            }
            ["request", "host"] => return text(":authority"),
            ["request", "method"] => return text(":method"),
            ["request", "scheme"] => return text(":scheme"),
            ["request", "id"] => return text("x-request-id"),
            ["request", "referer"] => return text("referer"),
            ["request", "useragent"] => return text("user-agent"),
            ["request", "protocol"] => return Some(b"HTTP/1.1".to_vec()),
            ["request", "headers"] => return Some(serialize_pairs(&h.0)),
            ["request", "headers", name] => return text(name),
            _ => {}
        }
    }
    s.filter_properties.get(path).cloned()
}

// ---------------------------------------------------------------------------------------------
// The linker: every host function.

/// A host function's closure, `Fn(Caller, args…) -> Result<i32>` of any arity the ABI needs:
/// what [`import`] registers. `Args` is the tuple of argument types (one impl per arity).
trait HostFn<Args>: Send + Sync + 'static {
    fn define(self, l: &mut Linker<VmState>, name: &'static str) -> Result<()>;
}

macro_rules! host_fn_arity {
    ($($a:ident),*) => {
        #[allow(non_snake_case)]
        impl<F, $($a: WasmTy),*> HostFn<($($a,)*)> for F
        where
            F: Fn(C<'_>, $($a),*) -> Result<i32> + Send + Sync + 'static,
        {
            fn define(self, l: &mut Linker<VmState>, name: &'static str) -> Result<()> {
                l.func_wrap("env", name, move |mut c: C<'_>, $($a: $a),*| -> Result<i32> {
                    c.data_mut().record(CallKind::Import, name);
                    self(c, $($a),*)
                })?;
                Ok(())
            }
        }
    };
}
host_fn_arity!();
host_fn_arity!(A1);
host_fn_arity!(A1, A2);
host_fn_arity!(A1, A2, A3);
host_fn_arity!(A1, A2, A3, A4);
host_fn_arity!(A1, A2, A3, A4, A5);
host_fn_arity!(A1, A2, A3, A4, A5, A6);
host_fn_arity!(A1, A2, A3, A4, A5, A6, A7);
host_fn_arity!(A1, A2, A3, A4, A5, A6, A7, A8);
host_fn_arity!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
host_fn_arity!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);

/// Defines the host function `env.<name>`. Every import is registered here, so this is the one
/// place that records host calls (`VmState::record`, before the function's body runs).
fn import<Args>(l: &mut Linker<VmState>, name: &'static str, f: impl HostFn<Args>) -> Result<()> {
    f.define(l, name)
}

pub(crate) fn linker(engine: &Engine, module: &Module) -> Result<Linker<VmState>> {
    let mut l: Linker<VmState> = Linker::new(engine);

    // --- logging and time ---
    import(
        &mut l,
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            let Some(level) = LogLevel::from_i32(level) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let msg = try_mem!(read_str(&mut c, ptr, len));
            log_line(&mut c, level, msg);
            Ok(status::OK)
        },
    )?;
    import(
        &mut l,
        "proxy_get_log_level",
        |mut c: C<'_>, ptr: i32| -> Result<i32> {
            let level = c.data().shared.borrow().log_level as u32;
            Ok(if write_u32(&mut c, ptr, level) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ptr: i32| -> Result<i32> {
            let now = c.data().shared.borrow().clock_ns;
            Ok(if write(&mut c, ptr, &now.to_le_bytes()) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> Result<i32> {
            let now = c.data().shared.borrow().clock_ns;
            let d = c.data_mut();
            d.tick_period_ms = period as u32;
            d.next_tick_ns = if period as u32 > 0 {
                Some(now + u64::from(period as u32) * 1_000_000)
            } else {
                None
            };
            Ok(status::OK)
        },
    )?;

    // --- buffers ---
    import(
        &mut l,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, ty: i32, start: i32, max: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let d = c.data();
            let buffer: Option<Vec<u8>> = match ty {
                buffer_type::HTTP_REQUEST_BODY => Some(
                    d.stream()
                        .map(|s| {
                            let s = s.borrow();
                            if s.req_body_live {
                                s.req_body.clone()
                            } else {
                                Vec::new()
                            }
                        })
                        .unwrap_or_default(),
                ),
                buffer_type::HTTP_RESPONSE_BODY => Some(
                    d.stream()
                        .map(|s| {
                            let s = s.borrow();
                            if s.resp_body_live {
                                s.resp_body.clone()
                            } else {
                                Vec::new()
                            }
                        })
                        .unwrap_or_default(),
                ),
                buffer_type::HTTP_CALL_RESPONSE_BODY => {
                    d.call_response.as_ref().map(|r| r.body.clone())
                }
                buffer_type::VM_CONFIGURATION => Some(d.vm_config.clone()),
                buffer_type::PLUGIN_CONFIGURATION => d.plugin_config.clone(),
                buffer_type::DOWNSTREAM_DATA
                | buffer_type::UPSTREAM_DATA
                | buffer_type::GRPC_RECEIVE_BUFFER
                | buffer_type::CALL_DATA => Some(Vec::new()),
                _ => return Ok(status::BAD_ARGUMENT),
            };
            let Some(buffer) = buffer else {
                return Ok(status::NOT_FOUND);
            };
            let start = start as u32 as usize;
            let max = max as u32 as usize;
            if start >= buffer.len() || max == 0 {
                return Ok(status::OK);
            }
            let end = start.saturating_add(max).min(buffer.len());
            let slice = buffer.get(start..end).unwrap_or(&[]).to_vec();
            copy_out(&mut c, &slice, ptr_ptr, size_ptr)
        },
    )?;
    import(
        &mut l,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, ty: i32, start: i32, len: i32, data: i32, size: i32| -> Result<i32> {
            let bytes = try_mem!(read(&mut c, data, size));
            let Some(stream) = c.data().stream() else {
                return Ok(status::BAD_ARGUMENT);
            };
            let mut s = stream.borrow_mut();
            let s = &mut *s;
            let body = match ty {
                buffer_type::HTTP_REQUEST_BODY if s.req_body_live => &mut s.req_body,
                buffer_type::HTTP_RESPONSE_BODY if s.resp_body_live => &mut s.resp_body,
                _ => return Ok(status::BAD_ARGUMENT),
            };
            let start = start as u32 as usize;
            let len = len as u32 as usize;
            // Envoy's Buffer::copyFrom: start 0 drains `len` then prepends; start at/after the
            // end appends; anything else is BAD_ARGUMENT.
            if start == 0 {
                let drain = len.min(body.len());
                body.drain(..drain);
                let mut new = bytes;
                new.extend_from_slice(body);
                *body = new;
            } else if start >= body.len() {
                body.extend_from_slice(&bytes);
            } else {
                return Ok(status::BAD_ARGUMENT);
            }
            Ok(status::OK)
        },
    )?;

    // --- header maps ---
    import(
        &mut l,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, ty: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            if !(0..=7).contains(&ty) {
                return Ok(status::BAD_ARGUMENT);
            }
            // Envoy answers OK with an empty map when the map does not exist now.
            let pairs = with_map(&mut c, ty, false, |h| h.0.clone()).unwrap_or_default();
            if pairs.is_empty() {
                return copy_out(&mut c, &[], ptr_ptr, size_ptr);
            }
            copy_out(&mut c, &serialize_pairs(&pairs), ptr_ptr, size_ptr)
        },
    )?;
    import(
        &mut l,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, ty: i32, ptr: i32, size: i32| -> Result<i32> {
            let raw = try_mem!(read(&mut c, ptr, size));
            let Some(pairs) = abi::deserialize_pairs(&raw) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let done = with_map(&mut c, ty, true, |h| {
                *h = Headers::from_pairs(&pairs);
            });
            Ok(if done.is_some() {
                status::OK
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;
    import(
        &mut l,
        "proxy_get_header_map_value",
        |mut c: C<'_>, ty: i32, kp: i32, ks: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            match with_map(&mut c, ty, false, |h| h.get_bytes(&key).map(<[u8]>::to_vec)) {
                None => Ok(status::BAD_ARGUMENT),
                Some(None) => Ok(status::NOT_FOUND),
                Some(Some(v)) => copy_out(&mut c, &v, ptr_ptr, size_ptr),
            }
        },
    )?;
    import(
        &mut l,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32| -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            let value = try_mem!(read(&mut c, vp, vs));
            let done = with_map(&mut c, ty, true, |h| h.replace(&key, &value));
            Ok(if done.is_some() {
                status::OK
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;
    import(
        &mut l,
        "proxy_add_header_map_value",
        |mut c: C<'_>, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32| -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            let value = try_mem!(read(&mut c, vp, vs));
            let done = with_map(&mut c, ty, true, |h| h.add(&key, &value));
            Ok(if done.is_some() {
                status::OK
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;
    import(
        &mut l,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, ty: i32, kp: i32, ks: i32| -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            let done = with_map(&mut c, ty, true, |h| h.remove(&key));
            Ok(if done.is_some() {
                status::OK
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;

    // --- properties ---
    import(
        &mut l,
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, ps: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let path = try_mem!(read_str(&mut c, pp, ps));
            match lookup_property(&mut c, &path) {
                None => Ok(status::NOT_FOUND),
                Some(v) => copy_out(&mut c, &v, ptr_ptr, size_ptr),
            }
        },
    )?;
    import(
        &mut l,
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, ps: i32, vp: i32, vs: i32| -> Result<i32> {
            let path = try_mem!(read_str(&mut c, pp, ps));
            let value = try_mem!(read(&mut c, vp, vs));
            // Envoy stores it in the stream's filter state; a root context has none.
            let Some(stream) = c.data().stream() else {
                return Ok(status::NOT_FOUND);
            };
            stream.borrow_mut().filter_properties.insert(path, value);
            Ok(status::OK)
        },
    )?;

    // --- shared data (Envoy's SharedData: per vm_id, CAS) ---
    import(
        &mut l,
        "proxy_get_shared_data",
        |mut c: C<'_>,
         kp: i32,
         ks: i32,
         ptr_ptr: i32,
         size_ptr: i32,
         cas_ptr: i32|
         -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            let vm_id = c.data().vm_id.clone();
            let found = c
                .data()
                .shared
                .borrow()
                .shared_data
                .get(&(vm_id, key))
                .cloned();
            let Some((value, cas)) = found else {
                return Ok(status::NOT_FOUND);
            };
            let st = copy_out(&mut c, &value, ptr_ptr, size_ptr)?;
            if st != status::OK {
                return Ok(st);
            }
            Ok(if write_u32(&mut c, cas_ptr, cas) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, ks: i32, vp: i32, vs: i32, cas: i32| -> Result<i32> {
            let key = try_mem!(read_str(&mut c, kp, ks));
            let value = try_mem!(read(&mut c, vp, vs));
            let vm_id = c.data().vm_id.clone();
            let cas = cas as u32;
            let shared = c.data().shared.clone();
            let mut sh = shared.borrow_mut();
            let k = (vm_id, key);
            if let Some((_, current)) = sh.shared_data.get(&k)
                && cas != 0
                && cas != *current
            {
                return Ok(status::CAS_MISMATCH);
            }
            let next = sh.next_cas();
            sh.shared_data.insert(k, (value, next));
            Ok(status::OK)
        },
    )?;

    // --- shared queues ---
    import(
        &mut l,
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, ns: i32, token_ptr: i32| -> Result<i32> {
            let name = try_mem!(read_str(&mut c, np, ns));
            let (worker, root, vm_id) = {
                let d = c.data();
                (d.worker, d.root_context, d.vm_id.clone())
            };
            let shared = c.data().shared.clone();
            let token = {
                let mut sh = shared.borrow_mut();
                let key = (vm_id, name);
                match sh.queue_tokens.get(&key) {
                    Some(t) => *t,
                    None => {
                        let t = sh.next_queue_token;
                        sh.next_queue_token += 1;
                        sh.queue_tokens.insert(key, t);
                        sh.queues.insert(
                            t,
                            Queue {
                                owner_worker: worker,
                                owner_context: root,
                                items: Default::default(),
                            },
                        );
                        t
                    }
                }
            };
            Ok(if write_u32(&mut c, token_ptr, token) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, vp: i32, vs: i32, np: i32, ns: i32, token_ptr: i32| -> Result<i32> {
            let vm_id = try_mem!(read_str(&mut c, vp, vs));
            let name = try_mem!(read_str(&mut c, np, ns));
            let token = c
                .data()
                .shared
                .borrow()
                .queue_tokens
                .get(&(vm_id, name))
                .copied();
            let Some(token) = token else {
                return Ok(status::NOT_FOUND);
            };
            Ok(if write_u32(&mut c, token_ptr, token) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, token: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let item = {
                let shared = c.data().shared.clone();
                let mut sh = shared.borrow_mut();
                let Some(q) = sh.queues.get_mut(&(token as u32)) else {
                    return Ok(status::NOT_FOUND);
                };
                match q.items.pop_front() {
                    Some(item) => item,
                    None => return Ok(status::EMPTY),
                }
            };
            copy_out(&mut c, &item, ptr_ptr, size_ptr)
        },
    )?;
    import(
        &mut l,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, token: i32, vp: i32, vs: i32| -> Result<i32> {
            let value = try_mem!(read(&mut c, vp, vs));
            let shared = c.data().shared.clone();
            let mut sh = shared.borrow_mut();
            let Some(q) = sh.queues.get_mut(&(token as u32)) else {
                return Ok(status::NOT_FOUND);
            };
            q.items.push_back(value);
            let ev = (q.owner_worker, q.owner_context, token as u32);
            // Envoy posts proxy_on_queue_ready to the owner's thread: it runs after this call.
            sh.queue_events.push_back(ev);
            Ok(status::OK)
        },
    )?;

    // --- stream control ---
    import(
        &mut l,
        "proxy_continue_stream",
        |c: C<'_>, ty: i32| -> Result<i32> {
            let stream = c.data().stream();
            match ty {
                stream_type::HTTP_REQUEST => {
                    if let Some(s) = stream {
                        s.borrow_mut().resume_request = true;
                    }
                    Ok(status::OK)
                }
                stream_type::HTTP_RESPONSE => {
                    if let Some(s) = stream {
                        s.borrow_mut().resume_response = true;
                    }
                    Ok(status::OK)
                }
                stream_type::DOWNSTREAM => Ok(status::OK),
                stream_type::UPSTREAM => Ok(status::UNIMPLEMENTED),
                _ => Ok(status::BAD_ARGUMENT),
            }
        },
    )?;
    import(
        &mut l,
        "proxy_close_stream",
        |c: C<'_>, ty: i32| -> Result<i32> {
            if (ty == stream_type::HTTP_REQUEST || ty == stream_type::HTTP_RESPONSE)
                && let Some(s) = c.data().stream()
            {
                s.borrow_mut().close_requested = true;
            }
            Ok(if (0..=3).contains(&ty) {
                status::OK
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;
    import(
        &mut l,
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         dp: i32,
         ds: i32,
         bp: i32,
         bs: i32,
         hp: i32,
         hs: i32,
         grpc: i32|
         -> Result<i32> {
            let details = try_mem!(read_str(&mut c, dp, ds));
            let body = try_mem!(read(&mut c, bp, bs));
            let raw = try_mem!(read(&mut c, hp, hs));
            let Some(pairs) = abi::deserialize_pairs(&raw) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let Some(stream) = c.data().stream() else {
                note(
                    &mut c,
                    "proxy_send_local_response from a root context: Envoy ignores it".into(),
                );
                return Ok(status::OK);
            };
            // Deferred by Envoy until the current VM call returns.
            stream.borrow_mut().pending_local.push(LocalResponse {
                status: code as u32,
                details,
                body,
                headers: Headers::from_pairs(&pairs),
                grpc_status: grpc,
            });
            Ok(status::OK)
        },
    )?;

    // --- HTTP calls ---
    import(
        &mut l,
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         us: i32,
         hp: i32,
         hs: i32,
         bp: i32,
         bs: i32,
         tp: i32,
         ts: i32,
         timeout: i32,
         token_ptr: i32|
         -> Result<i32> {
            let cluster = try_mem!(read_str(&mut c, up, us));
            let raw_headers = try_mem!(read(&mut c, hp, hs));
            let body = try_mem!(read(&mut c, bp, bs));
            let raw_trailers = try_mem!(read(&mut c, tp, ts));
            let (Some(h), Some(t)) = (
                abi::deserialize_pairs(&raw_headers),
                abi::deserialize_pairs(&raw_trailers),
            ) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let known = match &c.data().shared.borrow().clusters {
                None => true,
                Some(list) => list.contains(&cluster),
            };
            if !known {
                note(
                    &mut c,
                    format!("proxy_http_call to unknown cluster {cluster:?}: BAD_ARGUMENT"),
                );
                return Ok(status::BAD_ARGUMENT);
            }
            let mut headers = Headers::from_pairs(&h);
            if !headers.contains(":path")
                || !headers.contains(":method")
                || !headers.contains(":authority")
            {
                note(
                    &mut c,
                    format!("proxy_http_call without :path/:method/:authority: {headers:?}"),
                );
                return Ok(status::BAD_ARGUMENT);
            }
            if !body.is_empty() {
                headers.replace("content-length", body.len().to_string().as_bytes());
            }
            let now = c.data().shared.borrow().clock_ns;
            let d = c.data_mut();
            let token = d.next_call_token;
            d.next_call_token += 1;
            let record = CallRecord {
                worker: d.worker,
                token,
                context_id: d.context(),
                cluster,
                headers,
                body,
                trailers: Headers::from_pairs(&t),
                timeout_ms: timeout as u32,
                dispatched_at_ns: now,
            };
            d.calls.insert(token, record);
            Ok(if write_u32(&mut c, token_ptr, token) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: i32, msg_ptr: i32, msg_size: i32| -> Result<i32> {
            let ctx = c.data().context();
            let (code, msg) = c
                .data()
                .status
                .get(&ctx)
                .cloned()
                .unwrap_or((0, String::new()));
            if !write_u32(&mut c, code_ptr, code) {
                return Ok(status::INVALID_MEMORY_ACCESS);
            }
            copy_out(&mut c, msg.as_bytes(), msg_ptr, msg_size)
        },
    )?;
    import(
        &mut l,
        "proxy_set_effective_context",
        |mut c: C<'_>, ctx: i32| -> Result<i32> {
            let ctx = ctx as u32;
            let d = c.data_mut();
            let exists =
                ctx == d.root_context || d.streams.get(&ctx).is_some_and(|s| !s.borrow().complete);
            if !exists {
                return Ok(status::BAD_ARGUMENT);
            }
            d.effective = Some(ctx);
            Ok(status::OK)
        },
    )?;
    import(&mut l, "proxy_done", |mut c: C<'_>| -> Result<i32> {
        let d = c.data_mut();
        if d.done_pending {
            d.done_pending = false;
            d.done_called = true;
            Ok(status::OK)
        } else {
            Ok(status::NOT_FOUND)
        }
    })?;

    // --- metrics (ids carry the type in the low two bits, as in Envoy) ---
    import(
        &mut l,
        "proxy_define_metric",
        |mut c: C<'_>, ty: i32, np: i32, ns: i32, id_ptr: i32| -> Result<i32> {
            let kind = match ty {
                metric_type::COUNTER => MetricKind::Counter,
                metric_type::GAUGE => MetricKind::Gauge,
                metric_type::HISTOGRAM => MetricKind::Histogram,
                _ => return Ok(status::BAD_ARGUMENT),
            };
            let name = try_mem!(read_str(&mut c, np, ns));
            let id = {
                let d = c.data_mut();
                let slot = d
                    .next_metric_id
                    .get_mut(ty as usize)
                    .ok_or_else(|| format_err!("metric type"))?;
                let id = *slot;
                *slot += metric_type::ID_INCREMENT;
                d.metric_ids.insert(id, name.clone());
                id
            };
            c.data()
                .shared
                .borrow_mut()
                .metrics
                .entry(name)
                .or_insert(Metric {
                    kind,
                    value: 0,
                    samples: Vec::new(),
                });
            Ok(if write_u32(&mut c, id_ptr, id) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;
    import(
        &mut l,
        "proxy_increment_metric",
        |c: C<'_>, id: i32, offset: i64| -> Result<i32> {
            let id = id as u32;
            let Some(name) = c.data().metric_ids.get(&id).cloned() else {
                return Ok(if id & metric_type::MASK == metric_type::HISTOGRAM as u32 {
                    status::BAD_ARGUMENT
                } else {
                    status::NOT_FOUND
                });
            };
            let shared = c.data().shared.clone();
            let mut sh = shared.borrow_mut();
            let Some(m) = sh.metrics.get_mut(&name) else {
                return Ok(status::NOT_FOUND);
            };
            match m.kind {
                MetricKind::Counter if offset > 0 => m.value += offset,
                MetricKind::Counter | MetricKind::Histogram => return Ok(status::BAD_ARGUMENT),
                MetricKind::Gauge => m.value += offset,
            }
            Ok(status::OK)
        },
    )?;
    import(
        &mut l,
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| -> Result<i32> {
            let Some(name) = c.data().metric_ids.get(&(id as u32)).cloned() else {
                return Ok(status::NOT_FOUND);
            };
            let shared = c.data().shared.clone();
            let mut sh = shared.borrow_mut();
            let Some(m) = sh.metrics.get_mut(&name) else {
                return Ok(status::NOT_FOUND);
            };
            match m.kind {
                MetricKind::Counter => m.value += value,
                MetricKind::Gauge => m.value = value,
                MetricKind::Histogram => m.samples.push(value as u64),
            }
            Ok(status::OK)
        },
    )?;
    import(
        &mut l,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ptr: i32| -> Result<i32> {
            let id = id as u32;
            let Some(name) = c.data().metric_ids.get(&id).cloned() else {
                return Ok(if id & metric_type::MASK == metric_type::HISTOGRAM as u32 {
                    status::BAD_ARGUMENT
                } else {
                    status::NOT_FOUND
                });
            };
            let m = c.data().shared.borrow().metrics.get(&name).cloned();
            let Some(m) = m else {
                return Ok(status::NOT_FOUND);
            };
            if m.kind == MetricKind::Histogram {
                return Ok(status::BAD_ARGUMENT);
            }
            Ok(if write(&mut c, ptr, &(m.value as u64).to_le_bytes()) {
                status::OK
            } else {
                status::INVALID_MEMORY_ACCESS
            })
        },
    )?;

    // Everything else the module imports (see abi::UNIMPLEMENTED_IMPORTS) traps when called.
    l.define_unknown_imports_as_traps(module)?;
    Ok(l)
}
