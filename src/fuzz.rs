//! Entry points for fuzzing every parser that reads outside input: the fuzz targets in `fuzz/`
//! (cargo-fuzz, `fuzz/run.sh`) call these, and `cargo test` replays them over the seed corpus in
//! `fuzz/corpus/` plus deterministic mutations of it, so CI exercises them without nightly.
//!
//! Each entry point takes arbitrary bytes and must return without panicking (errors are fine).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::credentials::Credentials;
use crate::exec::{Call, ExecConfig, Executor, response, retry};
use crate::manifest::{Manifest, RetrySpec};
use crate::registry::Registry;

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target: its name (the `fuzz/fuzz_targets/<name>.rs` file and `fuzz/corpus/<name>/`)
/// and its entry point.
pub const TARGETS: &[Target] = &[
    ("retry_headers", retry_headers),
    ("sse", sse),
    ("jsonl", jsonl),
    ("error_envelope", error_envelope),
    ("manifest", manifest),
    ("call_args", call_args),
];

fn registry() -> &'static Arc<Registry> {
    static REG: OnceLock<Arc<Registry>> = OnceLock::new();
    REG.get_or_init(|| Arc::new(Registry::builtin().unwrap_or_default()))
}

fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()
    })
    .as_ref()
}

/// The first manifest of the built-in registry (its error pointers, retry headers, streams).
fn builtin_manifest() -> Option<&'static Manifest> {
    registry().iter().next().map(|i| &i.manifest)
}

/// `name: value` lines as response headers (invalid names or values are skipped).
fn headers_of(text: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.trim().as_bytes()),
            HeaderValue::from_str(v.trim()),
        ) {
            h.append(k, v);
        }
    }
    h
}

/// Retry and rate-limit headers: `retry-after` (seconds, milliseconds, HTTP dates), reset
/// headers, `x-should-retry`, and the delay computed from them.
pub fn retry_headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let h = headers_of(&text);
    let mut specs = vec![RetrySpec::default()];
    if let Some(m) = builtin_manifest() {
        specs.push(m.retry.clone());
    }
    for spec in &specs {
        for status in [200, 403, 429, 500, 529] {
            let limited = retry::is_rate_limited(spec, status, &h);
            let wait = retry::server_wait(spec, &h, limited);
            let _ = retry::retry_response(spec, status, &h, Some("x-should-retry"), true);
            for n in [0, 1, 5, 30] {
                let _ = retry::delay(n, wait, crate::exec::MAX_SERVER_RETRY_WAIT);
            }
        }
    }
    let _ = retry::retry_after(&h);
    let _ = retry::should_retry_header(&h, Some("x-should-retry"));
}

/// Split `data` into chunks at the positions its first bytes name (so every chunking of a
/// stream is reachable).
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let (sizes, body) = data.split_at(data.len().min(4));
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7) as usize % 97) + 1;
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

/// The SSE parser, the dialect and the assembler of every streaming function of the built-in
/// manifests (and the default `events` assembly), fed in arbitrary chunks, with a small line cap.
pub fn sse(data: &[u8]) {
    let mut specs = vec![None];
    for integ in registry().iter() {
        for f in integ.manifest.functions.values() {
            if let Some(s) = &f.stream {
                specs.push(Some(s));
            }
        }
    }
    for spec in specs {
        let Ok(mut fold) = crate::exec::sse::StreamFold::new(spec) else {
            continue;
        };
        fold.set_max_line(4096);
        let mut ok = true;
        for c in chunks(data) {
            match fold.push(c) {
                Ok(events) => {
                    for ev in events {
                        let _ = fold.is_keepalive(&ev) || fold.is_error(&ev);
                        if fold.fold(&ev).is_err() {
                            ok = false;
                        }
                    }
                }
                Err(_) => ok = false,
            }
            if !ok || fold.is_done() {
                break;
            }
        }
        if ok {
            if let Ok(Some(ev)) = fold.flush() {
                let _ = fold.fold(&ev);
            }
            let _ = fold.finished();
            let _ = fold.expected_end();
            let _ = fold.finish();
        }
    }
}

/// JSONL rows read from arbitrary chunks, with a small line cap; secrets redacted in each row.
pub fn jsonl(data: &[u8]) {
    let Some(rt) = runtime() else { return };
    let items: Vec<reqwest::Result<Bytes>> = chunks(data)
        .into_iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut r = crate::exec::rows::LineReader::new(
        futures::stream::iter(items),
        std::time::Duration::from_secs(5),
        vec!["sk-fuzz-0123456789abcdef".into()],
    )
    .with_max_line(512);
    rt.block_on(async {
        let mut n = 0;
        while let Some(_row) = r.next().await {
            n += 1;
            if n > 100_000 {
                break;
            }
        }
    });
}

