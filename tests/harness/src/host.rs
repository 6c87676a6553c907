//! The test-facing API: [`Host`], its builder, requests ([`Exchange`]) and HTTP calls
//! ([`HttpCall`]). Everything runs on the test's thread; Envoy's event loop is simulated by
//! running every consequence of an action (deferred local replies, resumed streams, queue
//! notifications) before the action returns.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Config, Engine, Linker, Module, Result, format_err};

use crate::abi::{self, LogLevel, action};
use crate::calls::HostCalls;
use crate::state::{
    CallRecord, CallResponse, DownstreamResponse, Headers, LocalResponse, LogEntry, Metric, Shared,
    Step, Stream, UpstreamRequest,
};
use crate::vm::{self, VmState, Worker};

/// Default execution budget per call into the guest (wasmtime fuel ≈ wasm instructions).
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Default cap of each VM's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 128 << 20;
/// Default clock: 2026-01-01T00:00:00Z.
pub const DEFAULT_CLOCK_UNIX_SECS: u64 = 1_767_225_600;

/// The process-wide engine (fuel metering on). One per test binary.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        match Engine::new(&config) {
            Ok(e) => e,
            Err(e) => panic!("cannot create the wasmtime engine: {e:?}"),
        }
    })
}

/// Compiles `path` once per test binary (cached by path) and returns the module.
pub fn compile(path: impl AsRef<Path>) -> Result<Module> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    let path = path.as_ref().to_path_buf();
    let cache = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache
        .lock()
        .map_err(|_| format_err!("module cache poisoned"))?;
    if let Some(m) = cache.get(&path) {
        return Ok(m.clone());
    }
    let bytes = std::fs::read(&path).map_err(|e| {
        format_err!(
            "cannot read {}: {e} (build it first: `make wasm`, or `make harness` for the probe)",
            path.display()
        )
    })?;
    let started = Instant::now();
    let module = Module::new(engine(), &bytes)?;
    eprintln!(
        "meshguard-harness: compiled {} ({} KiB) in {:.2?}",
        path.display(),
        bytes.len() / 1024,
        started.elapsed()
    );
    let unexpected: Vec<String> = module
        .imports()
        .filter(|i| matches!(i.ty(), wasmtime::ExternType::Func(_)))
        .map(|i| i.name().to_string())
        .filter(|n| {
            !abi::IMPLEMENTED_IMPORTS.contains(&n.as_str())
                && !abi::UNIMPLEMENTED_IMPORTS.contains(&n.as_str())
        })
        .collect();
    if !unexpected.is_empty() {
        eprintln!(
            "meshguard-harness: {} imports functions unknown to the harness (they trap): {unexpected:?}",
            path.display()
        );
    }
    cache.insert(path, module.clone());
    Ok(module)
}

/// The names of the functions a module exports (proxy-wasm callbacks and the rest), sorted.
/// Envoy calls only the callbacks a module exports; the harness does the same.
pub fn exports(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let module = compile(path)?;
    let mut names: Vec<String> = module
        .exports()
        .filter(|e| matches!(e.ty(), wasmtime::ExternType::Func(_)))
        .map(|e| e.name().to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// A property value, encoded as Envoy encodes it (strings raw, ints 8-byte LE, bools 1 byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prop {
    Str(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl Prop {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Prop::Str(s) => s.as_bytes().to_vec(),
            Prop::Int(i) => i.to_le_bytes().to_vec(),
            Prop::Bool(b) => vec![u8::from(*b)],
            Prop::Bytes(b) => b.clone(),
        }
    }
}

impl From<&str> for Prop {
    fn from(s: &str) -> Self {
        Prop::Str(s.to_string())
    }
}
impl From<String> for Prop {
    fn from(s: String) -> Self {
        Prop::Str(s)
    }
}
impl From<i64> for Prop {
    fn from(i: i64) -> Self {
        Prop::Int(i)
    }
}
impl From<bool> for Prop {
    fn from(b: bool) -> Self {
        Prop::Bool(b)
    }
}
impl From<Vec<u8>> for Prop {
    fn from(b: Vec<u8>) -> Self {
        Prop::Bytes(b)
    }
}

/// `"connection.mtls"` → the NUL-joined key the guest sends.
fn prop_key(dotted: &str) -> String {
    dotted.replace('.', "\0")
}

/// Loads a module and collects the VM/plugin settings; [`HostBuilder::configure`] starts the VMs.
pub struct HostBuilder {
    module: Module,
    workers: usize,
    vm_config: Vec<u8>,
    plugin_name: String,
    root_id: String,
    vm_id: String,
    clusters: Option<Vec<String>>,
    clock_ns: u64,
    log_level: LogLevel,
    fuel: u64,
    memory_limit: usize,
    global_properties: HashMap<String, Vec<u8>>,
}

/// A running set of worker VMs of one module with one plugin configuration: Envoy, for a test.
#[derive(Clone)]
pub struct Host {
    inner: Rc<RefCell<Inner>>,
    shared: Rc<RefCell<Shared>>,
}

impl Host {
    /// Compiles (once per test binary) the module at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<HostBuilder> {
        Ok(Self::from_module(compile(path)?))
    }

    pub fn from_module(module: Module) -> HostBuilder {
        HostBuilder {
            module,
            workers: 1,
            vm_config: Vec::new(),
            plugin_name: "meshguard".into(),
            root_id: "meshguard_root".into(),
            vm_id: String::new(),
            clusters: None,
            clock_ns: DEFAULT_CLOCK_UNIX_SECS * 1_000_000_000,
            log_level: LogLevel::Info,
            fuel: DEFAULT_FUEL,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            global_properties: HashMap::new(),
        }
    }
}

