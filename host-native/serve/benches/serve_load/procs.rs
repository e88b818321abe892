//! Child processes this bench starts: the service, the provider, the floor; their CPU and memory.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{BEARER, SEALING_KEY};

/// A process this bench started: killed (by its own id) when dropped.
pub(crate) struct Proc {
    child: Child,
    /// Kept open: the provider and the floor exit when their stdin closes.
    stdin: Option<ChildStdin>,
    /// The `READY` line's JSON.
    pub(crate) ready: Value,
}

impl Proc {
    /// Starts `command` with piped stdin/stdout and waits for its `READY {json}` line.
    pub(crate) fn start(name: &'static str, mut command: Command) -> Proc {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // Owned by `Proc` at once, so that a failure below still kills and reaps it.
        let mut process = Proc {
            child,
            stdin: None,
            ready: Value::Null,
        };
        process.stdin = process.child.stdin.take();
        let mut stdout = BufReader::new(process.child.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read stdout");
            assert!(n > 0, "{name} exited before printing READY");
            if let Some(json) = line.trim().strip_prefix("READY ") {
                process.ready = serde_json::from_str(json).expect("READY json");
                // Drain the rest of stdout so the child never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = stdout.read_to_end(&mut sink);
                });
                return process;
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn addr(&self, key: &str) -> SocketAddr {
        let url = self.ready[key].as_str().expect("url in READY");
        let hostport = url.trim_start_matches("http://").trim_end_matches('/');
        hostport.parse().expect("127.0.0.1:port")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tessera-serve` on a fresh config directory holding `config_toml` (SQLite).
pub(crate) fn start_service(dir: &Path, config_toml: &str) -> Proc {
    start_service_on(dir, config_toml, None)
}

/// Starts `tessera-serve` on a fresh config directory holding `config_toml`, on
/// PostgreSQL when `database_url` is given (else SQLite in the directory).
pub(crate) fn start_service_on(dir: &Path, config_toml: &str, database_url: Option<&str>) -> Proc {
    std::fs::create_dir_all(dir).expect("config dir");
    std::fs::write(dir.join("config.toml"), config_toml).expect("config.toml");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log file");
    let binary = std::env::var_os("SERVE_BENCH_SERVE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_tessera-serve")),
        PathBuf::from,
    );
    let mut command = Command::new(binary);
    command
        .args(["--port", "0", "--config-dir"])
        .arg(dir)
        .env("TESSERA_SERVE_TOKEN", BEARER)
        .env_remove("TESSERA_SERVE_KEY")
        .env_remove("TESSERA_CONFIG_DIR")
        .env_remove("RUST_LOG")
        .stderr(Stdio::from(log));
    if let Some(url) = database_url {
        command
            .args(["--database-url", url])
            .env("TESSERA_SERVE_KEY", SEALING_KEY);
    }
    Proc::start("tessera-serve", command)
}

/// `/proc/PID/status` fields in kB: VmRSS, VmHWM, Threads.
pub(crate) fn proc_status(pid: u32) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

/// CPU time of a process so far: (user, system).
pub(crate) fn cpu_time(pid: u32) -> (Duration, Duration) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field
    // of the line, stime the 15th, in clock ticks (USER_HZ, 100 on Linux).
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        let n = fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        Duration::from_millis(n * 10)
    };
    (ticks(11), ticks(12))
}
