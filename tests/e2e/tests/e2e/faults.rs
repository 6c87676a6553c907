//! Fault injection against the real Envoy: the JWKS source hanging at start (the rule's
//! `timeout` bounds the wait and every request is decided), a 10 MB JWKS body (refused, never
//! used, Envoy unharmed), key rotation under a fixed-rate `wrk` load (zero failures for tokens of
//! a key that stays published), and an Envoy listener reload (LDS from a file) that changes the
//! plugin configuration while requests keep being decided by the old or the new one, never
//! failing; repeated token headers as Envoy delivers them; paused requests whose clients leave (their waiters are dropped, nothing resumes a dead stream). (JWKS down at start, 500s, garbage and hangs after a good fetch: `jwks.rs`.)

use crate::common::*;
use meshguard_demo_idp::http::{Handler, Reply, Request, Response};
use meshguard_demo_idp::keys::KeyPair;
use meshguard_demo_idp::{Alg, Idp, Mode, Server, TokenSpec};
use meshguard_e2e::stack::{ISSUER, StackOpts};
use meshguard_e2e::wait::poll;
use meshguard_e2e::{Envoy, Req, Stack, config, paths, send};
use serde_json::{Map, Value, json};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UNAVAILABLE: &str = "JWKS unavailable";

/// A JWKS server under the test's control: one key that always stays published (`stable`), the
/// keys of a rotating demo IdP, and optional padding (whitespace) to make the body huge.
struct JwksServer {
    stable: KeyPair,
    rotating: Idp,
    padding: AtomicUsize,
    fetches: AtomicU64,
}

