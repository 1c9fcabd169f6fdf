//! Shared test helpers: an isolated `kosmo` command and the Python SDK oracle.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The real binary with a private, empty config dir and no Anthropic variables from the host.
pub fn kosmo(config_dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("kosmo").expect("the kosmo binary is built");
    cmd.env("KOSMO_CONFIG_DIR", config_dir)
        .env("HOME", config_dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("KOSMO_MANIFEST_PATH")
        .env_remove("KOSMO_LOG");
    cmd
}

/// A python with the official `anthropic` SDK, for oracle and fidelity tests.
///
/// Order: `KOSMO_SDK_PYTHON`; else `target/sdk-venv` (created on first use with the pinned SDK, so
/// `cargo test` alone is the whole set-up). `None` means the SDK cannot be had here: the caller
/// skips loudly, except under CI (`CI` set), where that is a failure.
pub fn sdk_python() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = PY
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("KOSMO_SDK_PYTHON") {
                return Some(PathBuf::from(p));
            }
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv");
            let py = venv.join("bin/python");
            let has_sdk = |py: &Path| {
                Command::new(py)
                    .args(["-c", "import anthropic"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            };
            if py.exists() && has_sdk(&py) {
                return Some(py);
            }
            eprintln!("setting up the Python SDK oracle in {} ...", venv.display());
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
                && Command::new(&py)
                    .args(["-m", "pip", "install", "-q", "anthropic==2.14.0"])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
            (ok && has_sdk(&py)).then_some(py)
        })
        .clone();
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("the Python SDK oracle is required under CI but could not be set up");
        }
        eprintln!("SKIP: the official Python SDK is not available (set KOSMO_SDK_PYTHON)");
    }
    found
}

/// Wait until process `pid` has installed a handler for signal number `signo` (Linux:
/// `SigCgt` in /proc/PID/status), so a test's signal cannot beat the handler on a loaded
/// machine and kill the process by the default action instead. Gives up after 20 s.
pub fn wait_for_signal_handler(pid: u32, signo: u32) {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        let caught = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            })
            .is_some_and(|mask| mask & (1 << (signo - 1)) != 0);
        if caught {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A `kosmo simulator:serve` child process; killed when dropped.
pub struct Sim {
    child: std::process::Child,
    pub url: String,
}

impl Sim {
    /// Started with `--batch-delay 300` and `extra` flags; waits for the base URL line.
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::TempDir::new().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
            .args(["simulator:serve", "--port", "0", "--batch-delay", "300"])
            .args(extra)
            .env("KOSMO_CONFIG_DIR", dir.path())
            .env_remove("KOSMO_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("simulator:serve starts");
        use std::io::BufRead as _;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "first line: {line:?}");
        Sim { child, url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Check a `--json` envelope of the Lua commands against `docs/json-envelope.schema.json`.
pub fn check_envelope(env: &serde_json::Value) -> Result<(), String> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = VALIDATOR.get_or_init(|| {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json-envelope.schema.json"),
        )
        .expect("the envelope schema is readable");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the envelope schema compiles")
    });
    let problems: Vec<String> = v
        .iter_errors(env)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
