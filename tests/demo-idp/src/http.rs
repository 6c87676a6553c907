//! A small HTTP/1.1 server on `std::net`: one thread per connection, keep-alive, `Content-Length`
//! bodies only. Enough for Envoy's JWKS fetches, an echo upstream and curl; every malformed or
//! oversized request gets a 400 and a closed connection, never a crash.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub path: String,
    pub query: String,
    /// Header names as sent; duplicates kept in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Query parameters, percent-decoded (`+` is a space), in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect()
    }

    /// The first query parameter with this name.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, body: &str) -> Self {
        Response::new(status, "text/plain", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a handler wants done with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond(Response),
    /// Read nothing more and answer nothing for this long (or until the server stops), then close.
    Hang(Duration),
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

/// A running server; stopped on drop.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `listen` (e.g. `127.0.0.1:0` for a free port) and serves `handler` until stopped.
    pub fn start(listen: &str, handler: Arc<dyn Handler>) -> io::Result<Server> {
        Server::start_on(TcpListener::bind(listen)?, handler)
    }

    /// Serves `handler` on an already bound listener (to learn a free port before building the
    /// handler).
    pub fn start_on(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name(format!("http-accept-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let handler = Arc::clone(&handler);
                    let stop3 = Arc::clone(&stop2);
                    // A failed spawn only drops this connection.
                    let _ = std::thread::Builder::new()
                        .name("http-conn".into())
                        .spawn(move || serve_connection(stream, handler.as_ref(), &stop3));
                }
            })?;
        Ok(Server {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Blocks until the server stops (for the CLI).
    pub fn join(mut self) {
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }

    pub fn stop(&mut self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

enum ReadOutcome {
    Request(Request),
    Closed,
    Bad(&'static str),
}

fn serve_connection(mut stream: TcpStream, handler: &dyn Handler, stop: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let req = match read_request(&mut stream, &mut buf, stop) {
            ReadOutcome::Request(r) => r,
            ReadOutcome::Closed => return,
            ReadOutcome::Bad(why) => {
                let resp = Response::text(400, why).with_header("connection", "close");
                let _ = write_response(&mut stream, &resp, false);
                lingering_close(stream);
                return;
            }
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handler.handle(&req) {
            Reply::Respond(resp) => {
                let head_only = req.method.eq_ignore_ascii_case("HEAD");
                if write_response(&mut stream, &resp, head_only).is_err() || close {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
            Reply::Hang(d) => {
                let until = Instant::now() + d;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    let mut b = [0u8; 512];
                    match stream.read(&mut b) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {}
                        Err(_) => return,
                    }
                }
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Closes after an error answer without resetting the connection: stop writing, then read and
/// discard what the client is still sending (bounded), so the answer is not lost to a RST.
fn lingering_close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 8192];
    let mut total = 0usize;
    while Instant::now() < until && total < MAX_BODY {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads more bytes into `buf`; false on EOF, error, idle timeout or stop.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool, idle_since: Instant) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(Ordering::SeqCst) || idle_since.elapsed() > IDLE_TIMEOUT {
            return false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                return true;
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return false,
        }
    }
}

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> ReadOutcome {
    let started = Instant::now();
    let head_end = loop {
        if let Some(i) = find_head_end(buf) {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return ReadOutcome::Bad("request head too large");
        }
        if !fill(stream, buf, stop, started) {
            return if buf.is_empty() {
                ReadOutcome::Closed
            } else {
                ReadOutcome::Bad("incomplete request")
            };
        }
    };
    let head: Vec<u8> = buf.drain(..head_end + 4).collect();
    let Ok(head) = String::from_utf8(head) else {
        return ReadOutcome::Bad("request head is not UTF-8");
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ReadOutcome::Bad("malformed request line");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return ReadOutcome::Bad("malformed request line");
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return ReadOutcome::Bad("malformed header line");
        };
        if name.is_empty() || name.contains(' ') {
            return ReadOutcome::Bad("malformed header name");
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        path: String::new(),
        query: String::new(),
        headers,
        body: Vec::new(),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    req.path = path.to_string();
    req.query = query.to_string();
    if req.header("transfer-encoding").is_some() {
        return ReadOutcome::Bad("chunked request bodies are not supported");
    }
    let len = match req.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(_) => return ReadOutcome::Bad("bad or too large content-length"),
    };
    while buf.len() < len {
        if !fill(stream, buf, stop, started) {
            return ReadOutcome::Bad("incomplete body");
        }
    }
    req.body = buf.drain(..len).collect();
    ReadOutcome::Request(req)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(stream: &mut TcpStream, resp: &Response, head_only: bool) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (n, v) in &resp.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", resp.body.len()));
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&resp.body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}