impl HostBuilder {
    /// Number of worker VMs (Envoy's `--concurrency`), each with its own root context and ticks.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
    pub fn vm_config(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.vm_config = bytes.as_ref().to_vec();
        self
    }
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin_name = name.into();
        self
    }
    pub fn root_id(mut self, id: &str) -> Self {
        self.root_id = id.into();
        self
    }
    pub fn vm_id(mut self, id: &str) -> Self {
        self.vm_id = id.into();
        self
    }
    /// Restricts the clusters `proxy_http_call` may name (default: any); others get BAD_ARGUMENT.
    pub fn clusters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.clusters = Some(names.into_iter().map(Into::into).collect());
        self
    }
    /// Start the clock at this Unix time (seconds).
    pub fn clock_unix(mut self, secs: u64) -> Self {
        self.clock_ns = secs * 1_000_000_000;
        self
    }
    /// The level `proxy_get_log_level` reports (default info, like Envoy).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }
    /// Execution budget per call into the guest.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }
    /// Cap of each VM's linear memory, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }
    /// A property every context sees (e.g. `node.metadata…`), dotted path.
    pub fn property(mut self, dotted: &str, value: impl Into<Prop>) -> Self {
        self.global_properties
            .insert(prop_key(dotted), value.into().encode());
        self
    }

    /// Starts every worker VM as Envoy does (`_initialize`, `proxy_on_context_create(root, 0)`,
    /// `proxy_on_vm_start`, `proxy_on_configure`). Fails with the VM's logs when a start or
    /// configure callback returns false or traps.
    pub fn configure(self, plugin_config: impl AsRef<[u8]>) -> Result<Host> {
        let shared = Rc::new(RefCell::new(Shared::new(
            self.clock_ns,
            self.log_level,
            self.clusters.clone(),
        )));
        let engine = engine();
        let linker: Linker<VmState> = vm::linker(engine, &self.module)?;
        let mut workers = Vec::with_capacity(self.workers);
        for w in 0..self.workers {
            let mut state = VmState::new(w, shared.clone(), self.memory_limit);
            state.vm_id = self.vm_id.clone();
            state.root_id = self.root_id.clone();
            state.plugin_name = self.plugin_name.clone();
            state.vm_config = self.vm_config.clone();
            state.global_properties = self.global_properties.clone();
            workers.push(Worker::instantiate(
                engine,
                &self.module,
                &linker,
                state,
                self.fuel,
            )?);
        }
        let inner = Rc::new(RefCell::new(Inner {
            workers,
            shared: shared.clone(),
            requests: 0,
        }));
        let host = Host { inner, shared };
        let plugin_config = plugin_config.as_ref().to_vec();
        for w in 0..self.workers {
            let r = host.inner.borrow_mut().start_vm(w, &plugin_config);
            if let Err(e) = r {
                let logs = host.log_dump(Some(w));
                return Err(format_err!("{e}\nVM logs:\n{logs}"));
            }
        }
        host.inner.borrow_mut().settle()?;
        Ok(host)
    }
}

pub(crate) struct Inner {
    workers: Vec<Worker>,
    shared: Rc<RefCell<Shared>>,
    requests: u64,
}

fn worker_mut(workers: &mut [Worker], w: usize) -> Result<&mut Worker> {
    let n = workers.len();
    workers
        .get_mut(w)
        .ok_or_else(|| format_err!("no worker {w} (the host has {n})"))
}

fn status_of(h: &Headers) -> u32 {
    h.get(":status").and_then(|s| s.parse().ok()).unwrap_or(0)
}

impl Inner {
    fn call(
        &mut self,
        w: usize,
        name: &'static str,
        ctx: u32,
        args: &[i32],
    ) -> Result<Option<i32>> {
        worker_mut(&mut self.workers, w)?.call(name, ctx, args)
    }

    fn start_vm(&mut self, w: usize, plugin_config: &[u8]) -> Result<()> {
        let (root, vm_config_len) = {
            let d = worker_mut(&mut self.workers, w)?.store.data();
            (d.root_context, d.vm_config.len())
        };
        self.call(w, "_initialize", 0, &[])?;
        self.call(w, "proxy_on_context_create", root, &[root as i32, 0])?;
        let ok = self.call(
            w,
            "proxy_on_vm_start",
            root,
            &[root as i32, vm_config_len as i32],
        )?;
        if ok == Some(0) {
            return Err(format_err!("worker {w}: proxy_on_vm_start returned false"));
        }
        worker_mut(&mut self.workers, w)?
            .store
            .data_mut()
            .plugin_config = Some(plugin_config.to_vec());
        let ok = self.call(
            w,
            "proxy_on_configure",
            root,
            &[root as i32, plugin_config.len() as i32],
        );
        worker_mut(&mut self.workers, w)?
            .store
            .data_mut()
            .plugin_config = None;
        if ok? == Some(0) {
            return Err(format_err!(
                "worker {w}: proxy_on_configure returned false (Envoy rejects the configuration)"
            ));
        }
        Ok(())
    }

    /// Runs everything Envoy's event loop would run now: queue notifications and streams that
    /// can make progress (resumed, local reply pending, closed, or never started).
    fn settle(&mut self) -> Result<()> {
        loop {
            let event = self.shared.borrow_mut().queue_events.pop_front();
            if let Some((w, root, token)) = event {
                self.call(
                    w,
                    "proxy_on_queue_ready",
                    root,
                    &[root as i32, token as i32],
                )?;
                continue;
            }
            let mut todo = None;
            for (w, worker) in self.workers.iter().enumerate() {
                if worker.failed.is_some() {
                    continue;
                }
                if let Some(s) = worker
                    .store
                    .data()
                    .streams
                    .values()
                    .find(|s| s.borrow().needs_drive())
                {
                    todo = Some((w, s.clone()));
                    break;
                }
            }
            match todo {
                Some((w, s)) => self.drive(w, &s)?,
                None => return Ok(()),
            }
        }
    }

