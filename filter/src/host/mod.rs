//! The proxy-wasm glue: the context registry, the callbacks routed to the request engine
//! ([`crate::engine`], where everything that decides lives), and [`AbiHost`], the engine's
//! [`Host`] over [`abi`], our own thin layer over the proxy-wasm ABI 0.2.1 (no SDK: see `abi`'s
//! docs and DEVELOPERS.md for why).
//!
//! # Contexts
//! A VM holds one root context per plugin configuration that shares it (usually one). Each
//! root parses its configuration in `on_configure` into one [`Engine`]. A request has **no
//! state of its own** here: `proxy_on_request_headers` finds its root (the one named by the
//! `proxy_on_context_create` Envoy makes just before it) and lets the engine decide. Two kinds
//! of request leave an entry behind, both dropped in `proxy_on_done`: a paused request (a
//! waiter in its root's engine) and a request answered locally from its headers whose body is
//! still to come (so that its body callbacks keep pausing).

mod abi;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::engine::{Action, Decided, Engine, Host, HostError};
use abi::{BufferType, MapType};

/// The engine's [`Host`]: each method one call of [`abi`].
pub struct AbiHost;

impl Host for AbiHost {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        abi::header(MapType::RequestHeaders, name).ok().flatten()
    }

    fn request_header_pairs(&self) -> Vec<(String, Vec<u8>)> {
        abi::header_pairs(MapType::RequestHeaders).unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::set_header(MapType::RequestHeaders, name, value)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        abi::remove_header(MapType::RequestHeaders, name)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        abi::property(path).ok().flatten()
    }

    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body)
    }

    fn resume_request(&self) -> Result<(), HostError> {
        abi::continue_request()
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        abi::set_effective_context(context_id)
    }

    fn now_nanos(&self) -> Option<u64> {
        abi::now_nanos().ok()
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        abi::set_tick_period(period)
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match abi::shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas)),
            _ => None,
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        abi::set_shared_data(key, value, cas)
    }

    fn register_queue(&self, name: &str) -> Result<u32, HostError> {
        abi::register_shared_queue(name)
    }

    fn enqueue(&self, queue: u32, value: &[u8]) -> Result<(), HostError> {
        abi::enqueue_shared_queue(queue, value)
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        abi::http_call(cluster, headers, timeout)
    }

    fn http_response_header(&self, name: &str) -> Option<Vec<u8>> {
        abi::header(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn http_response_body(&self, size: usize) -> Option<Vec<u8>> {
        abi::buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        abi::define_counter(name).ok()
    }

    fn increment_counter(&self, id: u32, delta: i64) {
        let _ = abi::increment_metric(id, delta);
    }
}

thread_local! {
    /// The contexts of this VM (a wasm VM is single-threaded: one per VM).
    static CONTEXTS: Contexts = Contexts::default();
}

/// What the VM keeps about its contexts. Every borrow here is short and makes no host call.
#[derive(Default)]
struct Contexts {
    /// Root contexts in creation order.
    roots: RefCell<Vec<Rc<Root>>>,
    /// The last request context created and its root: Envoy creates a request's context right
    /// before its `proxy_on_request_headers`, so this answers "which root" without a map.
    last_stream: Cell<(u32, u32)>,
    /// Request context → root, recorded only while the VM has more than one root.
    streams: RefCell<HashMap<u32, u32>>,
    /// Requests answered locally from their headers whose body or trailers are still to come.
    answered: RefCell<Vec<u32>>,
}

/// The root context with this id.
fn root(id: u32) -> Option<Rc<Root>> {
    CONTEXTS.with(|c| {
        let roots = c.roots.try_borrow().ok()?;
        roots.iter().find(|r| r.context_id == id).cloned()
    })
}

/// The root a request context belongs to.
fn root_of_stream(context_id: u32) -> Option<Rc<Root>> {
    CONTEXTS.with(|c| {
        let roots = c.roots.try_borrow().ok()?;
        if let [only] = roots.as_slice() {
            return Some(Rc::clone(only));
        }
        let (last, last_root) = c.last_stream.get();
        let id = if last == context_id {
            Some(last_root)
        } else {
            c.streams
                .try_borrow()
                .ok()
                .and_then(|s| s.get(&context_id).copied())
        };
        match id {
            Some(id) => roots.iter().find(|r| r.context_id == id).cloned(),
            // Created while the oldest root was the only one.
            None => roots.first().cloned(),
        }
    })
}

fn on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        if parent_id == 0 {
            abi::init();
            if let Ok(mut roots) = c.roots.try_borrow_mut() {
                roots.push(Rc::new(Root {
                    context_id,
                    engine: RefCell::new(None),
                }));
            }
            return;
        }
        c.last_stream.set((context_id, parent_id));
        if c.roots.try_borrow().is_ok_and(|r| r.len() > 1)
            && let Ok(mut streams) = c.streams.try_borrow_mut()
        {
            streams.insert(context_id, parent_id);
        }
    });
}

