//! API shapes beyond the built-in manifests: manifests for four unseen API shapes, written from
//! docs/manifest-format.md alone (tests/it/api_shapes/*.yaml), driven through the real binary
//! against small servers that imitate each API's wire format on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::support::{Kosmo, kosmo};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Query pairs, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        decode_pairs(&self.query)
    }
}

fn decode_pairs(s: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(s).unwrap_or_else(|e| panic!("not urlencoded ({e}): {s}"))
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(status: u16, v: Value) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

pub struct Srv {
    pub url: String,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Srv {
    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0: every request is recorded and answered by `handler`
/// (given the request and how many requests came before it), then the connection is closed.
pub fn serve(handler: impl Fn(&Req, usize) -> Resp + Send + Sync + 'static) -> Srv {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
    let handler = Arc::new(handler);
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handler = handler.clone();
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), q.to_string()),
                    None => (target.clone(), String::new()),
                };
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() {
                        return;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let req = Req {
                    method,
                    path,
                    query,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let n = {
                    let mut s = seen.lock().unwrap();
                    s.push(req.clone());
                    s.len() - 1
                };
                let resp = handler(&req, n);
                let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
                for (k, v) in &resp.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    resp.body.len()
                ));
                out.push_str(&resp.body);
                let _ = stream.write_all(out.as_bytes());
                let _ = stream.flush();
            });
        }
    });
    Srv { url, seen }
}

/// A private config dir and a manifest dir holding the QA manifests.
pub struct Env {
    pub config: tempfile::TempDir,
    pub manifests: std::path::PathBuf,
}

pub fn env() -> Env {
    let config = tempfile::tempdir().unwrap();
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/api_shapes");
    Env { config, manifests }
}

impl Env {
    pub fn configure(&self, integration: &str, sets: &[&str]) {
        let mut cmd = kosmo(self.config.path());
        cmd.arg("--manifests")
            .arg(&self.manifests)
            .args(["integrations:configure", integration]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.assert().success();
    }

    /// Run Lua; returns the JSON envelope.
    pub fn lua(&self, code: &str) -> Value {
        let manifests = self.manifests.to_str().expect("a UTF-8 path");
        Kosmo::lua(code)
            .flags(&["--force", "--timeout", "60", "--manifests", manifests])
            .dir(self.config.path())
            .run()
            .env
    }

    /// Run Lua that must succeed; returns its first result.
    pub fn ok(&self, code: &str) -> Value {
        let env = self.lua(code);
        assert_eq!(env["success"], json!(true), "the script failed: {env:#}");
        env["result"][0].clone()
    }
}

mod form_bodies;
mod offset_pagination;
mod page_pagination;
mod simulator;
mod sse_dialect;

/// The QA manifests pass `manifests:check`, and every example passes `manifests:test` against
/// the simulator (Basic and query credentials, form bodies, empty pages, a data-typed stream).
#[test]
fn the_qa_manifests_check_and_their_examples_pass_in_the_simulator() {
    let e = env();
    kosmo(e.config.path())
        .args(["manifests:check"])
        .arg(&e.manifests)
        .assert()
        .success();
    let out = kosmo(e.config.path())
        .args(["manifests:test", "--json"])
        .arg(&e.manifests)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 0, "{v:#}");
    assert_eq!(v["skipped"], 0, "{v:#}");
    assert_eq!(v["passed"], 11, "{v:#}");
    assert!(out.status.success());
}
