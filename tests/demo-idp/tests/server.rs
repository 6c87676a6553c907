//! The demo IdP over real sockets: endpoints, control, bad input answered with a 4xx (never a
//! crash: the server keeps serving afterwards), and the server's `Hang` fault.
// Test code: failing loudly is the point here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard_demo_idp::http::{Handler, Reply, Request};
use meshguard_demo_idp::{Echo, Idp, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn raw(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn request(port: u16, method: &str, target: &str) -> (u16, String) {
    let resp = raw(
        port,
        format!("{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn idp() -> (Arc<Idp>, Server) {
    let idp = Arc::new(Idp::new("https://idp.test", 300).unwrap());
    let server = Server::start("127.0.0.1:0", idp.clone()).unwrap();
    (idp, server)
}

#[test]
fn endpoints_and_control() {
    let (idp, server) = idp();
    let port = server.port();
    let (st, body) = request(port, "GET", "/.well-known/openid-configuration");
    assert_eq!(st, 200);
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["jwks_uri"], "https://idp.test/.well-known/jwks.json");
    let (st, body) = request(port, "GET", "/.well-known/jwks.json");
    assert_eq!(st, 200);
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["EC", "RSA", "OKP"]);
    assert_eq!(idp.jwks_fetches(), 1);

    let (st, token) = request(
        port,
        "GET",
        "/token?alg=EdDSA&sub=bob&aud=a,b&exp_in=-5&scope=x%20y&kid=k1",
    );
    assert_eq!(st, 200);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64_decode = meshguard_test_support::b64_decode;
    let header: Value = serde_json::from_slice(&b64_decode(parts[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64_decode(parts[1])).unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("EdDSA"), Some("k1"))
    );
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
    assert_eq!(claims["scope"], "x y");
    assert!(claims["exp"].as_i64().unwrap() < claims["iat"].as_i64().unwrap());

    let before = idp.kids();
    let (st, body) = request(port, "POST", "/rotate");
    assert_eq!(st, 200, "{body}");
    assert_ne!(idp.kids(), before);
    assert_eq!(request(port, "POST", "/mode?jwks=503").0, 200);
    assert_eq!(request(port, "GET", "/.well-known/jwks.json").0, 503);
    assert_eq!(request(port, "POST", "/mode?jwks=garbage").0, 200);
    let (st, body) = request(port, "GET", "/.well-known/jwks.json");
    assert_eq!(st, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    assert_eq!(request(port, "POST", "/mode?jwks=ok").0, 200);
    let (st, body) = request(port, "GET", "/stats");
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["jwks_fetches"],
        3
    );
}

#[test]
fn bad_requests_get_4xx_and_the_server_keeps_serving() {
    let (_idp, server) = idp();
    let port = server.port();
    for bad in [
        &b"garbage\r\n\r\n"[..],
        b"GET nopath HTTP/1.1\r\n\r\n",
        b"GET http://idp.test/token HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        // A chunked body cut off by the client's end of sending.
        b"POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"\xff\xfe / HTTP/1.1\r\n\r\n",
    ] {
        let resp = raw(port, bad);
        assert!(resp.starts_with("HTTP/1.1 400 "), "{bad:?} → {resp:?}");
    }
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    let resp = raw(port, huge.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp:?}");
    let resp = raw(
        port,
        b"POST /token HTTP/1.1\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 413 "), "{resp:?}");
    for target in [
        "/token?alg=HS256",
        "/token?exp_in=soon",
        "/token?claims=[1]",
        "/token?what=1",
        "/mode?jwks=teapot",
    ] {
        let method = if target.starts_with("/mode") {
            "POST"
        } else {
            "GET"
        };
        assert_eq!(request(port, method, target).0, 400, "{target}");
    }
    assert_eq!(request(port, "GET", "/rotate").0, 405);
    assert_eq!(request(port, "GET", "/.well-known/jwks.json").0, 200);
}

#[test]
fn echo_returns_every_header_value_in_order() {
    let server = Server::start("127.0.0.1:0", Arc::new(Echo)).unwrap();
    let resp = raw(
        server.port(),
        b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n",
    );
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["path"], "/p?q=1");
    assert_eq!(v["headers"]["x-a"], serde_json::json!(["1", "2"]));
}

#[test]
fn a_complete_chunked_body_is_read() {
    let server = Server::start("127.0.0.1:0", Arc::new(Echo)).unwrap();
    let resp = raw(
        server.port(),
        b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["body_bytes"], 5);
}

/// Answers nothing, for `Hang`'s duration.
struct Hangs(Duration);

impl Handler for Hangs {
    fn handle(&self, _req: &Request) -> Reply {
        Reply::Hang(self.0)
    }
}

#[test]
fn a_hang_closes_without_an_answer_after_its_time_or_when_the_server_stops() {
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let server = Server::start("127.0.0.1:0", Arc::new(Hangs(Duration::from_millis(300)))).unwrap();
    let t = Instant::now();
    assert_eq!(raw(server.port(), get), "");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // A hang of two minutes ends when the server stops.
    let server = Server::start("127.0.0.1:0", Arc::new(Hangs(Duration::from_secs(120)))).unwrap();
    let port = server.port();
    let t = Instant::now();
    let client = std::thread::spawn(move || raw(port, get));
    std::thread::sleep(Duration::from_millis(200));
    drop(server);
    assert_eq!(client.join().unwrap(), "");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
