//! The tests' HTTP/1.1 client: hyper's connection-level client (one request per connection) over
//! plain TCP or rustls (tokio-rustls), with the headers, `Host` and TLS server name each request
//! states, and every exchange bounded by [`IO_TIMEOUT`].
//!
//! hyper's connection API rather than a higher-level client: a test names the address to dial
//! (127.0.0.x), the `Host` header and the SNI separately, and brings its own rustls config (the
//! client certificate). A new connection per request lets Envoy spread requests over its workers.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub host: String,
    /// Sent in this order, except that hyper sends all values of one name together (in their
    /// order) at the place of the name's first one. Names go out lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            host: "api.example.com".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn get(path: &str) -> Req {
        Req::new("GET", path)
    }
    pub fn post(path: &str) -> Req {
        Req::new("POST", path)
    }
    pub fn host(mut self, host: &str) -> Req {
        self.host = host.into();
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn bearer(self, token: &str) -> Req {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    pub fn body(mut self, body: &[u8]) -> Req {
        self.body = body.to_vec();
        self
    }

    /// As hyper's request: `Host` first, then the headers, `Content-Length` for a body (and for
    /// an empty POST or PUT, as curl sends it), `Connection: close`.
    fn to_hyper(&self) -> io::Result<hyper::Request<Full<Bytes>>> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|e| invalid(&format!("method {:?}", self.method), &e))?;
        let uri: Uri = self
            .path
            .parse()
            .map_err(|e| invalid(&format!("path {:?}", self.path), &e))?;
        let mut req = hyper::Request::new(Full::new(Bytes::from(self.body.clone())));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let mut add = |name: &str, value: &str| -> io::Result<()> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(&format!("header name {name:?}"), &e))?;
            let v = HeaderValue::from_str(value)
                .map_err(|e| invalid(&format!("header {name} value {value:?}"), &e))?;
            req.headers_mut().append(n, v);
            Ok(())
        };
        add("host", &self.host)?;
        for (n, v) in &self.headers {
            add(n, v)?;
        }
        if !self.body.is_empty() || self.method == "POST" || self.method == "PUT" {
            add("content-length", &self.body.len().to_string())?;
        }
        add("connection", "close")?;
        Ok(req)
    }
}

/// A response received.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Names lowercased; duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// For a response of the echo upstream: every value of request header `name` it received.
    pub fn echoed(&self, name: &str) -> Vec<String> {
        self.json()
            .get("headers")
            .and_then(|h| h.get(name.to_ascii_lowercase()))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// For a response of the echo upstream: the request target it received.
    pub fn echoed_path(&self) -> String {
        self.json()
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// A one-line summary for assertion messages (status, a few headers, body prefix).
    pub fn summary(&self) -> String {
        let text = self.text();
        let body: String = text.chars().take(400).collect();
        format!("{} {:?} {body:?}", self.status, self.headers)
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends `req` over plain HTTP to 127.0.0.1:`port`.
pub fn send(port: u16, req: &Req) -> io::Result<Resp> {
    send_to(loopback(port), req)
}

/// Sends `req` over plain HTTP to `addr` (another loopback address, e.g. 127.0.0.2).
pub fn send_to(addr: SocketAddr, req: &Req) -> io::Result<Resp> {
    let req = req.to_hyper()?;
    run(async move { exchange(TokioIo::new(connect(addr).await?), req).await })
}

/// Sends `req` over TLS (client certificate per `config`) to 127.0.0.1:`port`.
pub fn send_tls(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
    req: &Req,
) -> io::Result<Resp> {
    send_tls_to(loopback(port), config, sni, req)
}

/// [`send_tls`] to `addr`.
pub fn send_tls_to(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
    req: &Req,
) -> io::Result<Resp> {
    let name =
        ServerName::try_from(sni.to_string()).map_err(|e| io::Error::other(e.to_string()))?;
    let req = req.to_hyper()?;
    run(async move {
        let tcp = connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        exchange(TokioIo::new(tls), req).await
    })
}

/// Runs one exchange on a runtime of its own (the tests call from many threads at once), within
/// [`IO_TIMEOUT`]. Dropping the runtime closes the connection.
fn run(exchange: impl Future<Output = io::Result<Resp>>) -> io::Result<Resp> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(IO_TIMEOUT, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response in time"))?
    })
}

async fn connect(addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn exchange<T>(io: T, req: hyper::Request<Full<Bytes>>) -> io::Result<Resp>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(io).await.map_err(io::Error::other)?;
    // The connection task runs on this runtime while the response is awaited below.
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    Ok(Resp {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_string(), v)
            })
            .collect(),
        body: body.to_vec(),
    })
}