/// Error responses: status, headers and body as a server sends them, decoded through the
/// built-in manifests' error pointers, with redaction.
pub fn error_envelope(data: &[u8]) {
    // `status\nheaders...\n\nbody`
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&data[..0], data),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.trim().parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .unwrap_or(500);
    let h = headers_of(&lines.collect::<Vec<_>>().join("\n"));
    let secrets = vec!["sk-fuzz-0123456789abcdef".to_string(), "pw12".to_string()];
    for integ in registry().iter() {
        let m = &integ.manifest;
        let wait = retry::server_wait(&m.retry, &h, false);
        let e = response::api_error(m, status, &h, body, &secrets, wait, status == 429);
        let _ = e.to_json();
        let _ = response::decode_json(status, &h, body, None, &secrets);
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            let _ = response::error_from_value(m, status, &v, None, None);
            let _ = response::redact_value(v, &secrets);
        }
    }
    let text = String::from_utf8_lossy(body);
    let _ = response::redact(&text, &secrets);
    let _ = crate::credentials::redact_url(&text);
    let _ = crate::credentials::url_password(&text);
}

/// Manifest loading: YAML text through parsing, the schema, the lints and the request builder's
/// declarations.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (m, _problems) = Manifest::check("fuzz.yaml", text);
    if let Some(m) = m {
        let _ = m.lint();
        for f in m.functions.values() {
            let _ = crate::validate::input_schema(&m, f);
        }
    }
}

/// Script arguments to requests: a function of the built-in manifests (chosen by the first
/// byte) called with the rest as its arguments, as a dry run (validation, coercion, request
/// building, rendering), never sent.
pub fn call_args(data: &[u8]) {
    static EXEC: OnceLock<Option<Executor>> = OnceLock::new();
    let Some(exec) = EXEC
        .get_or_init(|| {
            Executor::new(
                registry().clone(),
                Arc::new(Credentials::offline("http://127.0.0.1:9")),
                ExecConfig::default(),
            )
            .ok()
        })
        .as_ref()
    else {
        return;
    };
    let Some(rt) = runtime() else { return };
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let functions: Vec<(&str, &str)> = registry()
        .iter()
        .flat_map(|i| {
            i.manifest
                .functions
                .keys()
                .map(move |f| (i.manifest.name.as_str(), f.as_str()))
        })
        .collect();
    if functions.is_empty() {
        return;
    }
    let (integration, function) = functions[pick as usize % functions.len()];
    let args: Value = match serde_json::from_slice(rest) {
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(rest).into_owned()),
    };
    let mut call = Call::new(integration, function, args);
    call.dry_run = true;
    // A call that would read or write a local file is not made: the input could name any path
    // (`/dev/zero`), and the file policy is the session's job, not the parser's.
    match exec.local_files(&call) {
        Ok(files) if files.is_empty() => {}
        _ => return,
    }
    let _ = rt.block_on(exec.call(call));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }

    /// A few deterministic mutations of a seed: bytes flipped, cut, doubled, spliced.
    fn mutations(seed: &[u8], rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..24 {
            let mut v = seed.to_vec();
            match rng.u8(..5) {
                0 if !v.is_empty() => {
                    let i = rng.usize(..v.len());
                    v[i] = rng.u8(..);
                }
                1 => v.truncate(rng.usize(..=v.len())),
                2 => {
                    let tail = v.clone();
                    v.extend_from_slice(&tail);
                }
                3 if !v.is_empty() => {
                    let i = rng.usize(..v.len());
                    let interesting: &[&[u8]] = &[
                        b"\n",
                        b"\r",
                        b"\r\n\r\n",
                        b"data: ",
                        b"1e300",
                        b"-1",
                        b"\xff\xfe",
                        b"{\"",
                        b"[[[[[[[[",
                        b"99999999999999999999",
                        b"NaN",
                        b"/{/index}/",
                    ];
                    v.splice(i..i, rng.choice(interesting).unwrap().iter().copied());
                }
                _ => {
                    let n = rng.usize(..64);
                    v.extend((0..n).map(|_| rng.u8(..)));
                }
            }
            out.push(v);
        }
        out
    }

    /// Every fuzz target over its seed corpus and mutations of it: no panic. (`cargo fuzz` does
    /// the real search; this keeps the entry points and the seeds working in plain CI.)
    #[test]
    fn every_fuzz_target_survives_its_corpus_and_mutations() {
        let mut rng = fastrand::Rng::with_seed(12);
        for (name, target) in TARGETS {
            let seeds = corpus(name);
            assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seeds");
            for seed in &seeds {
                target(seed);
                for m in mutations(seed, &mut rng) {
                    target(&m);
                }
            }
        }
    }

    #[test]
    fn every_target_has_a_fuzz_target_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
        for (name, _) in TARGETS {
            let text = std::fs::read_to_string(dir.join(format!("{name}.rs")))
                .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
            assert!(text.contains(&format!("kosmo::fuzz::{name}")), "{name}");
        }
    }
}
