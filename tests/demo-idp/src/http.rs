//! The HTTP/1.1 server of the demo IdP, the echo upstream and the e2e tests' own JWKS servers:
//! hyper on a tokio runtime of its own per [`Server`], behind a synchronous [`Handler`], so that
//! the handlers stay plain functions and the e2e tests need no async code.
//!
//! hyper does the protocol: keep-alive, pipelining, `Content-Length` and chunked bodies, HEAD,
//! and a 400 (431 for a head over [`MAX_HEAD`]) for a malformed request, after which the server
//! keeps serving. This module adds the limits, a 400 for a request target that is not a path, and
//! the [`Reply::Hang`] fault.

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// The largest request head (request line and headers) read; over it: 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest request body read; over it: 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// A connection that does not send a whole request head for this long is closed (hyper's
/// header read timeout: also ends idle keep-alive connections).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request, read whole.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub path: String,
    pub query: String,
    /// Header names lowercased (hyper's `http` types); duplicates kept in order; values that
    /// are not UTF-8 decoded lossily.
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
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
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

/// A response to send. `Content-Length` is added by hyper.
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
    /// Answer nothing for this long (or until the server stops), then close the connection.
    Hang(Duration),
}

/// Called on tokio's blocking pool, one call per request: a slow handler (key generation on
/// `/rotate`) delays only its own connection.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

/// A running server; stopped on drop.
pub struct Server {
    addr: SocketAddr,
    /// Dropping it (in [`Server::stop`]) ends the accept loop and every connection.
    runtime: Option<tokio::runtime::Runtime>,
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
        listener.set_nonblocking(true)?;
        // One worker thread is plenty for loopback tests; handlers run on the blocking pool.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("http-{}", addr.port()))
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept(listener, handler));
        Ok(Server {
            addr,
            runtime: Some(runtime),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until the process ends (for the CLI).
    pub fn join(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.block_on(std::future::pending::<()>());
        }
    }

    /// Closes the listener and every connection (a hanging one too).
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(listener: tokio::net::TcpListener, handler: Arc<dyn Handler>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: retry shortly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(Arc::clone(&handler), req));
            // A connection's errors (a malformed request, a client gone, a hang) end only it.
            let _ = http1::Builder::new()
                // A client may shut down its sending side once the request is out; it still
                // gets the answer.
                .half_close(true)
                .timer(TokioTimer::new())
                .header_read_timeout(IDLE_TIMEOUT)
                .max_header_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The error that makes hyper close a connection without answering ([`Reply::Hang`]).
#[derive(Debug)]
struct Hung;

impl std::fmt::Display for Hung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the handler chose not to answer")
    }
}

impl std::error::Error for Hung {}

async fn respond(
    handler: Arc<dyn Handler>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Hung> {
    let req = match read(req).await {
        Ok(req) => req,
        Err(resp) => return Ok(into_hyper(resp)),
    };
    match tokio::task::spawn_blocking(move || handler.handle(&req)).await {
        Ok(Reply::Respond(resp)) => Ok(into_hyper(resp)),
        Ok(Reply::Hang(d)) => {
            tokio::time::sleep(d).await;
            Err(Hung)
        }
        Err(_) => Ok(into_hyper(Response::text(500, "the handler panicked\n"))),
    }
}

/// The whole request, or the error answer.
async fn read(req: hyper::Request<Incoming>) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    // Origin form only (`/path?query`): what Envoy and curl send to an origin server.
    let target = parts.uri.path_and_query().map(|pq| pq.as_str());
    let target = match target {
        Some(t) if parts.uri.authority().is_none() && t.starts_with('/') => t.to_string(),
        _ => return Err(Response::text(400, "the request target is not a path\n")),
    };
    // A declared length over the limit is refused before reading; a chunked body as it grows.
    let too_large = || Response::text(413, "request body too large\n");
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(_) => return Err(Response::text(400, "incomplete or malformed body\n")),
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: headers(&parts.headers),
        body,
        target,
    })
}

fn headers(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_string(), v)
        })
        .collect()
}

fn into_hyper(resp: Response) -> hyper::Response<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    for (name, value) in &resp.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => {
                let msg = format!("the handler's header {name:?} is not valid HTTP\n");
                return into_hyper(Response::text(500, &msg));
            }
        }
    }
    let mut out = hyper::Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = headers;
    out
}
