//! mgprobe: a deliberately small proxy-wasm filter used only to prove the harness (every host
//! function, a panic, a runaway loop, memory exhaustion). The request header `x-probe` picks the
//! behaviour; the plugin configuration is `key=value` lines.
// Deliberate panics and a runaway loop are the point of some probes.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::<Root>::default());
}}

#[derive(Default, Clone, Copy)]
struct Metrics {
    requests: u32,
    gauge: u32,
    hist: u32,
    ticks: u32,
}

#[derive(Default)]
struct Root {
    metrics: Metrics,
    queue: Option<u32>,
    ticks: u64,
    delay_done: bool,
    done_requested: bool,
}

fn i64_prop(v: Option<Vec<u8>>) -> String {
    match v {
        Some(b) if b.len() == 8 => i64::from_le_bytes(b.try_into().unwrap()).to_string(),
        Some(b) => format!("bad-int-len-{}", b.len()),
        None => "none".into(),
    }
}

fn str_prop(v: Option<Vec<u8>>) -> String {
    v.map_or_else(
        || "none".into(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    )
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        self.done_requested = self.delay_done;
        !self.delay_done
    }

    fn on_http_call_response(&mut self, token: u32, nh: usize, body: usize, _nt: usize) {
        let status = if nh == 0 {
            "reset".to_string()
        } else {
            self.get_http_call_response_header(":status")
                .unwrap_or_default()
        };
        let body = self
            .get_http_call_response_body(0, body)
            .unwrap_or_default();
        info!("root call {token} answered {status}");
        let _ = self.set_shared_data("probe/fetched", Some(&body), None);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        info!(
            "vm start, vm config {:?}",
            String::from_utf8_lossy(&vm_config)
        );
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config).into_owned();
        info!(
            "configure as {} / {}",
            str_prop(self.get_property(vec!["plugin_name"])),
            str_prop(self.get_property(vec!["plugin_root_id"]))
        );
        self.metrics = Metrics {
            requests: proxy_wasm::hostcalls::define_metric(MetricType::Counter, "probe_requests")
                .unwrap(),
            gauge: proxy_wasm::hostcalls::define_metric(MetricType::Gauge, "probe_gauge").unwrap(),
            hist: proxy_wasm::hostcalls::define_metric(MetricType::Histogram, "probe_hist")
                .unwrap(),
            ticks: proxy_wasm::hostcalls::define_metric(MetricType::Counter, "probe_ticks")
                .unwrap(),
        };
        for line in config.lines() {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            match k.trim() {
                "" => {}
                "fail" => {
                    error!("probe: bad config: {v}");
                    return false;
                }
                "panic" => panic!("probe panics in on_configure"),
                "tick_ms" => self.set_tick_period(Duration::from_millis(v.parse().unwrap_or(0))),
                "queue" => self.queue = Some(self.register_shared_queue(v)),
                "delay_done" => self.delay_done = true,
                "fetch" => {
                    let token = self
                        .dispatch_http_call(
                            v,
                            vec![
                                (":method", "GET"),
                                (":path", "/config"),
                                (":authority", "cfg.example.com"),
                            ],
                            None,
                            vec![],
                            Duration::from_secs(2),
                        )
                        .unwrap();
                    info!("root dispatched {token}");
                }
                other => {
                    error!("probe: unknown key {other}");
                    return false;
                }
            }
        }
        true
    }

    fn on_tick(&mut self) {
        if self.done_requested {
            proxy_wasm::hostcalls::done().unwrap();
            info!("root done");
            return;
        }
        self.ticks += 1;
        proxy_wasm::hostcalls::increment_metric(self.metrics.ticks, 1).unwrap();
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        info!("tick {} at {}", self.ticks, now.as_millis());
        // A CAS-guarded counter shared by every worker.
        loop {
            let (v, cas) = self.get_shared_data("probe/ticks");
            let n: u64 = v
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match self.set_shared_data("probe/ticks", Some((n + 1).to_string().as_bytes()), cas) {
                Ok(()) => break,
                Err(Status::CasMismatch) => continue,
                Err(e) => panic!("set_shared_data: {e:?}"),
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            info!("queue {queue_id} got {}", String::from_utf8_lossy(&item));
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            id: context_id,
            metrics: self.metrics,
            mode: String::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    id: u32,
    metrics: Metrics,
    mode: String,
}

impl Context for Probe {
    fn on_http_call_response(&mut self, token: u32, nh: usize, body_size: usize, _nt: usize) {
        if nh == 0 {
            // A reset: Envoy has no response maps now (reading a header would be BAD_ARGUMENT).
            let (code, msg) = self.get_grpc_status();
            warn!("call {token} reset: status {code} {msg:?}");
            self.send_http_response(502, vec![("x-probe-call", "reset")], Some(b"call failed"));
            return;
        }
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        info!("call {token} answered {status} with {} bytes", body.len());
        if status == "200" {
            self.set_http_request_header("x-call-body", Some(&String::from_utf8_lossy(&body)));
            self.resume_http_request();
        } else {
            self.send_http_response(
                503,
                vec![("x-probe-call", &status)],
                Some(b"upstream said no"),
            );
        }
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        proxy_wasm::hostcalls::increment_metric(self.metrics.requests, 1).unwrap();
        self.mode = self.get_http_request_header("x-probe").unwrap_or_default();
        info!(
            "ctx {} request headers n={n} eos={eos} mode={}",
            self.id, self.mode
        );
        match self.mode.as_str() {
            "props" => {
                let props = [
                    (
                        "source-address",
                        str_prop(self.get_property(vec!["source", "address"])),
                    ),
                    (
                        "destination-port",
                        i64_prop(self.get_property(vec!["destination", "port"])),
                    ),
                    (
                        "mtls",
                        format!("{:?}", self.get_property(vec!["connection", "mtls"])),
                    ),
                    (
                        "peer",
                        str_prop(self.get_property(vec!["connection", "uri_san_peer_certificate"])),
                    ),
                    ("path", str_prop(self.get_property(vec!["request", "path"]))),
                    ("host", str_prop(self.get_property(vec!["request", "host"]))),
                    ("plugin", str_prop(self.get_property(vec!["plugin_name"]))),
                    (
                        "custom",
                        str_prop(self.get_property(vec!["custom", "thing"])),
                    ),
                ];
                for (k, v) in props {
                    self.set_http_request_header(&format!("x-prop-{k}"), Some(&v));
                }
                self.set_property(vec!["probe", "seen"], Some(b"yes"));
                Action::Continue
            }
            "headers" => {
                self.add_http_request_header("x-added", "a1");
                self.add_http_request_header("x-added", "a2");
                self.set_http_request_header("x-replace", Some("new"));
                self.set_http_request_header("x-remove", None);
                let first = self.get_http_request_header("x-multi").unwrap_or_default();
                let all = self.get_http_request_headers();
                self.set_http_request_header("x-first-multi", Some(&first));
                self.set_http_request_header("x-count", Some(&all.len().to_string()));
                let missing = self.get_http_request_header("x-nope").is_none();
                self.set_http_request_header("x-missing-is-none", Some(&missing.to_string()));
                Action::Continue
            }
            "set-map" => {
                self.set_http_request_headers(vec![
                    (":method", "GET"),
                    (":path", "/replaced"),
                    (":authority", "x"),
                    ("X-Only", "1"),
                ]);
                Action::Continue
            }
            "deny" => {
                self.send_http_response(403, vec![("x-denied", "1")], Some(b"denied by probe"));
                Action::Pause
            }
            "call" | "call-unknown" | "call-bad" => {
                let cluster = if self.mode == "call-unknown" {
                    "nope"
                } else {
                    "idp"
                };
                let mut headers = vec![
                    (":method", "GET"),
                    (":path", "/jwks"),
                    (":authority", "idp.example.com"),
                ];
                if self.mode == "call-bad" {
                    headers.remove(1);
                }
                match self.dispatch_http_call(
                    cluster,
                    headers,
                    Some(b"ping"),
                    vec![],
                    Duration::from_secs(5),
                ) {
                    Ok(token) => {
                        info!("dispatched {token}");
                        Action::Pause
                    }
                    Err(e) => {
                        self.set_http_request_header("x-dispatch-error", Some(&format!("{e:?}")));
                        Action::Continue
                    }
                }
            }
            "cas" => {
                let (v, cas) = self.get_shared_data("probe/counter");
                let n: u64 = v
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let ok = self.set_shared_data(
                    "probe/counter",
                    Some((n + 1).to_string().as_bytes()),
                    cas,
                );
                // The same cas again is now stale.
                let stale =
                    self.set_shared_data("probe/counter", Some(b"stale"), cas.or(Some(12345)));
                self.set_http_request_header(
                    "x-cas",
                    Some(&format!("{n}->{} {ok:?} {stale:?}", n + 1)),
                );
                Action::Continue
            }
            "enqueue" => {
                let data = self.get_http_request_header("x-data").unwrap_or_default();
                let q = proxy_wasm::hostcalls::resolve_shared_queue("", "probe_q").unwrap();
                let r = q.map(|q| self.enqueue_shared_queue(q, Some(data.as_bytes())));
                self.set_http_request_header("x-enqueue", Some(&format!("{q:?} {r:?}")));
                Action::Continue
            }
            "metrics" => {
                proxy_wasm::hostcalls::record_metric(self.metrics.gauge, 42).unwrap();
                proxy_wasm::hostcalls::record_metric(self.metrics.hist, 7).unwrap();
                let zero = proxy_wasm::hostcalls::increment_metric(self.metrics.requests, 0);
                let hist = proxy_wasm::hostcalls::get_metric(self.metrics.hist);
                let v = proxy_wasm::hostcalls::get_metric(self.metrics.requests).unwrap();
                self.set_http_request_header("x-metric", Some(&format!("{v} {zero:?} {hist:?}")));
                Action::Continue
            }
            "time" => {
                let now = self
                    .get_current_time()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                self.set_http_request_header("x-now", Some(&now.as_secs().to_string()));
                Action::Continue
            }
            "panic" => panic!("probe panic: deliberate"),
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "oom" => {
                let v: Vec<u8> = std::hint::black_box(vec![7; 1 << 30]);
                self.set_http_request_header("x-len", Some(&v.len().to_string()));
                Action::Continue
            }
            "pause" => Action::Pause,
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if self.mode == "body" {
            let body = self.get_http_request_body(0, size).unwrap_or_default();
            let upper = String::from_utf8_lossy(&body).to_uppercase();
            self.set_http_request_body(0, size, upper.as_bytes());
            info!("body {size} eos={eos}");
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        let seen = self
            .get_http_request_trailer("x-trailer")
            .unwrap_or_default();
        self.add_http_request_trailer("x-probe-trailer", &format!("{n}:{seen}"));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("x-probe-response", Some("1"));
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("ctx {} log", self.id);
    }
}
