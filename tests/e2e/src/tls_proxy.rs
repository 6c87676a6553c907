//! A TLS front for a plain HTTP/1.1 server (the demo IdP): terminates TLS with a certificate from
//! [`crate::tls::Pki`] and relays each request/response to the backend, one at a time per
//! connection (no pipelining), so Envoy can fetch JWKS over HTTPS in the tests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct TlsProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// Listens on a free loopback port; relays to 127.0.0.1:`backend`.
    pub fn start(config: Arc<rustls::ServerConfig>, backend: u16) -> io::Result<TlsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("tls-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = conn else { continue };
                    let config = Arc::clone(&config);
                    let _ = std::thread::Builder::new()
                        .name("tls-proxy-conn".into())
                        .spawn(move || relay(tcp, config, backend));
                }
            })?;
        Ok(TlsProxy {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn relay(tcp: TcpStream, config: Arc<rustls::ServerConfig>, backend: u16) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", backend)) else {
        return;
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
    // One request at a time (GET/HEAD without a body: all the IdP is asked for here).
    let head_done = |b: &[u8]| b.windows(4).any(|w| w == b"\r\n\r\n");
    while let Some(req) = read_until(&mut tls, head_done) {
        if up.write_all(&req).is_err() {
            break;
        }
        let Some(resp) = read_until(&mut up, crate::client::response_complete) else {
            break;
        };
        if tls.write_all(&resp).and_then(|()| tls.flush()).is_err() {
            break;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Both);
}

fn read_until(s: &mut impl Read, done: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while !done(&buf) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
        if buf.len() > 4 * 1024 * 1024 {
            return None;
        }
    }
    Some(buf)
}
