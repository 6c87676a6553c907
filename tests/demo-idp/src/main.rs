//! `meshguard-demo-idp`: the demo IdP and echo upstream as a command-line program.
//!
//!   meshguard-demo-idp idp  [--listen 127.0.0.1:18080] [--issuer URL] [--max-age SECONDS (0: no Cache-Control)]
//!   meshguard-demo-idp echo [--listen 127.0.0.1:18081]
//!
//! Each prints `listening on <addr>` once it accepts connections and serves until killed.

use meshguard_demo_idp::{Echo, Idp, Server};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage:\n  meshguard-demo-idp idp  [--listen ADDR] [--issuer URL] [--max-age SECONDS]\n  \
                     meshguard-demo-idp echo [--listen ADDR]\n";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshguard-demo-idp: {e}");
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut it = args.into_iter();
    let cmd = it.next().ok_or("missing command")?;
    let mut listen: Option<String> = None;
    let mut issuer: Option<String> = None;
    let mut max_age: u64 = 300;
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--issuer" => issuer = Some(value),
            "--max-age" => {
                max_age = value
                    .parse()
                    .map_err(|_| format!("bad --max-age {value:?}"))?
            }
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    let server = match cmd.as_str() {
        "idp" => {
            let listen = listen.unwrap_or_else(|| "127.0.0.1:18080".into());
            let listener =
                TcpListener::bind(&listen).map_err(|e| format!("listen {listen}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let issuer = issuer.unwrap_or_else(|| format!("http://{addr}"));
            let idp = Idp::new(&issuer, max_age).map_err(|e| e.to_string())?;
            let server = Server::start_on(listener, Arc::new(idp)).map_err(|e| e.to_string())?;
            println!("demo IdP issuer {issuer}");
            server
        }
        "echo" => {
            let listen = listen.unwrap_or_else(|| "127.0.0.1:18081".into());
            Server::start(&listen, Arc::new(Echo)).map_err(|e| format!("listen {listen}: {e}"))?
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    println!("listening on {}", server.addr());
    server.join();
    Ok(())
}
