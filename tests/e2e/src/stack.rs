//! One test group's world: the demo IdP and the echo upstream in-process on free loopback ports,
//! and one Envoy whose bootstrap the group builds from those ports.

use crate::envoy::{Envoy, TempDir};
use crate::paths;
use meshguard_demo_idp::{Echo, Idp, Mode, Server};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

/// The issuer of the demo IdP in the e2e tests.
pub const ISSUER: &str = "https://idp.meshguard.test";
/// Its JWKS URI (`:authority` and `:path` for the fetch through cluster `idp`).
pub const JWKS_URI: &str = "http://idp.meshguard.test/.well-known/jwks.json";

/// What a group's bootstrap builder gets.
pub struct Ports {
    pub idp: u16,
    pub echo: u16,
    pub wasm: PathBuf,
    /// For files the bootstrap refers to (certificates).
    pub dir: PathBuf,
}

pub struct StackOpts {
    pub concurrency: u32,
    /// `Cache-Control: max-age` of JWKS answers.
    pub max_age: u64,
    /// The IdP's JWKS mode while Envoy starts.
    pub initial_mode: Mode,
}

impl Default for StackOpts {
    fn default() -> Self {
        StackOpts {
            concurrency: 1,
            max_age: 300,
            initial_mode: Mode::Ok,
        }
    }
}

/// Fields drop in order: Envoy first, then the servers it talks to, then the files.
pub struct Stack {
    pub envoy: Envoy,
    pub idp: Arc<Idp>,
    pub idp_port: u16,
    _idp_server: Server,
    _echo_server: Server,
    pub dir: TempDir,
}

impl Stack {
    pub fn start(
        opts: StackOpts,
        bootstrap: impl FnOnce(&Ports) -> Result<Value, String>,
    ) -> Result<Stack, String> {
        Stack::start_with(opts, |p| {
            Ok((
                "envoy.json".to_string(),
                bootstrap(p)?.to_string().into_bytes(),
            ))
        })
    }

    /// Like [`Stack::start`] with a YAML bootstrap (e.g. a documented config with ports replaced).
    pub fn start_yaml(
        opts: StackOpts,
        bootstrap: impl FnOnce(&Ports) -> Result<String, String>,
    ) -> Result<Stack, String> {
        Stack::start_with(opts, |p| {
            Ok(("envoy.yaml".to_string(), bootstrap(p)?.into_bytes()))
        })
    }

    fn start_with(
        opts: StackOpts,
        bootstrap: impl FnOnce(&Ports) -> Result<(String, Vec<u8>), String>,
    ) -> Result<Stack, String> {
        let wasm = paths::wasm()?;
        let envoy_bin = paths::envoy()?;
        let dir = TempDir::new("stack").map_err(|e| e.to_string())?;
        let idp = Arc::new(Idp::new(ISSUER, opts.max_age).map_err(|e| e.to_string())?);
        idp.set_mode(opts.initial_mode);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let idp_server = Server::start_on(listener, idp.clone()).map_err(|e| e.to_string())?;
        let echo_server =
            Server::start("127.0.0.1:0", Arc::new(Echo)).map_err(|e| e.to_string())?;
        let ports = Ports {
            idp: idp_server.port(),
            echo: echo_server.port(),
            wasm,
            dir: dir.path().to_path_buf(),
        };
        let (name, config) = bootstrap(&ports)?;
        let envoy = Envoy::start_file(&envoy_bin, &name, &config, opts.concurrency)?;
        let idp_port = ports.idp;
        Ok(Stack {
            envoy,
            idp,
            idp_port,
            _idp_server: idp_server,
            _echo_server: echo_server,
            dir,
        })
    }

    /// The port of Envoy's listener `name`.
    pub fn port(&self, name: &str) -> u16 {
        self.envoy.port(name)
    }
}
