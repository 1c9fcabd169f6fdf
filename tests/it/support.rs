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

/// A `kosmo simulator:serve` child process, the one simulator-process helper; killed when dropped.
pub struct Sim {
    pub child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Started with `--batch-delay 300` and `extra` flags; waits for the base URL line.
    pub fn start(extra: &[&str]) -> Sim {
        let mut args = vec!["--batch-delay", "300"];
        args.extend_from_slice(extra);
        Sim::spawn(&args, std::process::Stdio::null())
    }

    /// Started with only `extra` flags (the simulator's own defaults otherwise).
    pub fn start_bare(extra: &[&str]) -> Sim {
        Sim::spawn(extra, std::process::Stdio::null())
    }

    /// Like [`Sim::start_bare`], with its stderr kept in `child.stderr` for warning checks.
    pub fn start_capturing_stderr(extra: &[&str]) -> Sim {
        Sim::spawn(extra, std::process::Stdio::piped())
    }

    fn spawn(extra: &[&str], stderr: std::process::Stdio) -> Sim {
        let dir = tempfile::TempDir::new().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
            .args(["simulator:serve", "--port", "0"])
            .args(extra)
            .env("KOSMO_CONFIG_DIR", dir.path())
            .env_remove("KOSMO_LOG")
            .env_remove("KOSMO_MANIFEST_PATH")
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("simulator:serve starts");
        use std::io::BufRead as _;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://"), "first line: {line:?}");
        Sim {
            child,
            url,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT` of the simulator, for raw connections.
    pub fn addr(&self) -> String {
        let port = self.url.rsplit(':').next().unwrap();
        format!("127.0.0.1:{port}")
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

/// One run of the binary: exit code, the `--json` envelope (`Null` when stdout is not JSON),
/// and both streams.
pub struct Run {
    pub code: i32,
    pub env: serde_json::Value,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// `error.code` of the envelope, or "".
    pub fn err_code(&self) -> &str {
        self.env["error"]["code"].as_str().unwrap_or("")
    }
    /// `error.message` of the envelope, or "".
    pub fn err_message(&self) -> &str {
        self.env["error"]["message"].as_str().unwrap_or("")
    }
    /// Everything about the run, for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// How long [`Kosmo::run`] lets a run take before killing it: a hang guard, not a speed
/// check. Keep it far above every `--timeout` / `--cpu-limit` a test passes (at most 900 s, in
/// the sandbox batteries).
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(1200);

/// The one way the tests run the binary:
/// `Kosmo::lua(code).offline().flag("--force").run()` or `Kosmo::cmd(&[..]).dir(d).run()`.
///
/// Every run gets a private config dir (a fresh temporary one unless [`Kosmo::dir`] names
/// one, which is also the working directory), empty stdin unless [`Kosmo::stdin`], and a
/// 90 s timeout. `run` asserts the host did not crash (exit 0..=2, no panic) and checks a
/// JSON envelope of a `*:lua` command, when stdout is one, against `docs/json-envelope.schema.json`.
pub struct Kosmo {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: Option<PathBuf>,
    stdin: Vec<u8>,
    check_crash: bool,
    want_envelope: bool,
}

impl Kosmo {
    /// `kosmo ARGS`.
    pub fn cmd(args: &[&str]) -> Kosmo {
        Kosmo {
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: Vec::new(),
            dir: None,
            stdin: Vec::new(),
            check_crash: true,
            want_envelope: false,
        }
    }
    /// `kosmo integrations:lua --json --eval CODE`; the run must print an envelope.
    pub fn lua(code: &str) -> Kosmo {
        Kosmo::lua_args(&["--eval", code])
    }
    /// `kosmo integrations:lua ARGS --json` (`--json` added unless in ARGS); the run must
    /// print an envelope.
    pub fn lua_args(args: &[&str]) -> Kosmo {
        let mut k = Kosmo::cmd(&["integrations:lua"]).flags(args);
        if !args.contains(&"--json") {
            k = k.flag("--json");
        }
        k.want_envelope = true;
        k
    }
    /// Adds `--offline` (right after the command, before any script arguments).
    pub fn offline(mut self) -> Kosmo {
        let at = self.args.len().min(1);
        self.args.insert(at, "--offline".to_string());
        self
    }
    /// Adds one argument.
    pub fn flag(mut self, arg: &str) -> Kosmo {
        self.args.push(arg.to_string());
        self
    }
    /// Adds arguments.
    pub fn flags(mut self, args: &[&str]) -> Kosmo {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    /// Runs in `dir`, which is also the config dir.
    pub fn dir(mut self, dir: &Path) -> Kosmo {
        self.dir = Some(dir.to_path_buf());
        self
    }
    /// Sets one environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Kosmo {
        self.envs.push((k.to_string(), v.to_string()));
        self
    }
    /// Sets environment variables.
    pub fn envs(mut self, envs: &[(&str, &str)]) -> Kosmo {
        self.envs
            .extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }
    /// Feeds `input` on stdin.
    pub fn stdin(mut self, input: &str) -> Kosmo {
        self.stdin = input.as_bytes().to_vec();
        self
    }
    /// Skips the crash check (for runs expected to die by a signal).
    pub fn may_crash(mut self) -> Kosmo {
        self.check_crash = false;
        self
    }
    /// Runs the binary and checks what every run must satisfy.
    pub fn run(self) -> Run {
        let tmp;
        let dir = match &self.dir {
            Some(d) => d.as_path(),
            None => {
                tmp = tempfile::TempDir::new().expect("a temporary dir");
                tmp.path()
            }
        };
        let mut cmd = kosmo(dir);
        cmd.current_dir(dir)
            .args(&self.args)
            .timeout(HANG_GUARD)
            .write_stdin(self.stdin.clone());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("kosmo runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let r = Run {
            env: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if self.check_crash {
            assert!(
                (0..=2).contains(&r.code) && !r.stderr.contains("panicked"),
                "the host crashed: {}",
                r.show()
            );
        }
        if self.want_envelope {
            assert!(r.env.is_object(), "no envelope: {}", r.show());
        }
        let lua = self.args.first().is_some_and(|a| a.ends_with(":lua"));
        if lua && r.env.get("success").is_some() {
            if let Err(problems) = check_envelope(&r.env) {
                panic!(
                    "envelope breaks docs/json-envelope.schema.json: {problems}\n{}",
                    r.show()
                );
            }
            let ok = r.env["success"] == true;
            if self.check_crash {
                assert_eq!(ok, r.code == 0, "success vs exit code: {}", r.show());
            }
            assert_eq!(
                ok,
                r.env["error"].is_null(),
                "success vs error: {}",
                r.show()
            );
        }
        r
    }
}

/// `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL` for a run against `sim`.
pub fn sim_env(sim: &Sim, key: &str) -> [(&'static str, String); 2] {
    [
        ("ANTHROPIC_API_KEY", key.to_string()),
        ("ANTHROPIC_BASE_URL", sim.url.clone()),
    ]
}

/// Borrowed pairs of [`sim_env`]'s, for [`Kosmo::envs`].
pub fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

/// A server that accepts connections and never answers.
pub fn silent_server() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// (exit code, stdout, stderr) of a finished process.
pub fn out(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}