impl JwksServer {
    fn new() -> Arc<JwksServer> {
        Arc::new(JwksServer {
            stable: KeyPair::generate(Alg::Es256).unwrap(),
            rotating: Idp::new(ISSUER, 0).unwrap(),
            padding: AtomicUsize::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    fn body(&self) -> Vec<u8> {
        let mut keys = vec![self.stable.jwk()];
        if let Some(list) = self.rotating.jwks().get("keys").and_then(Value::as_array) {
            keys.extend(list.iter().cloned());
        }
        let doc = json!({ "keys": keys }).to_string();
        let pad = self.padding.load(Ordering::SeqCst);
        // Valid JSON whatever the padding: a verifier without a size cap would accept it.
        let mut body = Vec::with_capacity(doc.len() + pad);
        body.push(b'{');
        body.resize(1 + pad, b' ');
        body.extend_from_slice(doc.get(1..).unwrap_or_default().as_bytes());
        body
    }

    /// A token of the stable key, for `aud`.
    fn stable_token(&self, aud: &str) -> String {
        let mut claims = Map::new();
        let now = meshguard_demo_idp::idp::now_unix();
        claims.insert("iss".into(), json!(ISSUER));
        claims.insert("sub".into(), json!("load-user"));
        claims.insert("aud".into(), json!(aud));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 600));
        self.stable.mint(&claims, &Map::new())
    }
}

impl Handler for JwksServer {
    fn handle(&self, req: &Request) -> Reply {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let _ = req;
        Reply::Respond(Response::new(200, "application/json", self.body()))
    }
}

/// A stack whose cluster `idp` is `server` (the kit's own IdP then stays unused).
fn stack_with_server(server_port: u16, concurrency: u32, plugin: Value) -> Stack {
    Stack::start(
        StackOpts {
            concurrency,
            ..Default::default()
        },
        move |p| {
            Ok(config::bootstrap(
                vec![config::listener(
                    LISTENER,
                    vec![config::meshguard(&p.wasm, &plugin)],
                    None,
                )],
                vec![
                    config::cluster("upstream", p.echo),
                    config::cluster("idp", server_port),
                ],
            ))
        },
    )
    .unwrap()
}

fn assert_not_5xx(r: &meshguard_e2e::Resp) {
    assert!(r.status < 500, "never a 5xx: {}", r.summary());
}

#[test]
fn jwks_hang_at_start_requests_are_decided_within_the_timeout() {
    let mut r = rule();
    r["timeout"] = json!("2s");
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 2,
            max_age: 0,
            initial_mode: Mode::Hang,
        },
        json!({"jwtRules": [r]}),
    );
    let port = stack.port(LISTENER);
    let token = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    // Six concurrent requests while the IdP accepts and never answers: each is paused, then
    // answered 401 "JWKS unavailable" once the 2 s timeout passes — not after the hang.
    let started = Instant::now();
    let results: Vec<(u16, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let token = token.clone();
                s.spawn(move || {
                    let t = Instant::now();
                    let r = send(port, &Req::get(&format!("/api/hang{i}")).bearer(&token)).unwrap();
                    assert_not_5xx(&r);
                    if r.status == 401 {
                        assert_401(&r, &format!("/api/hang{i}"), UNAVAILABLE);
                    }
                    (r.status, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, took) in &results {
        assert_eq!(*status, 401, "{results:?}");
        assert!(
            *took < Duration::from_secs(6),
            "decided after {took:?}: the 2 s timeout was not honoured"
        );
    }
    eprintln!(
        "hang at start: {results:?} (all within {:?})",
        started.elapsed()
    );
    // Requests without a token are not held by the outage.
    let t = Instant::now();
    let r = send(port, &Req::get("/api/anonymous")).unwrap();
    assert_echo(&r);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The IdP comes back: tokens verify again without a restart.
    let pid = stack.envoy.pid();
    stack.idp.set_mode(Mode::Ok);
    poll(Duration::from_secs(40), Duration::from_millis(200), || {
        let r = send(port, &Req::get("/api/back").bearer(&token)).map_err(|e| e.to_string())?;
        assert_not_5xx(&r);
        Ok((r.status == 200).then_some(()))
    })
    .unwrap_or_else(|e| panic!("no recovery after the hang: {e}; {}", stack.idp.stats()));
    assert_eq!(stack.envoy.pid(), pid);
}

/// Requests paused for the JWKS whose clients leave (a GET, and a POST with its body still
/// being buffered): Envoy resets their streams, `proxy_on_done` drops their waiters, and when
/// the keys come the root resumes nothing that is gone. Envoy stays up, nothing is logged at
/// critical level, and a new request is decided.
#[test]
fn paused_requests_whose_clients_leave_are_forgotten() {
    use std::io::Write as _;
    let mut r = rule();
    r["timeout"] = json!("3s");
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 1,
            max_age: 0,
            initial_mode: Mode::Hang,
        },
        json!({"jwtRules": [r]}),
    );
    let port = stack.port(LISTENER);
    let pid = stack.envoy.pid();
    let token = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    let requests = [
        format!(
            "GET /api/gone HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
        format!(
            "POST /api/gone HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 100\r\n\r\nhalf a body"
        ),
    ];
    for request in &requests {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        // Long enough for Envoy to run the filter and pause, short of the 3 s timeout.
        std::thread::sleep(Duration::from_millis(300));
        drop(c);
    }
    // Both streams were still open (paused in the filter) when their connections went away.
    let cut: u64 = stack
        .envoy
        .stats()
        .iter()
        .filter(|(k, _)| k.starts_with("http.") && k.ends_with(".downstream_cx_destroy_active_rq"))
        .map(|(_, v)| *v)
        .sum();
    assert!(
        cut >= 2,
        "the clients left before a decision: {cut} active streams cut"
    );
    // The keys come back after the clients left; then the deadline of the waiters passes too.
    stack.idp.set_mode(Mode::Ok);
    std::thread::sleep(Duration::from_secs(4));
    poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let r = send(port, &Req::get("/api/after").bearer(&token)).map_err(|e| e.to_string())?;
        assert_not_5xx(&r);
        Ok((r.status == 200).then_some(()))
    })
    .unwrap_or_else(|e| panic!("no decision after the clients left: {e}"));
    assert_eq!(stack.envoy.pid(), pid, "Envoy restarted");
    let log = stack.envoy.log();
    assert!(
        !log.contains("][critical]") && !log.contains("panicked"),
        "{}",
        stack.envoy.log_tail(40)
    );
}

