//! A TLS front for a plain HTTP server (the demo IdP), so that Envoy can fetch JWKS over HTTPS in
//! the tests: it terminates TLS (tokio-rustls, a certificate from [`crate::tls::Pki`]) and copies
//! bytes both ways to the backend. A byte relay rather than an HTTP proxy: HTTP stays between
//! Envoy and the IdP's server, and this needs no HTTP library.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

pub struct TlsProxy {
    addr: SocketAddr,
    /// Dropping it ends the accept loop and every relayed connection.
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsProxy {
    /// Listens on a free loopback port; relays to 127.0.0.1:`backend`.
    pub fn start(config: Arc<rustls::ServerConfig>, backend: u16) -> io::Result<TlsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tls-proxy")
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    // Out of file descriptors and the like: retry shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                tokio::spawn(relay(acceptor.clone(), tcp, backend));
            }
        });
        Ok(TlsProxy {
            addr,
            runtime: Some(runtime),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// One connection: the handshake, then bytes both ways until either side closes (then the TLS
/// side gets a close_notify).
async fn relay(acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream, backend: u16) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
}
