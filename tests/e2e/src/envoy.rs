//! Starting a real Envoy on loopback: config written to a private temp dir, admin and listeners on
//! free ports (port 0, learned from the admin API), readiness polled, the process always reaped.

use crate::client::{Req, send};
use crate::wait::poll;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A private directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> io::Result<TempDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("meshguard-e2e-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, contents)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MESHGUARD_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running Envoy; killed and reaped on drop.
pub struct Envoy {
    child: Child,
    pub admin_port: u16,
    listeners: BTreeMap<String, u16>,
    dir: TempDir,
}

impl Envoy {
    /// Starts `envoy` with the bootstrap `config` and `--concurrency concurrency`; returns once the
    /// admin API says LIVE and every listener has a port.
    pub fn start(envoy: &Path, config: &Value, concurrency: u32) -> Result<Envoy, String> {
        Envoy::start_file(
            envoy,
            "envoy.json",
            config.to_string().as_bytes(),
            concurrency,
        )
    }

    /// Like [`Envoy::start`] with the bootstrap as file contents (`name` ends in `.json` or
    /// `.yaml`). Envoy runs in the workspace root, so relative paths (the wasm) resolve as in
    /// the documented configs.
    pub fn start_file(
        envoy: &Path,
        name: &str,
        contents: &[u8],
        concurrency: u32,
    ) -> Result<Envoy, String> {
        let dir = TempDir::new("envoy").map_err(|e| format!("temp dir: {e}"))?;
        let cfg_path = dir
            .write(name, contents)
            .map_err(|e| format!("write config: {e}"))?;
        let admin_file = dir.path().join("admin-address");
        let log = dir.path().join("envoy.log");
        let mut cmd = Command::new(envoy);
        cmd.current_dir(crate::paths::workspace_root())
            .arg("-c")
            .arg(&cfg_path)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--log-path")
            .arg(&log)
            .arg("--file-flush-interval-msec")
            .arg("100")
            .arg("-l")
            .arg(std::env::var("MESHGUARD_E2E_LOG_LEVEL").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Backstop for a test process killed before its guards run: the kernel kills Envoy when
        // the thread that spawned it ends (each test spawns and drops its Envoy on one thread).
        // SAFETY: prctl is async-signal-safe and only affects the child being exec'ed.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", envoy.display()))?;
        let mut me = Envoy {
            child,
            admin_port: 0,
            listeners: BTreeMap::new(),
            dir,
        };
        me.admin_port = poll(START_TIMEOUT, Duration::from_millis(50), || {
            me.check_alive()?;
            Ok(std::fs::read_to_string(&admin_file).ok().and_then(|s| {
                s.trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
            }))
        })
        .map_err(|e| me.fail(&format!("admin address: {e}")))?;
        poll(START_TIMEOUT, Duration::from_millis(50), || {
            me.check_alive()?;
            Ok(me
                .admin("/ready")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ()))
        })
        .map_err(|e| me.fail(&format!("/ready: {e}")))?;
        let listeners = me
            .admin("/listeners?format=json")
            .map_err(|e| me.fail(&format!("/listeners: {e}")))?;
        for l in listeners
            .json()
            .get("listener_statuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = l
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let port = l
                .pointer("/local_address/socket_address/port_value")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            me.listeners.insert(name, port);
        }
        Ok(me)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("envoy exited: {status}")),
            Ok(None) => Ok(()),
            Err(e) => Err(format!("envoy wait: {e}")),
        }
    }

    fn fail(&self, what: &str) -> String {
        format!(
            "envoy did not start ({what}); log tail:\n{}",
            self.log_tail(60)
        )
    }

    /// The port of listener `name`.
    pub fn port(&self, name: &str) -> u16 {
        self.listeners.get(name).copied().unwrap_or(0)
    }

    /// GET on the admin API.
    pub fn admin(&self, path: &str) -> io::Result<crate::client::Resp> {
        send(self.admin_port, &Req::get(path).host("127.0.0.1"))
    }

    /// Every stat as name → value (counters and gauges; histograms skipped).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let text = self.admin("/stats").map(|r| r.text()).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(k, v)| v.trim().parse::<u64>().ok().map(|v| (k.to_string(), v)))
            .collect()
    }

    /// One stat's value (0 when absent).
    pub fn stat(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all.iter()
            .skip(all.len().saturating_sub(lines))
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::env::var_os("MESHGUARD_E2E_KEEP").is_some() {
            eprintln!(
                "envoy log kept at {}",
                self.dir.path().join("envoy.log").display()
            );
        }
        // SIGTERM first (Envoy flushes its log), SIGKILL if still there after 3 s.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: plain kill(2) on our own child's pid, which is not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = crate::wait::poll(Duration::from_secs(3), Duration::from_millis(20), || {
            Ok(self.child.try_wait().ok().flatten().map(|_| ()))
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why Envoy did not start, in two parts: the first line of the kit's error, then only Envoy's
/// `[error]`/`[critical]` log lines (a refused meshguard configuration names the field there).
pub fn start_failure(error: &str) -> String {
    let lines: Vec<&str> = error
        .lines()
        .filter(|l| l.contains("][error]") || l.contains("][critical]"))
        .collect();
    format!(
        "{}\n{}",
        error.lines().next().unwrap_or_default(),
        lines.join("\n")
    )
}