    fn drive(&mut self, w: usize, rc: &Rc<RefCell<Stream>>) -> Result<()> {
        loop {
            let (ctx, step) = {
                let mut s = rc.borrow_mut();
                if s.complete {
                    return Ok(());
                }
                if s.close_requested {
                    drop(s);
                    return self.finish(w, rc, Some("closed by the filter (proxy_close_stream)"));
                }
                if !s.pending_local.is_empty() {
                    let mut sent = std::mem::take(&mut s.pending_local);
                    let first = sent.remove(0);
                    if !sent.is_empty() {
                        self.shared.borrow_mut().notes.push(format!(
                            "context {}: {} more local replies in the same callback ignored",
                            s.context_id,
                            sent.len()
                        ));
                    }
                    if s.local_response.is_some() {
                        self.shared.borrow_mut().notes.push(format!(
                            "context {}: local reply {} while already replying: ignored",
                            s.context_id, first.status
                        ));
                        continue;
                    }
                    if s.next > Step::ResponseHeaders {
                        drop(s);
                        return self.finish(w, rc, Some("local reply after the response started"));
                    }
                    let mut headers = Headers::new();
                    headers.add(":status", first.status.to_string().as_bytes());
                    if !first.body.is_empty() {
                        headers.add("content-length", first.body.len().to_string().as_bytes());
                        headers.add("content-type", b"text/plain");
                    }
                    for (k, v) in first.headers.iter() {
                        headers.add(k, v);
                    }
                    s.req_headers_live = false;
                    s.req_body_live = false;
                    s.req_trailers_live = false;
                    s.resp_headers = headers;
                    s.resp_body = first.body.clone();
                    s.resp_trailers = None;
                    s.local_response = Some(first);
                    s.next = Step::ResponseHeaders;
                    s.waiting = false;
                    s.resume_request = false;
                    s.resume_response = false;
                    continue;
                }
                if s.waiting {
                    let resumed = if s.next.is_request_side() {
                        std::mem::take(&mut s.resume_request)
                    } else {
                        std::mem::take(&mut s.resume_response)
                    };
                    if !resumed {
                        return Ok(());
                    }
                    s.waiting = false;
                    // Envoy drops its pointers to the paused phase's maps when it continues.
                    if s.next.is_request_side() {
                        s.req_headers_live = false;
                        s.req_body_live = false;
                        s.req_trailers_live = false;
                    } else {
                        s.resp_headers_live = false;
                        s.resp_body_live = false;
                        s.resp_trailers_live = false;
                    }
                }
                s.resume_request = false;
                s.resume_response = false;
                (s.context_id as i32, s.next)
            };
            match step {
                Step::RequestHeaders => {
                    let (n, eos, next) = {
                        let mut s = rc.borrow_mut();
                        s.req_headers_live = true;
                        let next = if !s.req_body.is_empty() {
                            Step::RequestBody
                        } else if s.req_trailers.is_some() {
                            Step::RequestTrailers
                        } else {
                            Step::Upstream
                        };
                        (s.req_headers.len(), next == Step::Upstream, next)
                    };
                    let a = self.call(
                        w,
                        "proxy_on_request_headers",
                        ctx as u32,
                        &[ctx, n as i32, i32::from(eos)],
                    )?;
                    after(rc, "on_request_headers", a, next, |s| {
                        s.req_headers_live = false
                    });
                }
                Step::RequestBody => {
                    let (n, eos, next) = {
                        let mut s = rc.borrow_mut();
                        s.req_body_live = true;
                        let next = if s.req_trailers.is_some() {
                            Step::RequestTrailers
                        } else {
                            Step::Upstream
                        };
                        (s.req_body.len(), next == Step::Upstream, next)
                    };
                    let a = self.call(
                        w,
                        "proxy_on_request_body",
                        ctx as u32,
                        &[ctx, n as i32, i32::from(eos)],
                    )?;
                    after(rc, "on_request_body", a, next, |s| s.req_body_live = false);
                }
                Step::RequestTrailers => {
                    let n = {
                        let mut s = rc.borrow_mut();
                        s.req_trailers_live = true;
                        s.req_trailers.as_ref().map_or(0, Headers::len)
                    };
                    let a =
                        self.call(w, "proxy_on_request_trailers", ctx as u32, &[ctx, n as i32])?;
                    after(rc, "on_request_trailers", a, Step::Upstream, |s| {
                        s.req_trailers_live = false;
                    });
                }
                Step::Upstream => {
                    let mut s = rc.borrow_mut();
                    s.req_headers_live = false;
                    s.req_body_live = false;
                    s.req_trailers_live = false;
                    s.upstream = Some(UpstreamRequest {
                        headers: s.req_headers.clone(),
                        body: s.req_body.clone(),
                        trailers: s.req_trailers.clone(),
                    });
                    let answer = s.upstream_answer.clone();
                    let mut headers = Headers::new();
                    headers.add(":status", answer.status.to_string().as_bytes());
                    for (k, v) in answer.headers.iter() {
                        headers.add(k, v);
                    }
                    if !answer.body.is_empty() && !headers.contains("content-length") {
                        headers.add("content-length", answer.body.len().to_string().as_bytes());
                    }
                    s.resp_headers = headers;
                    s.resp_body = answer.body;
                    s.resp_trailers = answer.trailers;
                    s.next = Step::ResponseHeaders;
                }
                Step::ResponseHeaders => {
                    let (n, eos, next) = {
                        let mut s = rc.borrow_mut();
                        s.resp_headers_live = true;
                        let next = if !s.resp_body.is_empty() {
                            Step::ResponseBody
                        } else if s.resp_trailers.is_some() {
                            Step::ResponseTrailers
                        } else {
                            Step::Finish
                        };
                        (s.resp_headers.len(), next == Step::Finish, next)
                    };
                    let a = self.call(
                        w,
                        "proxy_on_response_headers",
                        ctx as u32,
                        &[ctx, n as i32, i32::from(eos)],
                    )?;
                    after(rc, "on_response_headers", a, next, |s| {
                        s.resp_headers_live = false
                    });
                }
                Step::ResponseBody => {
                    let (n, eos, next) = {
                        let mut s = rc.borrow_mut();
                        s.resp_body_live = true;
                        let next = if s.resp_trailers.is_some() {
                            Step::ResponseTrailers
                        } else {
                            Step::Finish
                        };
                        (s.resp_body.len(), next == Step::Finish, next)
                    };
                    let a = self.call(
                        w,
                        "proxy_on_response_body",
                        ctx as u32,
                        &[ctx, n as i32, i32::from(eos)],
                    )?;
                    after(rc, "on_response_body", a, next, |s| {
                        s.resp_body_live = false
                    });
                }
                Step::ResponseTrailers => {
                    let n = {
                        let mut s = rc.borrow_mut();
                        s.resp_trailers_live = true;
                        s.resp_trailers.as_ref().map_or(0, Headers::len)
                    };
                    let a = self.call(
                        w,
                        "proxy_on_response_trailers",
                        ctx as u32,
                        &[ctx, n as i32],
                    )?;
                    after(rc, "on_response_trailers", a, Step::Finish, |s| {
                        s.resp_trailers_live = false;
                    });
                }
                Step::Finish => {
                    {
                        let mut s = rc.borrow_mut();
                        s.downstream = Some(DownstreamResponse {
                            status: status_of(&s.resp_headers),
                            headers: s.resp_headers.clone(),
                            body: s.resp_body.clone(),
                            trailers: s.resp_trailers.clone(),
                        });
                    }
                    return self.finish(w, rc, None);
                }
            }
        }
    }