#[test]
fn ten_megabyte_jwks_body_is_refused() {
    let server = JwksServer::new();
    server.padding.store(10 << 20, Ordering::SeqCst);
    let http = Server::start("127.0.0.1:0", server.clone()).unwrap();
    let mut r = rule();
    r["timeout"] = json!("3s");
    r["jwksCacheDurationSeconds"] = json!(2);
    let stack = stack_with_server(http.port(), 1, json!({"jwtRules": [r]}));
    let port = stack.port(LISTENER);
    let pid = stack.envoy.pid();
    let token = server.stable_token(AUD);
    // The body is a valid JWKS holding the token's key: only the size cap can refuse it.
    poll(Duration::from_secs(15), Duration::from_millis(100), || {
        Ok((server.fetches.load(Ordering::SeqCst) >= 1).then_some(()))
    })
    .expect("no JWKS fetch");
    for i in 0..3 {
        let path = format!("/api/huge{i}");
        let r = send(port, &Req::get(&path).bearer(&token)).unwrap();
        assert_401(&r, &path, UNAVAILABLE);
    }
    let failed = stack
        .envoy
        .stat("wasmcustom.meshguard.jwks.https___idp_meshguard_test.fetch_failed");
    assert!(failed >= 1, "fetch_failed = {failed}");
    assert_eq!(stack.envoy.pid(), pid, "Envoy survived the 10 MB body");
    // A normal body next time: accepted.
    server.padding.store(0, Ordering::SeqCst);
    poll(Duration::from_secs(40), Duration::from_millis(200), || {
        let r = send(port, &Req::get("/api/normal").bearer(&token)).map_err(|e| e.to_string())?;
        assert_not_5xx(&r);
        Ok((r.status == 200).then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "normal JWKS not picked up: {e}\n{}",
            stack.envoy.log_tail(30)
        )
    });
    assert_eq!(stack.envoy.pid(), pid);
}

