//! The built-in openai and github manifests, end to end: the real binary runs Lua against a
//! wiremock server on 127.0.0.1 standing in for the API. Each test copies the manifest into a
//! `--manifests` directory, so it exercises the YAML file itself whether or not it is also
//! compiled in. The wire format itself is checked against the official SDKs in
//! tests/it/exec/oracle_openai.rs and oracle_github.rs; these tests check what the manifests
//! declare: optional auth, Link / cursor pagination, `{+path}`, error envelopes and rate limits.

mod github;
mod openai;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

/// Environment variables of the real services that must not leak into a test run.
const SERVICE_ENV: &[&str] = &[
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
];

/// A config dir with `manifests/<name>.yaml` copied from the repository.
pub struct Setup {
    pub dir: TempDir,
}

impl Setup {
    pub fn new(name: &str) -> Setup {
        let dir = TempDir::new().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(format!("{name}.yaml"));
        std::fs::copy(&src, manifests.join(format!("{name}.yaml"))).unwrap();
        Setup { dir }
    }

    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    /// Run `integrations:lua --force --eval CODE` with `envs`; (stdout, stderr, success).
    pub async fn lua(&self, envs: &[(&str, &str)], code: &str) -> (String, String, bool) {
        let config: PathBuf = self.dir.path().to_path_buf();
        let manifests = self.manifests();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let code = code.to_string();
        tokio::task::spawn_blocking(move || run(&config, &manifests, &envs, &code))
            .await
            .unwrap()
    }
}

fn run(
    config: &Path,
    manifests: &Path,
    envs: &[(String, String)],
    code: &str,
) -> (String, String, bool) {
    let mut cmd = crate::support::kosmo(config);
    for k in SERVICE_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .arg("--manifests")
        .arg(manifests)
        .args(["integrations:lua", "--force", "--eval", code])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// The last stdout line, parsed as JSON (scripts end with `print(json.encode(...))`).
pub fn last_json(stdout: &str, stderr: &str) -> Value {
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nstdout: {stdout}\nstderr: {stderr}"))
}