    /// Ends a stream as Envoy does: access log, `proxy_on_done`, `proxy_on_delete`; cancels the
    /// HTTP calls it dispatched (no callback will come).
    fn finish(&mut self, w: usize, rc: &Rc<RefCell<Stream>>, reset: Option<&str>) -> Result<()> {
        let ctx = {
            let mut s = rc.borrow_mut();
            s.req_headers_live = false;
            s.req_body_live = false;
            s.req_trailers_live = false;
            s.resp_headers_live = false;
            s.resp_body_live = false;
            s.resp_trailers_live = false;
            s.waiting = false;
            if let Some(r) = reset {
                s.reset = Some(r.to_string());
            }
            s.context_id
        };
        let r1 = self.call(w, "proxy_on_log", ctx, &[ctx as i32]);
        let r2 = r1.and_then(|_| self.call(w, "proxy_on_done", ctx, &[ctx as i32]));
        let r3 = r2.and_then(|_| self.call(w, "proxy_on_delete", ctx, &[ctx as i32]));
        rc.borrow_mut().complete = true;
        let worker = worker_mut(&mut self.workers, w)?;
        let d = worker.store.data_mut();
        d.streams.remove(&ctx);
        d.calls.retain(|_, c| c.context_id != ctx);
        r3.map(|_| ())
    }

    fn start_request(&mut self, w: usize, mut stream: Stream) -> Result<Rc<RefCell<Stream>>> {
        let (ctx, root) = {
            let worker = worker_mut(&mut self.workers, w)?;
            let d = worker.store.data_mut();
            let ctx = d.next_context_id;
            d.next_context_id += 1;
            (ctx, d.root_context)
        };
        stream.worker = w;
        stream.context_id = ctx;
        let rc = Rc::new(RefCell::new(stream));
        worker_mut(&mut self.workers, w)?
            .store
            .data_mut()
            .streams
            .insert(ctx, rc.clone());
        self.call(
            w,
            "proxy_on_context_create",
            ctx,
            &[ctx as i32, root as i32],
        )?;
        rc.borrow_mut().created = true;
        self.drive(w, &rc)?;
        self.settle()?;
        Ok(rc)
    }

    fn deliver_call(
        &mut self,
        w: usize,
        token: u32,
        response: Option<CallResponse>,
        status: (u32, String),
    ) -> Result<()> {
        let worker = worker_mut(&mut self.workers, w)?;
        let record = worker
            .store
            .data_mut()
            .calls
            .remove(&token)
            .ok_or_else(|| {
                format_err!(
                    "worker {w} has no pending HTTP call {token} (answered already, or cancelled \
                 because its stream ended)"
                )
            })?;
        let ctx = record.context_id;
        let (nh, nb, nt) = response.as_ref().map_or((0, 0, 0), |r| {
            (r.headers.len(), r.body.len(), r.trailers.len())
        });
        {
            let d = worker.store.data_mut();
            d.call_response = response;
            d.status.insert(ctx, status);
        }
        let r = self.call(
            w,
            "proxy_on_http_call_response",
            ctx,
            &[ctx as i32, token as i32, nh as i32, nb as i32, nt as i32],
        );
        if let Ok(worker) = worker_mut(&mut self.workers, w) {
            let d = worker.store.data_mut();
            d.call_response = None;
            d.status.remove(&ctx);
        }
        r?;
        self.settle()
    }

    fn advance(&mut self, by: Duration) -> Result<()> {
        let target = self
            .shared
            .borrow()
            .clock_ns
            .saturating_add(by.as_nanos() as u64);
        loop {
            // The earliest due timer: call timeouts first, then ticks, by time.
            let mut best: Option<(u64, u8, usize, u32)> = None;
            for (w, worker) in self.workers.iter().enumerate() {
                if worker.failed.is_some() {
                    continue;
                }
                let d = worker.store.data();
                for c in d.calls.values() {
                    if c.timeout_ms > 0 {
                        let due = c.dispatched_at_ns + u64::from(c.timeout_ms) * 1_000_000;
                        if due <= target && best.is_none_or(|b| (due, 0) < (b.0, b.1)) {
                            best = Some((due, 0, w, c.token));
                        }
                    }
                }
                if let Some(due) = d.next_tick_ns
                    && due <= target
                    && best.is_none_or(|b| (due, 1) < (b.0, b.1))
                {
                    best = Some((due, 1, w, 0));
                }
            }
            let Some((due, kind, w, token)) = best else {
                break;
            };
            self.shared.borrow_mut().clock_ns = due;
            if kind == 0 {
                let (resp, st) = timeout_response();
                self.deliver_call(w, token, Some(resp), st)?;
            } else {
                let root = {
                    let d = worker_mut(&mut self.workers, w)?.store.data_mut();
                    d.next_tick_ns = None;
                    d.root_context
                };
                self.call(w, "proxy_on_tick", root, &[root as i32])?;
                let d = worker_mut(&mut self.workers, w)?.store.data_mut();
                if d.next_tick_ns.is_none() && d.tick_period_ms > 0 {
                    d.next_tick_ns = Some(due + u64::from(d.tick_period_ms) * 1_000_000);
                }
                self.settle()?;
            }
        }
        self.shared.borrow_mut().clock_ns = target;
        Ok(())
    }
}