/// `wrk` on PATH, installed with apt-get when missing (bounded); `None` when that fails.
fn wrk() -> Option<String> {
    let found = |name: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(path) = found("wrk") {
        return Some(path);
    }
    let _ = Command::new("timeout")
        .args(["300", "apt-get", "install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    found("wrk")
}

/// wrk's summary line from our Lua `done()`.
#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    status_errors: u64,
    socket_errors: u64,
}

fn run_wrk(wrk: &str, dir: &std::path::Path, port: u16, token: &str, secs: u64) -> WrkResult {
    // Fixed rate: each of 4 connections waits 20 ms before each request (≈ 200 requests/s,
    // far below saturation on 2 cores, so failures are decisions, not overload).
    let script = format!(
        r#"wrk.headers["Authorization"] = "Bearer {token}"
function delay() return 20 end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("MGRESULT requests=%d status=%d socket=%d\n", summary.requests,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#
    );
    let path = dir.join("load.lua");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("timeout")
        .arg((secs + 30).to_string())
        .arg(wrk)
        .args([
            "-t",
            "2",
            "-c",
            "4",
            "-d",
            &format!("{secs}s"),
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(&path)
        .arg(format!("http://127.0.0.1:{port}/api/load"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("MGRESULT"))
        .unwrap_or_else(|| {
            panic!(
                "wrk gave no result: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    WrkResult {
        requests: field("requests"),
        status_errors: field("status"),
        socket_errors: field("socket"),
    }
}

#[test]
fn key_rotation_under_load_fails_no_request_of_a_published_key() {
    let Some(wrk) = wrk() else {
        panic!("wrk is required (apt-get install -y wrk failed)");
    };
    let server = JwksServer::new();
    let http = Server::start("127.0.0.1:0", server.clone()).unwrap();
    let mut r = rule();
    // Short cache so the JWKS is refetched (and re-parsed by every worker) during the load.
    r["jwksCacheDurationSeconds"] = json!(1);
    let stack = stack_with_server(http.port(), 2, json!({"jwtRules": [r]}));
    let port = stack.port(LISTENER);
    let token = server.stable_token(AUD);
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let r = send(port, &Req::get("/api/warm").bearer(&token)).map_err(|e| e.to_string())?;
        Ok((r.status == 200).then_some(()))
    })
    .expect("stable key never accepted");
    let f0 = server.fetches.load(Ordering::SeqCst);
    let secs = 12;
    let rotations = Mutex::new(0u32);
    let result = std::thread::scope(|s| {
        let load = s.spawn(|| run_wrk(&wrk, stack.dir.path(), port, &token, secs));
        // Meanwhile: rotate the other keys every second and use each new key once (an
        // unknown-kid refetch), until wrk is done.
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            server.rotating.rotate().unwrap();
            *rotations.lock().unwrap() += 1;
            let fresh = server
                .rotating
                .mint(&TokenSpec::default().aud(AUD))
                .unwrap();
            let r = send(port, &Req::get("/api/rotated").bearer(&fresh)).unwrap();
            assert_not_5xx(&r);
            std::thread::sleep(Duration::from_secs(1));
        }
        load.join().unwrap()
    });
    let fetches = server.fetches.load(Ordering::SeqCst) - f0;
    let rotations = *rotations.lock().unwrap();
    eprintln!(
        "rotation under load: {result:?}, {rotations} rotations, {fetches} JWKS fetches in {secs} s"
    );
    assert_eq!(
        result.status_errors, 0,
        "non-200 answers for a published key"
    );
    assert_eq!(result.socket_errors, 0, "connection errors");
    assert!(
        result.requests >= secs * 50,
        "load too low to mean anything: {result:?}"
    );
    assert!(
        rotations >= 5 && fetches >= 5,
        "keys did not change under load"
    );
}

/// A free loopback port (bound then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes the LDS file atomically (Envoy watches for a rename into place).
fn write_lds(dir: &std::path::Path, listener: &Value) {
    let mut resource = listener.clone();
    resource["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    let doc = json!({"version_info": Instant::now().elapsed().as_nanos().to_string(), "resources": [resource]});
    let tmp = dir.join("lds.json.tmp");
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("lds.json")).unwrap();
}

#[test]
fn listener_reload_keeps_deciding() {
    let idp = Arc::new(Idp::new(ISSUER, 300).unwrap());
    let idp_server = Server::start("127.0.0.1:0", idp.clone()).unwrap();
    let echo = Server::start("127.0.0.1:0", Arc::new(meshguard_demo_idp::Echo)).unwrap();
    let dir = meshguard_e2e::TempDir::new("reload").unwrap();
    let wasm = paths::wasm().unwrap();
    let listen = free_port();
    let listener_for = |aud: &str| {
        let mut r = rule();
        r["audiences"] = json!([aud]);
        let mut l = config::listener(
            LISTENER,
            vec![config::meshguard(&wasm, &json!({"jwtRules": [r]}))],
            None,
        );
        l["address"]["socket_address"]["port_value"] = json!(listen);
        l
    };
    write_lds(dir.path(), &listener_for("aud-one"));
    let bootstrap = json!({
        "node": {"id": "meshguard-e2e", "cluster": "e2e"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {"lds_config": {
            "resource_api_version": "V3",
            "path_config_source": {"path": dir.path().join("lds.json").display().to_string()},
        }},
        "static_resources": {"clusters": [
            config::cluster("upstream", echo.port()),
            config::cluster("idp", idp_server.port()),
        ]},
    });
    let envoy = Envoy::start(&paths::envoy().unwrap(), &bootstrap, 2).unwrap();
    let pid = envoy.pid();
    let one = idp.mint(&TokenSpec::default().aud("aud-one")).unwrap();
    let two = idp.mint(&TokenSpec::default().aud("aud-two")).unwrap();
    let status = |token: &str| -> u16 {
        let r = send(listen, &Req::get("/api/reload").bearer(token)).unwrap();
        assert!(r.status == 200 || r.status == 401, "{}", r.summary());
        r.status
    };
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        Ok((status(&one) == 200).then_some(()))
    })
    .unwrap_or_else(|e| panic!("first config never served: {e}\n{}", envoy.log_tail(40)));
    assert_eq!(status(&two), 401);

    // Reload with the other audience while a client keeps sending both tokens: every answer is
    // the old configuration's or the new one's (200/401, never an error), and the switch is
    // short. Each request is its own connection and the workers apply the update independently,
    // so around the switch one request may still meet the old filter chain while the one before
    // it met the new: only old answers well after the first new one would be a fault.
    let updates = envoy.stat("listener_manager.lds.update_success");
    write_lds(dir.path(), &listener_for("aud-two"));
    let mut first_new: Option<std::time::Instant> = None;
    let switched = poll(Duration::from_secs(30), Duration::from_millis(20), || {
        for (token, old_config_status) in [(&one, 200), (&two, 401)] {
            if status(token) == old_config_status {
                if let Some(at) = first_new {
                    assert!(
                        at.elapsed() < Duration::from_secs(2),
                        "old configuration still answering {:?} after the new one",
                        at.elapsed()
                    );
                }
            } else {
                first_new.get_or_insert_with(std::time::Instant::now);
            }
        }
        Ok((status(&one) == 401 && status(&two) == 200).then_some(()))
    });
    switched.unwrap_or_else(|e| panic!("new config never served: {e}\n{}", envoy.log_tail(40)));
    assert!(envoy.stat("listener_manager.lds.update_success") > updates);
    for _ in 0..20 {
        assert_eq!(
            (status(&one), status(&two)),
            (401, 200),
            "stable after the reload"
        );
    }
    // And back, once more.
    write_lds(dir.path(), &listener_for("aud-one"));
    poll(Duration::from_secs(30), Duration::from_millis(20), || {
        Ok((status(&one) == 200 && status(&two) == 401).then_some(()))
    })
    .unwrap_or_else(|e| panic!("second reload not served: {e}\n{}", envoy.log_tail(40)));
    assert_eq!(envoy.pid(), pid, "no restart");
}

#[test]
fn repeated_token_headers() {
    // What a Wasm filter sees of a repeated header is Envoy's choice: `authorization` is one of
    // Envoy's inline headers, which its HTTP/1 codec joins with `,` into one value; other headers
    // stay separate and the filter reads the first value. Pinned here (SECURITY.md "Repeated
    // token headers") so a change in Envoy or meshguard is noticed.
    let mut r = rule();
    r["fromHeaders"] = json!([{"name": "Authorization", "prefix": "Bearer "}, {"name": "x-jwt"}]);
    let stack = meshguard_stack(StackOpts::default(), json!({"jwtRules": [r]}));
    let port = stack.port(LISTENER);
    let good = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    let forged = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).tamper())
        .unwrap();
    // `authorization` repeated: joined into one value that is not a token → 401, fail closed.
    let mut hundred = Req::get("/api/a100").bearer(&good);
    for _ in 0..99 {
        hundred = hundred.bearer(&forged);
    }
    let r = send(port, &hundred).unwrap();
    assert_401(&r, "/api/a100", "Jwt is too large");
    for (path, req) in [
        ("/api/a2", Req::get("/api/a2").bearer(&forged).bearer(&good)),
        ("/api/a3", Req::get("/api/a3").bearer(&good).bearer(&good)),
    ] {
        let r = send(port, &req).unwrap();
        assert_401(
            &r,
            path,
            "Jwt is not in the form of Header.Payload.Signature",
        );
    }
    // A joined value that does not start with the prefix carries no token: unauthenticated (no
    // policies here, so passed on), no claim headers, the joined value forwarded as is.
    let r = send(
        port,
        &Req::get("/api/a4")
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .bearer(&forged),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), Vec::<String>::new());
    assert_eq!(
        r.echoed("authorization"),
        [format!("Basic dXNlcjpwYXNz,Bearer {forged}")]
    );
    // A non-inline header repeated: Envoy hands a Wasm filter only the first value, so meshguard
    // refuses the request whatever the values (jwt_authn verifies each and refuses a forged one).
    for (path, first, second) in [
        ("/api/x1", &good, &forged),
        ("/api/x2", &forged, &good),
        ("/api/x3", &good, &good),
    ] {
        let r = send(
            port,
            &Req::get(path)
                .header("x-jwt", first)
                .header("x-jwt", second),
        )
        .unwrap();
        assert_401(&r, path, "Jwt header [x-jwt] appears more than once");
    }
    // Once: the token verifies and the header is removed.
    let r = send(port, &Req::get("/api/x4").header("x-jwt", &good)).unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), ["alice"]);
    assert_eq!(r.echoed("x-jwt"), Vec::<String>::new());
}