/// A root context and the engine of its current configuration.
struct Root {
    context_id: u32,
    engine: RefCell<Option<Rc<Engine>>>,
}

impl Root {
    fn engine(&self) -> Option<Rc<Engine>> {
        self.engine.try_borrow().ok().and_then(|e| e.clone())
    }
}

fn on_configure(root_id: u32, config_size: usize) -> bool {
    let Some(root) = root(root_id) else {
        return false;
    };
    let bytes = abi::buffer(BufferType::PluginConfiguration, 0, config_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    let Some(engine) = Engine::configure(&AbiHost, &bytes) else {
        return false;
    };
    let old = root
        .engine
        .try_borrow_mut()
        .ok()
        .and_then(|mut e| e.replace(Rc::new(engine)));
    if let Some(old) = old {
        old.shutdown(&AbiHost);
        old.answer_waiters(&AbiHost, root_id);
    }
    true
}

fn on_tick(root_id: u32) {
    if let Some(engine) = root(root_id).and_then(|r| r.engine()) {
        engine.on_tick(&AbiHost, root_id);
    }
}

fn on_queue_ready(root_id: u32, queue_id: u32) {
    // Drain the wake-ups (their content is irrelevant).
    while let Ok(Some(_)) = abi::dequeue_shared_queue(queue_id) {}
    on_tick(root_id);
}

fn on_http_call_response(root_id: u32, token: u32, num_headers: usize, body_size: usize) {
    if let Some(engine) = root(root_id).and_then(|r| r.engine()) {
        engine.on_http_call_response(&AbiHost, root_id, token, num_headers, body_size);
    }
}

/// Runs `f` on the engine of every root, in place: no copy of the roots for a callback Envoy
/// makes on every request. `f` touches only its engine's own state (no host call, no context
/// registry). False when the registry is busy (then `f` did not run).
fn each_engine(mut f: impl FnMut(&Engine)) -> bool {
    CONTEXTS.with(|c| {
        let Ok(roots) = c.roots.try_borrow() else {
            return false;
        };
        for engine in roots.iter().filter_map(|root| root.engine()) {
            f(&engine);
        }
        true
    })
}

/// The end of a context. A root: its engine shuts down (counters, fetch leases). A request:
/// forget whatever it left behind (nothing, for a request decided at once: Envoy calls this for
/// every request, so that case allocates nothing).
fn on_done(context_id: u32) -> bool {
    let ended_root = CONTEXTS.with(|c| {
        let mut roots = c.roots.try_borrow_mut().ok()?;
        let at = roots.iter().position(|r| r.context_id == context_id)?;
        Some(roots.remove(at))
    });
    if let Some(root) = ended_root {
        if let Some(engine) = root.engine() {
            engine.shutdown(&AbiHost);
        }
        return true;
    }
    CONTEXTS.with(|c| {
        if let Ok(mut streams) = c.streams.try_borrow_mut()
            && !streams.is_empty()
        {
            streams.remove(&context_id);
        }
        if let Ok(mut answered) = c.answered.try_borrow_mut()
            && !answered.is_empty()
        {
            answered.retain(|&id| id != context_id);
        }
    });
    // A request that goes away while waiting (client gone, stream reset): drop its waiter.
    each_engine(|engine| engine.on_request_done(context_id));
    true
}

/// A request answered from its headers: if its body or trailers are still to come, their
/// callbacks must keep pausing (see [`on_request_body`]), until `proxy_on_done`.
fn answered(context_id: u32, end_of_stream: bool) {
    if !end_of_stream {
        CONTEXTS.with(|c| {
            if let Ok(mut answered) = c.answered.try_borrow_mut() {
                answered.push(context_id);
            }
        });
    }
}

fn on_request_headers(context_id: u32, end_of_stream: bool) -> Action {
    let Some(engine) = root_of_stream(context_id).and_then(|r| r.engine()) else {
        // Never configured: fail closed.
        crate::engine::refuse(&AbiHost, b"meshguard is not configured");
        answered(context_id, end_of_stream);
        return Action::Pause;
    };
    let decided = engine.on_request_headers(&AbiHost, context_id);
    if decided == Decided::Answered {
        answered(context_id, end_of_stream);
    }
    decided.action()
}

/// Whether the request is still undecided: waiting for keys in its root's engine, or answered
/// locally from its headers.
fn undecided(context_id: u32) -> bool {
    let answered = CONTEXTS.with(|c| {
        c.answered
            .try_borrow()
            .map_or(true, |a| a.contains(&context_id))
    });
    let mut waiting = false;
    answered || !each_engine(|e| waiting |= e.is_waiting(context_id)) || waiting
}

/// Body and trailers. While the request waits for keys, its body must not move on: for Envoy,
/// `Continue` from the body callback after a paused header callback resumes the stream, which
/// would send an undecided request upstream. `Pause` buffers the body until the root resumes it.
fn on_request_body(context_id: u32) -> Action {
    if undecided(context_id) {
        Action::Pause
    } else {
        Action::Continue
    }
}