fn after(
    rc: &Rc<RefCell<Stream>>,
    name: &'static str,
    result: Option<i32>,
    next: Step,
    release: impl FnOnce(&mut Stream),
) {
    let mut s = rc.borrow_mut();
    let paused = result.is_some_and(|a| a != action::CONTINUE);
    // A callback the module does not export was skipped (Continue, as Envoy): not an action.
    if result.is_some() {
        s.actions
            .push((name, if paused { "Pause" } else { "Continue" }));
    }
    s.next = next;
    if paused {
        s.waiting = true;
    } else {
        release(&mut s);
    }
}

/// What Envoy's async client delivers when a call's timeout fires: its router's local reply.
fn timeout_response() -> (CallResponse, (u32, String)) {
    let body = b"upstream request timeout".to_vec();
    let mut headers = Headers::new();
    headers.add(":status", b"504");
    headers.add("content-length", body.len().to_string().as_bytes());
    headers.add("content-type", b"text/plain");
    (
        CallResponse {
            headers,
            body,
            trailers: Headers::new(),
        },
        (0, String::new()),
    )
}

// ---------------------------------------------------------------------------------------------
// Host API.

impl Host {
    /// A request builder (defaults: `GET https://api.example.com/`, worker 0, plaintext peer).
    pub fn request(&self) -> RequestBuilder {
        let n = {
            let mut i = self.inner.borrow_mut();
            i.requests += 1;
            i.requests
        };
        let mut headers = Headers::new();
        headers.add(":method", b"GET");
        headers.add(":path", b"/");
        headers.add(":authority", b"api.example.com");
        headers.add(":scheme", b"https");
        headers.add(
            "x-request-id",
            format!("00000000-0000-4000-8000-{n:012}").as_bytes(),
        );
        let mut properties = HashMap::new();
        properties.insert(
            prop_key("source.address"),
            Prop::from("10.0.0.1:50000").encode(),
        );
        properties.insert(prop_key("source.port"), Prop::Int(50000).encode());
        properties.insert(
            prop_key("destination.address"),
            Prop::from("10.0.0.2:8080").encode(),
        );
        properties.insert(prop_key("destination.port"), Prop::Int(8080).encode());
        properties.insert(prop_key("connection.mtls"), Prop::Bool(false).encode());
        RequestBuilder {
            host: self.clone(),
            worker: 0,
            headers,
            body: Vec::new(),
            trailers: None,
            properties,
            answer: DownstreamResponse {
                status: 200,
                headers: Headers::from_pairs(&[("content-type", "text/plain")]),
                body: Vec::new(),
                trailers: None,
            },
        }
    }

    pub fn workers(&self) -> usize {
        self.inner.borrow().workers.len()
    }