/// Sends raw request bytes (anything, including non-UTF-8 header values); returns the status
/// line's code and the response text.
fn send_raw(port: u16, request: &[u8]) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.len() > 12 {
                    // Enough for the status line and headers of a local reply.
                    let text = String::from_utf8_lossy(&out);
                    if text.contains("content-length: 0") || text.ends_with('\n') || n < buf.len() {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[test]
fn hostile_requests_end_to_end() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let stack = meshguard_stack(StackOpts::default(), json!({"jwtRules": [rule()]}));
    let port = stack.port(LISTENER);
    let good = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    let claims = json!({"iss": ISSUER, "sub": "admin", "aud": AUD,
        "exp": meshguard_demo_idp::idp::now_unix() + 600});
    let forge = |header: Value, sig: &[u8]| {
        format!(
            "{}.{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string()),
            B64.encode(sig)
        )
    };
    for alg in ["none", "None", "nOnE"] {
        let t = forge(json!({"alg": alg}), b"");
        let r = send(port, &Req::get("/api/none").bearer(&t)).unwrap();
        assert_401(
            &r,
            "/api/none",
            "Jwt header [alg] none is not allowed: the Jwt is unsigned",
        );
    }
    let t = forge(json!({"alg": "HS256", "typ": "JWT"}), &[7u8; 32]);
    let r = send(port, &Req::get("/api/hs").bearer(&t)).unwrap();
    assert_401(
        &r,
        "/api/hs",
        "Jwt header [alg] HMAC (HS*) is not allowed with public keys",
    );
    // An attacker key in the `jwk` header, signing for the IdP's issuer: never trusted.
    let attacker = KeyPair::generate(Alg::EdDsa).unwrap();
    let mut extra = Map::new();
    extra.insert("jwk".into(), attacker.jwk());
    let c: Map<String, Value> = claims.as_object().unwrap().clone();
    let t = attacker.mint(&c, &extra);
    let r = send(port, &Req::get("/api/jwk").bearer(&t)).unwrap();
    assert_401(
        &r,
        "/api/jwk",
        "Jwks doesn't have key to match kid or alg from Jwt",
    );
    // A 1 MB cookie never reaches the filter: Envoy's header limit (60 KiB) answers 431.
    let big = format!("np_scope_token={good}; pad={}", "x".repeat(1 << 20));
    let (code, _) = send_raw(
        port,
        format!("GET /api/big HTTP/1.1\r\nHost: api.example.com\r\nCookie: {big}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(code, 431);
    // Invalid UTF-8 after the prefix: a malformed token (401), never an anonymous request.
    let mut req =
        b"GET /api/utf8 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer ".to_vec();
    req.extend_from_slice(good.as_bytes());
    req.extend_from_slice(b"\xff\xfe\r\nConnection: close\r\n\r\n");
    let (code, text) = send_raw(port, &req);
    assert_eq!(code, 401, "{text}");
    assert!(
        text.contains("error_description=\"Jwt is not in the form of Header.Payload.Signature\""),
        "{text}"
    );
    // Header and cookie tokens of different issuers, the second without a rule: 401.
    let other = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).iss("https://other.example"))
        .unwrap();
    let r = send(
        port,
        &Req::get("/api/two")
            .bearer(&good)
            .header("Cookie", &format!("np_scope_token={other}")),
    )
    .unwrap();
    assert_401(&r, "/api/two", "Jwt issuer is not configured");
    // Both of the configured issuer: both verified, the header's is the principal.
    let second = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).subject("bob"))
        .unwrap();
    let r = send(
        port,
        &Req::get("/api/both")
            .bearer(&good)
            .header("Cookie", &format!("np_scope_token={second}")),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), ["alice"]);
}
