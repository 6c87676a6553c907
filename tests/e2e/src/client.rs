//! A minimal HTTP/1.1 client (one request per connection) over plain TCP or rustls, with exact
//! control of the headers sent (duplicates, case) and every wait bounded by a timeout.

use rustls::pki_types::ServerName;
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub host: String,
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

    fn encode(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.host
        );
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" || self.method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
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

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
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
    let mut s = connect(addr)?;
    exchange(&mut s, req)
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
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, connect(addr)?);
    exchange(&mut tls, req)
}

fn exchange<S: Read + Write>(s: &mut S, req: &Req) -> io::Result<Resp> {
    s.write_all(&req.encode())?;
    s.flush()?;
    // Read until the response is complete (not until EOF: after a local reply Envoy waits up to
    // its delayed_close_timeout, 1 s, for the client to close first).
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if response_complete(&raw) {
            break;
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            // A TLS peer closing without close_notify after a complete response.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    parse(&raw)
}

/// Whether `raw` holds a whole response (head plus a `Content-Length` or chunked body).
pub fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).to_ascii_lowercase();
    let body = raw.get(end + 4..).unwrap_or_default();
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|t| t == "chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    match header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => false,
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn parse(raw: &[u8]) -> io::Result<Resp> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of response head"))?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| bad("head not UTF-8"))?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        rest.get(..len).ok_or_else(|| bad("short body"))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("bad chunk"))?;
        let size_line = std::str::from_utf8(rest.get(..eol).unwrap_or_default())
            .map_err(|_| bad("bad chunk"))?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        rest = rest.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}