    /// Every HTTP call dispatched and not yet answered, in (worker, token) order.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        let inner = self.inner.borrow();
        inner
            .workers
            .iter()
            .flat_map(|w| w.store.data().calls.values().cloned().collect::<Vec<_>>())
            .map(|record| HttpCall {
                host: self.clone(),
                record,
            })
            .collect()
    }

    /// The single pending call; fails the test if there is not exactly one.
    pub fn expect_one_call(&self) -> HttpCall {
        let mut calls = self.pending_calls();
        match calls.len() {
            1 => calls.remove(0),
            n => panic!(
                "expected exactly one pending HTTP call, found {n}: {:#?}\nlogs:\n{}",
                calls.iter().map(|c| &c.record).collect::<Vec<_>>(),
                self.log_dump(None)
            ),
        }
    }

    /// Moves the clock forward, firing due ticks and HTTP-call timeouts in time order.
    pub fn advance(&self, by: Duration) -> Result<()> {
        self.inner.borrow_mut().advance(by)
    }

    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.shared.borrow().clock_ns)
    }

    pub fn now_unix(&self) -> u64 {
        self.shared.borrow().clock_ns / 1_000_000_000
    }

    /// The tick period worker `w`'s root context asked for.
    pub fn tick_period(&self, w: usize) -> Option<Duration> {
        let inner = self.inner.borrow();
        let p = inner.workers.get(w)?.store.data().tick_period_ms;
        (p > 0).then(|| Duration::from_millis(u64::from(p)))
    }

    /// Downstream resets the stream (client went away): log, done, delete; its calls are cancelled.
    pub fn reset(&self, exchange: &Exchange) -> Result<()> {
        let w = exchange.stream.borrow().worker;
        let mut inner = self.inner.borrow_mut();
        if exchange.stream.borrow().complete {
            return Ok(());
        }
        inner.finish(w, &exchange.stream, Some("downstream reset"))?;
        inner.settle()
    }

    pub fn logs(&self) -> Vec<LogEntry> {
        self.shared.borrow().logs.clone()
    }

    /// Log lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogEntry> {
        self.shared
            .borrow()
            .logs
            .iter()
            .filter(|l| l.message.contains(needle))
            .cloned()
            .collect()
    }

    /// Fails the test unless some line at `level` contains `needle`.
    pub fn assert_logged(&self, level: LogLevel, needle: &str) {
        let found = self
            .shared
            .borrow()
            .logs
            .iter()
            .any(|l| l.level == level && l.message.contains(needle));
        assert!(
            found,
            "no {level} log line contains {needle:?}; logs:\n{}",
            self.log_dump(None)
        );
    }

    pub fn clear_logs(&self) {
        self.shared.borrow_mut().logs.clear();
    }

    /// Every log line (optionally of one worker), one per line, for failure messages.
    pub fn log_dump(&self, worker: Option<usize>) -> String {
        self.shared
            .borrow()
            .logs
            .iter()
            .filter(|l| worker.is_none_or(|w| w == l.worker))
            .map(|l| format!("  {l}\n"))
            .collect()
    }

    /// A counter's or gauge's value by the name the filter defined.
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.shared.borrow().metrics.get(name).map(|m| m.value)
    }

    pub fn metrics(&self) -> Vec<(String, Metric)> {
        self.shared
            .borrow()
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Shared data `key` of the default vm_id: (value, cas).
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared_data_of("", key)
    }

    pub fn shared_data_of(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared
            .borrow()
            .shared_data
            .get(&(vm_id.to_string(), key.to_string()))
            .cloned()
    }

    /// Writes shared data from outside (as another plugin would), with a fresh cas.
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        let mut sh = self.shared.borrow_mut();
        let cas = sh.next_cas();
        sh.shared_data.insert(
            (String::new(), key.to_string()),
            (value.as_ref().to_vec(), cas),
        );
    }

    /// Enqueues onto a queue a VM registered (as another VM would) and runs `proxy_on_queue_ready`.
    pub fn enqueue(&self, vm_id: &str, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        {
            let mut sh = self.shared.borrow_mut();
            let token = *sh
                .queue_tokens
                .get(&(vm_id.to_string(), name.to_string()))
                .ok_or_else(|| format_err!("no shared queue {vm_id:?}/{name:?} registered"))?;
            let q = sh
                .queues
                .get_mut(&token)
                .ok_or_else(|| format_err!("queue {token} vanished"))?;
            q.items.push_back(value.as_ref().to_vec());
            let ev = (q.owner_worker, q.owner_context, token);
            sh.queue_events.push_back(ev);
        }
        self.inner.borrow_mut().settle()
    }

    /// Items waiting in a queue.
    pub fn queue_len(&self, vm_id: &str, name: &str) -> Option<usize> {
        let sh = self.shared.borrow();
        let token = sh
            .queue_tokens
            .get(&(vm_id.to_string(), name.to_string()))?;
        sh.queues.get(token).map(|q| q.items.len())
    }

    /// Things Envoy tolerates silently that the harness noticed (second local reply, calls to
    /// unknown clusters …).
    pub fn notes(&self) -> Vec<String> {
        self.shared.borrow().notes.clone()
    }

    /// Why worker `w` failed, if a call into it trapped.
    pub fn failure(&self, w: usize) -> Option<String> {
        self.inner.borrow().workers.get(w)?.failed.clone()
    }

    /// Runs the root contexts' shutdown as Envoy does on drain: `proxy_on_done` on every root;
    /// returns, per worker, whether the root finished (true) or asked to wait for `proxy_done`.
    pub fn shutdown(&self) -> Result<Vec<bool>> {
        let mut inner = self.inner.borrow_mut();
        let mut done = Vec::new();
        for w in 0..inner.workers.len() {
            let root = inner
                .workers
                .get(w)
                .map_or(1, |x| x.store.data().root_context);
            let r = inner.call(w, "proxy_on_done", root, &[root as i32])?;
            let finished = r != Some(0);
            if !finished {
                worker_mut(&mut inner.workers, w)?
                    .store
                    .data_mut()
                    .done_pending = true;
            }
            done.push(finished);
        }
        Ok(done)
    }

    /// Every ABI crossing of worker `w`'s VM since it was instantiated, counted by name (all its
    /// contexts, the root's ticks and callbacks included). Take two snapshots and
    /// [`HostCalls::since`] for what an action cost.
    pub fn vm_host_calls(&self, w: usize) -> HostCalls {
        self.inner
            .borrow()
            .workers
            .get(w)
            .map(|x| HostCalls::from_counts(x.store.data().crossings.clone()))
            .unwrap_or_default()
    }

    /// Whether worker `w`'s root called `proxy_done` after asking to wait.
    pub fn done_called(&self, w: usize) -> bool {
        self.inner
            .borrow()
            .workers
            .get(w)
            .is_some_and(|x| x.store.data().done_called)
    }
}

/// Builds one downstream request; [`RequestBuilder::send`] runs it through the filter.
pub struct RequestBuilder {
    host: Host,
    worker: usize,
    headers: Headers,
    body: Vec<u8>,
    trailers: Option<Headers>,
    properties: HashMap<String, Vec<u8>>,
    answer: DownstreamResponse,
}

