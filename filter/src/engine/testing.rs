//! A fake [`Host`] for native tests of the engine: requests with headers and properties, a
//! settable clock, proxy shared data that several fake hosts (simulated worker VMs) can share,
//! queues, HTTP calls answered by the test, and counters. Every host call is recorded.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::host::{Host, HostError};

/// Proxy shared data of one process: `key → (value, cas)`.
pub type SharedData = Rc<RefCell<HashMap<String, (Vec<u8>, u32)>>>;

/// A local response: status, headers, body.
pub type LocalResponse = (u32, Vec<(String, String)>, Vec<u8>);

/// An HTTP-call response: headers, body.
pub type CallResponse = (Vec<(String, String)>, Vec<u8>);

/// One request as the fake host holds it.
#[derive(Debug, Default, Clone)]
pub struct FakeRequest {
    pub headers: Vec<(String, Vec<u8>)>,
    pub properties: HashMap<String, Vec<u8>>,
    /// The local response, if one was sent: status, headers, body.
    pub response: Option<LocalResponse>,
    /// Whether the engine resumed it after a pause.
    pub resumed: bool,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn status(&self) -> Option<u32> {
        self.response.as_ref().map(|(s, _, _)| *s)
    }
}

/// An HTTP call the engine dispatched.
#[derive(Debug, Clone)]
pub struct FakeCall {
    pub token: u32,
    pub cluster: String,
    pub path: String,
}

/// The fake proxy of one worker VM.
#[derive(Default)]
pub struct FakeHost {
    pub requests: RefCell<HashMap<u32, FakeRequest>>,
    current: Cell<u32>,
    pub now_nanos: Cell<u64>,
    pub shared: SharedData,
    pub queues: RefCell<Vec<Vec<Vec<u8>>>>,
    pub calls: RefCell<Vec<FakeCall>>,
    next_token: Cell<u32>,
    /// Makes `http_call` fail (the cluster does not exist).
    pub refuse_calls: Cell<bool>,
    /// The HTTP-call response being delivered: headers and body.
    pub delivering: RefCell<Option<CallResponse>>,
    pub counters: RefCell<Vec<(String, i64)>>,
    pub tick: Cell<Option<Duration>>,
    /// Every host call by name, in order.
    pub log: RefCell<Vec<&'static str>>,
}

impl FakeHost {
    /// A fake worker sharing `shared` with others (a new map for a process of its own).
    pub fn new(shared: SharedData) -> FakeHost {
        let host = FakeHost {
            shared,
            next_token: Cell::new(1),
            ..FakeHost::default()
        };
        host.now_nanos.set(1_700_000_000_000_000_000);
        host
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now_nanos
            .set(self.now_nanos.get().saturating_add(nanos));
    }

    pub fn now_secs(&self) -> u64 {
        self.now_nanos.get() / 1_000_000_000
    }

    /// Adds request `context_id` with `headers` and makes it the current one.
    pub fn request(&self, context_id: u32, headers: &[(&str, &str)]) {
        let request = FakeRequest {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            ..FakeRequest::default()
        };
        self.requests.borrow_mut().insert(context_id, request);
        self.current.set(context_id);
    }

    /// The request as the fake host holds it now.
    pub fn get(&self, context_id: u32) -> FakeRequest {
        self.requests
            .borrow()
            .get(&context_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The request goes away (client gone).
    pub fn end(&self, context_id: u32) {
        self.requests.borrow_mut().remove(&context_id);
    }

    pub fn current(&self) -> u32 {
        self.current.get()
    }

    pub fn set_current(&self, context_id: u32) {
        self.current.set(context_id);
    }

    /// The value of counter `name` (0 when undefined or never incremented).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Wake-ups enqueued so far (all queues).
    pub fn wakeups(&self) -> usize {
        self.queues.borrow().iter().map(Vec::len).sum()
    }

    fn note(&self, call: &'static str) {
        self.log.borrow_mut().push(call);
    }

    fn with_current<T>(&self, f: impl FnOnce(&mut FakeRequest) -> T) -> Result<T, HostError> {
        let mut requests = self.requests.borrow_mut();
        let request = requests
            .get_mut(&self.current.get())
            .ok_or(HostError::NotFound)?;
        Ok(f(request))
    }
}

impl Host for FakeHost {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.note("request_header");
        self.with_current(|r| r.header(name).map(<[u8]>::to_vec))
            .ok()
            .flatten()
    }

    fn request_header_pairs(&self) -> Vec<(String, Vec<u8>)> {
        self.note("request_header_pairs");
        self.with_current(|r| r.headers.clone()).unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.note("set_request_header");
        self.with_current(|r| {
            r.headers.retain(|(n, _)| n != name);
            r.headers.push((name.to_owned(), value.to_vec()));
        })
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.note("remove_request_header");
        self.with_current(|r| r.headers.retain(|(n, _)| n != name))
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.note("property");
        let key = path.join(".");
        self.with_current(|r| r.properties.get(&key).cloned())
            .ok()
            .flatten()
    }

    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.note("send_local_response");
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.with_current(|r| r.response = Some((status, headers, body.to_vec())))
    }

