//! Host-side state: what Envoy keeps per process (shared data, queues, metrics, clock, logs), per
//! worker VM, and per HTTP stream.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use crate::abi::LogLevel;
use crate::calls::CallKind;

/// An ordered header (or trailer) map with Envoy's semantics: keys are lower-cased on insertion,
/// duplicates are kept in order, lookups return the first value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Self {
        let mut h = Self::new();
        for (k, v) in pairs {
            h.add(k.as_ref(), v.as_ref());
        }
        h
    }

    /// The first value of `name` (case-insensitive), as text (lossy).
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_bytes(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    pub fn add(&mut self, name: &str, value: &[u8]) {
        self.0.push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// Envoy's `setCopy`: replaces the first occurrence, removes the others, or appends.
    pub fn replace(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        match self.0.iter().position(|(k, _)| *k == name) {
            Some(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = value.to_vec();
                }
                let mut seen = 0usize;
                self.0.retain(|(k, _)| {
                    if *k == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.0.push((name, value.to_vec())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.0.retain(|(k, _)| *k != name);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// One `proxy_log` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub worker: usize,
    pub context_id: u32,
    pub level: LogLevel,
    pub message: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[worker {} ctx {}] {}: {}",
            self.worker, self.context_id, self.level, self.message
        )
    }
}

/// What `proxy_send_local_response` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    /// The additional headers the filter passed (keys lower-cased, as Envoy adds them).
    pub headers: Headers,
    pub grpc_status: i32,
}

impl LocalResponse {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The request as the upstream received it (after the filter ran).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Option<Headers>,
}

/// The response as the downstream client received it (after the filter ran).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownstreamResponse {
    pub status: u32,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Option<Headers>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub kind: MetricKind,
    /// Counter and gauge value (gauges may go negative transiently as in Envoy's accumulate mode).
    pub value: i64,
    /// Recorded histogram samples.
    pub samples: Vec<u64>,
}

pub(crate) struct Queue {
    pub owner_worker: usize,
    pub owner_context: u32,
    pub items: VecDeque<Vec<u8>>,
}

/// Process-wide state shared by every worker VM (Envoy's singletons).
pub(crate) struct Shared {
    pub clock_ns: u64,
    pub log_level: LogLevel,
    pub logs: Vec<LogEntry>,
    /// (vm_id, key) → (value, cas)
    pub shared_data: HashMap<(String, String), (Vec<u8>, u32)>,
    pub next_cas: u32,
    pub queues: BTreeMap<u32, Queue>,
    pub queue_tokens: HashMap<(String, String), u32>,
    pub next_queue_token: u32,
    /// `proxy_on_queue_ready` notifications Envoy has posted but not yet run: (worker, root, token).
    pub queue_events: VecDeque<(usize, u32, u32)>,
    /// Metrics by the name the filter defined (Envoy shows them as `wasmcustom.<name>`).
    pub metrics: BTreeMap<String, Metric>,
    /// `None`: every cluster exists. `Some`: `proxy_http_call` to any other is BAD_ARGUMENT.
    pub clusters: Option<Vec<String>>,
    /// Oddities the harness noticed that Envoy tolerates silently (e.g. a second local reply).
    pub notes: Vec<String>,
}

impl Shared {
    pub fn new(clock_ns: u64, log_level: LogLevel, clusters: Option<Vec<String>>) -> Self {
        Self {
            clock_ns,
            log_level,
            logs: Vec::new(),
            shared_data: HashMap::new(),
            next_cas: 1,
            queues: BTreeMap::new(),
            queue_tokens: HashMap::new(),
            next_queue_token: 1,
            queue_events: VecDeque::new(),
            metrics: BTreeMap::new(),
            clusters,
            notes: Vec::new(),
        }
    }

    /// Envoy's `SharedData::nextCas`: never 0 (0 means "no CAS" to the guest).
    pub fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// Where a stream is: the next filter callback to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    Upstream,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Finish,
}

impl Step {
    pub fn is_request_side(self) -> bool {
        self <= Step::Upstream
    }
}

/// One HTTP stream (an HTTP context in the VM) and everything the test may look at afterwards.
pub(crate) struct Stream {
    pub worker: usize,
    pub context_id: u32,
    pub created: bool,

    pub req_headers: Headers,
    pub req_headers_live: bool,
    pub req_body: Vec<u8>,
    pub req_body_live: bool,
    pub req_trailers: Option<Headers>,
    pub req_trailers_live: bool,
    pub resp_headers: Headers,
    pub resp_headers_live: bool,
    pub resp_body: Vec<u8>,
    pub resp_body_live: bool,
    pub resp_trailers: Option<Headers>,
    pub resp_trailers_live: bool,

    /// Test-provided properties (NUL-joined path → Envoy-encoded value).
    pub properties: HashMap<String, Vec<u8>>,
    /// Properties the filter set with `proxy_set_property`.
    pub filter_properties: HashMap<String, Vec<u8>>,

    /// What the upstream answers if the request reaches it.
    pub upstream_answer: DownstreamResponse,

    pub next: Step,
    pub waiting: bool,
    pub resume_request: bool,
    pub resume_response: bool,
    pub pending_local: Vec<LocalResponse>,
    pub close_requested: bool,

    pub local_response: Option<LocalResponse>,
    pub upstream: Option<UpstreamRequest>,
    pub downstream: Option<DownstreamResponse>,
    pub reset: Option<String>,
    pub complete: bool,
    /// Actions the filter returned, in order: ("on_request_headers", "Pause") …
    pub actions: Vec<(&'static str, &'static str)>,
    /// Every ABI crossing made in this context, in order (`crate::calls`).
    pub crossings: Vec<(CallKind, &'static str)>,
    /// Wasm instructions the module executed in callbacks for this context (wasmtime fuel,
    /// allocator re-entries included).
    pub instructions: u64,
}

impl Stream {
    pub fn needs_drive(&self) -> bool {
        if self.complete {
            return false;
        }
        if !self.waiting || !self.pending_local.is_empty() || self.close_requested {
            return true;
        }
        if self.next.is_request_side() {
            self.resume_request
        } else {
            self.resume_response
        }
    }
}

/// A `proxy_http_call` the filter made.
#[derive(Clone, Debug)]
pub(crate) struct CallRecord {
    pub worker: usize,
    pub token: u32,
    pub context_id: u32,
    pub cluster: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
    pub timeout_ms: u32,
    pub dispatched_at_ns: u64,
}

/// The response being delivered to `proxy_on_http_call_response` (absent for a reset).
pub(crate) struct CallResponse {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}