impl RequestBuilder {
    pub fn on_worker(mut self, w: usize) -> Self {
        self.worker = w;
        self
    }
    /// Adds a header (kept in order; repeated names allowed).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.add(name, value.as_ref());
        self
    }
    /// Sets a header, replacing any default.
    pub fn set_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.replace(name, value.as_ref());
        self
    }
    pub fn remove_header(mut self, name: &str) -> Self {
        self.headers.remove(name);
        self
    }
    pub fn method(self, m: &str) -> Self {
        self.set_header(":method", m)
    }
    pub fn path(self, p: &str) -> Self {
        self.set_header(":path", p)
    }
    pub fn authority(self, a: &str) -> Self {
        self.set_header(":authority", a)
    }
    pub fn scheme(self, s: &str) -> Self {
        self.set_header(":scheme", s)
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }
    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers
            .get_or_insert_with(Headers::new)
            .add(name, value.as_ref());
        self
    }
    /// An mTLS peer with this URI SAN (`connection.uri_san_peer_certificate`, `connection.mtls`).
    pub fn peer_spiffe(self, uri: &str) -> Self {
        self.property("connection.uri_san_peer_certificate", uri)
            .property("connection.mtls", true)
    }
    pub fn source_address(self, addr: &str) -> Self {
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0);
        self.property("source.address", addr)
            .property("source.port", port)
    }
    pub fn destination_port(self, port: u16) -> Self {
        self.property("destination.port", i64::from(port))
    }
    /// Any property, dotted path (`"connection.requested_server_name"`).
    pub fn property(mut self, dotted: &str, value: impl Into<Prop>) -> Self {
        self.properties
            .insert(prop_key(dotted), value.into().encode());
        self
    }
    pub fn without_property(mut self, dotted: &str) -> Self {
        self.properties.remove(&prop_key(dotted));
        self
    }
    /// What the upstream answers if the request reaches it (default 200, empty body).
    pub fn upstream_response(
        mut self,
        status: u32,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Self {
        self.answer = DownstreamResponse {
            status,
            headers: Headers::from_pairs(headers),
            body: body.as_ref().to_vec(),
            trailers: None,
        };
        self
    }

    /// Runs the request through the filter on the chosen worker. Returns once the stream is
    /// complete or paused by the filter.
    pub fn send(self) -> Result<Exchange> {
        let stream = Stream {
            worker: self.worker,
            context_id: 0,
            created: false,
            req_headers: self.headers,
            req_headers_live: false,
            req_body: self.body,
            req_body_live: false,
            req_trailers: self.trailers,
            req_trailers_live: false,
            resp_headers: Headers::new(),
            resp_headers_live: false,
            resp_body: Vec::new(),
            resp_body_live: false,
            resp_trailers: None,
            resp_trailers_live: false,
            properties: self.properties,
            filter_properties: HashMap::new(),
            upstream_answer: self.answer,
            next: Step::RequestHeaders,
            waiting: false,
            resume_request: false,
            resume_response: false,
            pending_local: Vec::new(),
            close_requested: false,
            local_response: None,
            upstream: None,
            downstream: None,
            reset: None,
            complete: false,
            actions: Vec::new(),
            crossings: Vec::new(),
            instructions: 0,
        };
        let rc = self
            .host
            .inner
            .borrow_mut()
            .start_request(self.worker, stream)?;
        Ok(Exchange {
            stream: rc,
            host: self.host.clone(),
        })
    }
}

/// One request's journey: what the upstream saw, what the client got, whether it is paused.
#[derive(Clone)]
pub struct Exchange {
    stream: Rc<RefCell<Stream>>,
    host: Host,
}

impl Exchange {
    pub fn worker(&self) -> usize {
        self.stream.borrow().worker
    }
    pub fn context_id(&self) -> u32 {
        self.stream.borrow().context_id
    }
    /// The filter paused the request and has not resumed or answered it yet.
    pub fn is_paused(&self) -> bool {
        let s = self.stream.borrow();
        !s.complete && s.waiting
    }
    pub fn is_complete(&self) -> bool {
        self.stream.borrow().complete
    }
    /// The request reached the upstream.
    pub fn continued(&self) -> bool {
        self.stream.borrow().upstream.is_some()
    }
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.stream.borrow().local_response.clone()
    }
    /// The status the client received (None while paused or after a reset).
    pub fn status(&self) -> Option<u32> {
        self.stream.borrow().downstream.as_ref().map(|d| d.status)
    }
    pub fn reset_reason(&self) -> Option<String> {
        self.stream.borrow().reset.clone()
    }
    /// The request as the upstream received it; fails the test if it never got there.
    pub fn upstream(&self) -> UpstreamRequest {
        match self.stream.borrow().upstream.clone() {
            Some(u) => u,
            None => panic!(
                "the request did not reach the upstream: {}",
                self.describe()
            ),
        }
    }
    pub fn upstream_headers(&self) -> Headers {
        self.upstream().headers
    }
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream().headers.get(name)
    }
    /// The response the client received; fails the test if there was none (yet).
    pub fn response(&self) -> DownstreamResponse {
        match self.stream.borrow().downstream.clone() {
            Some(d) => d,
            None => panic!("no response reached the client: {}", self.describe()),
        }
    }
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.response().headers.get(name)
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.response().body).into_owned()
    }
    /// Properties the filter set with `proxy_set_property` (dotted path).
    pub fn filter_property(&self, dotted: &str) -> Option<Vec<u8>> {
        self.stream
            .borrow()
            .filter_properties
            .get(&prop_key(dotted))
            .cloned()
    }
    /// The actions the filter returned, in order (callbacks it does not export are skipped and
    /// not listed).
    pub fn actions(&self) -> Vec<(&'static str, &'static str)> {
        self.stream.borrow().actions.clone()
    }
    /// Every ABI crossing of this request's HTTP context so far, in order and counted by name:
    /// the callbacks the host made into it (from `proxy_on_context_create` to `proxy_on_delete`),
    /// the host functions it called, and the allocator re-entries those made. A host function
    /// counts for the context in effect when it is called (so the calls another context makes
    /// after `proxy_set_effective_context` to this one count here); the callbacks of the root
    /// context (ticks, HTTP-call responses, queues) count only in [`Host::vm_host_calls`].
    pub fn host_calls(&self) -> HostCalls {
        let stream = self.stream.borrow();
        HostCalls::from_sequence(stream.crossings.clone()).with_instructions(stream.instructions)
    }

    /// Log lines emitted by this stream's context.
    pub fn logs(&self) -> Vec<LogEntry> {
        let (w, ctx) = (self.worker(), self.context_id());
        self.host
            .logs()
            .into_iter()
            .filter(|l| l.worker == w && l.context_id == ctx)
            .collect()
    }

    pub fn describe(&self) -> String {
        let s = self.stream.borrow();
        let state = if s.complete {
            match (&s.local_response, &s.reset) {
                (_, Some(r)) => format!("reset ({r})"),
                (Some(l), None) => format!(
                    "answered locally {} {:?} body {:?} headers {:?}",
                    l.status,
                    l.details,
                    l.body_text(),
                    l.headers
                ),
                (None, None) => format!(
                    "continued to the upstream, client got {}",
                    s.downstream.as_ref().map_or(0, |d| d.status)
                ),
            }
        } else if s.waiting {
            format!("paused before {:?}", s.next)
        } else {
            "in progress".into()
        };
        format!(
            "worker {} context {}: {state}; actions {:?}\nlogs:\n{}",
            s.worker,
            s.context_id,
            s.actions,
            self.host.log_dump(Some(s.worker))
        )
    }

    /// Fails the test unless the client received `status`.
    pub fn assert_status(&self, status: u32) -> &Self {
        assert_eq!(self.status(), Some(status), "{}", self.describe());
        self
    }
    /// Fails the test unless the request reached the upstream and the client got its answer.
    pub fn assert_continued(&self) -> &Self {
        let s = self.stream.borrow();
        let ok =
            s.upstream.is_some() && s.local_response.is_none() && s.complete && s.reset.is_none();
        drop(s);
        assert!(
            ok,
            "expected the request to reach the upstream: {}",
            self.describe()
        );
        self
    }
    pub fn assert_paused(&self) -> &Self {
        assert!(
            self.is_paused(),
            "expected the request to be paused: {}",
            self.describe()
        );
        self
    }
    /// Fails the test unless the upstream saw `name: value`.
    pub fn assert_upstream_header(&self, name: &str, value: &str) -> &Self {
        let got = self.upstream_header(name);
        assert_eq!(
            got.as_deref(),
            Some(value),
            "upstream header {name}; upstream saw {:?}\n{}",
            self.upstream_headers(),
            self.describe()
        );
        self
    }
    /// Fails the test if the upstream saw `name` at all.
    pub fn assert_no_upstream_header(&self, name: &str) -> &Self {
        let h = self.upstream_headers();
        assert!(
            !h.contains(name),
            "upstream must not see {name}, saw {:?}\n{}",
            h,
            self.describe()
        );
        self
    }
    /// Fails the test unless the local response body contains `needle`.
    pub fn assert_body_contains(&self, needle: &str) -> &Self {
        let body = self.body_text();
        assert!(
            body.contains(needle),
            "body {body:?} lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }
}

/// A pending `proxy_http_call`: inspect it, then answer it.
#[derive(Clone)]
pub struct HttpCall {
    host: Host,
    record: CallRecord,
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.record.fmt(f)
    }
}