    fn resume_request(&self) -> Result<(), HostError> {
        self.note("resume_request");
        self.with_current(|r| r.resumed = true)
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        self.note("set_effective_context");
        // Root contexts (no request entry) are always there; a request must still exist.
        if context_id >= ROOT_IDS || self.requests.borrow().contains_key(&context_id) {
            self.current.set(context_id);
            Ok(())
        } else {
            Err(HostError::BadArgument)
        }
    }

    fn now_nanos(&self) -> Option<u64> {
        self.note("now");
        Some(self.now_nanos.get())
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        self.note("set_tick_period");
        self.tick.set(Some(period));
        Ok(())
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.note("shared_data");
        self.shared.borrow().get(key).cloned()
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        self.note("set_shared_data");
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(HostError::CasMismatch);
        }
        shared.insert(
            key.to_owned(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        Ok(())
    }

    fn register_queue(&self, _name: &str) -> Result<u32, HostError> {
        self.note("register_queue");
        let mut queues = self.queues.borrow_mut();
        queues.push(Vec::new());
        u32::try_from(queues.len() - 1).map_err(|_| HostError::InternalFailure)
    }

    fn enqueue(&self, queue: u32, value: &[u8]) -> Result<(), HostError> {
        self.note("enqueue");
        let mut queues = self.queues.borrow_mut();
        let q = queues.get_mut(queue as usize).ok_or(HostError::NotFound)?;
        q.push(value.to_vec());
        Ok(())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        _timeout: Duration,
    ) -> Result<u32, HostError> {
        self.note("http_call");
        if self.refuse_calls.get() {
            return Err(HostError::BadArgument);
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let path = headers
            .iter()
            .find(|(n, _)| *n == ":path")
            .map_or_else(String::new, |(_, v)| (*v).to_owned());
        self.calls.borrow_mut().push(FakeCall {
            token,
            cluster: cluster.to_owned(),
            path,
        });
        Ok(token)
    }

    fn http_response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.note("http_response_header");
        self.delivering.borrow().as_ref().and_then(|(headers, _)| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        })
    }

    fn http_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.note("http_response_body");
        self.delivering
            .borrow()
            .as_ref()
            .map(|(_, body)| body.iter().copied().take(size).collect())
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        self.note("define_counter");
        let mut counters = self.counters.borrow_mut();
        if let Some(at) = counters.iter().position(|(n, _)| n == name) {
            return u32::try_from(at).ok();
        }
        counters.push((name.to_owned(), 0));
        u32::try_from(counters.len() - 1).ok()
    }

    fn increment_counter(&self, id: u32, delta: i64) {
        self.note("increment_counter");
        if let Some((_, v)) = self.counters.borrow_mut().get_mut(id as usize) {
            *v += delta;
        }
    }
}

/// Context ids from here on are roots in the tests (requests use small numbers).
pub const ROOT_IDS: u32 = 1_000;

/// The engine's log lines, captured per test thread (a logger installed on first use; tests run
/// in parallel threads, so each sees only its own lines).
pub mod logs {
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }

        fn log(&self, record: &log::Record<'_>) {
            let line = record.args().to_string();
            LINES.with(|lines| lines.borrow_mut().push(line));
        }

        fn flush(&self) {}
    }

    static CAPTURE: Capture = Capture;

    /// Starts capturing this thread's log lines (forgetting earlier ones).
    pub fn capture() {
        if log::set_logger(&CAPTURE).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        LINES.with(|lines| lines.borrow_mut().clear());
    }

    /// This thread's lines since [`capture`] that contain `needle`.
    pub fn containing(needle: &str) -> Vec<String> {
        LINES.with(|lines| {
            lines
                .borrow()
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect()
        })
    }
}