impl HttpCall {
    pub fn worker(&self) -> usize {
        self.record.worker
    }
    pub fn token(&self) -> u32 {
        self.record.token
    }
    /// The context that dispatched it (the root context or an HTTP stream).
    pub fn context_id(&self) -> u32 {
        self.record.context_id
    }
    pub fn cluster(&self) -> &str {
        &self.record.cluster
    }
    pub fn headers(&self) -> &Headers {
        &self.record.headers
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.record.headers.get(name)
    }
    pub fn path(&self) -> String {
        self.header(":path").unwrap_or_default()
    }
    pub fn authority(&self) -> String {
        self.header(":authority").unwrap_or_default()
    }
    pub fn method(&self) -> String {
        self.header(":method").unwrap_or_default()
    }
    pub fn body(&self) -> &[u8] {
        &self.record.body
    }
    pub fn trailers(&self) -> &Headers {
        &self.record.trailers
    }
    /// The timeout the filter asked for (`None`: no timeout).
    pub fn configured_timeout(&self) -> Option<Duration> {
        (self.record.timeout_ms > 0)
            .then(|| Duration::from_millis(u64::from(self.record.timeout_ms)))
    }

    /// Answers with a response (`:status` first, then `headers`), delivered to the dispatching
    /// context; everything it causes runs before this returns.
    pub fn respond(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.respond_with_trailers(status, headers, body, &[])
    }

    pub fn respond_with_trailers(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
        trailers: &[(&str, &str)],
    ) -> Result<()> {
        let mut h = Headers::new();
        h.add(":status", status.to_string().as_bytes());
        for (k, v) in headers {
            h.add(k, v.as_bytes());
        }
        let resp = CallResponse {
            headers: h,
            body: body.as_ref().to_vec(),
            trailers: Headers::from_pairs(trailers),
        };
        self.host.inner.borrow_mut().deliver_call(
            self.record.worker,
            self.record.token,
            Some(resp),
            (0, String::new()),
        )
    }

    /// The stream to the upstream is reset: Envoy calls back with 0 headers, 0 body, 0 trailers
    /// (no response maps, no body buffer) and `proxy_get_status` = BrokenConnection "reset".
    pub fn fail(&self) -> Result<()> {
        self.host.inner.borrow_mut().deliver_call(
            self.record.worker,
            self.record.token,
            None,
            (abi::status::BROKEN_CONNECTION as u32, "reset".into()),
        )
    }

    /// The call's timeout fires now: Envoy's async client answers 504 "upstream request timeout".
    /// (Advancing the clock past the timeout does the same.)
    pub fn timeout(&self) -> Result<()> {
        let (resp, st) = timeout_response();
        self.host.inner.borrow_mut().deliver_call(
            self.record.worker,
            self.record.token,
            Some(resp),
            st,
        )
    }

    /// The upstream cannot be reached: Envoy's async client answers 503 with its reset text.
    pub fn connect_failure(&self) -> Result<()> {
        let body =
            b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
                .to_vec();
        let mut headers = Headers::new();
        headers.add(":status", b"503");
        headers.add("content-length", body.len().to_string().as_bytes());
        headers.add("content-type", b"text/plain");
        let resp = CallResponse {
            headers,
            body,
            trailers: Headers::new(),
        };
        self.host.inner.borrow_mut().deliver_call(
            self.record.worker,
            self.record.token,
            Some(resp),
            (0, String::new()),
        )
    }
}
