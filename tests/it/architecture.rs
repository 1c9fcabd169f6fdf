//! House rule: no integration's name in generic code. Integration specifics live in
//! `manifests/<name>.yaml`, or, where code is truly needed, in `src/simulator/<name>/` behind the
//! behaviour-family trait. This test fails when the name of any manifest under `manifests/`
//! (anthropic, openai, github, ...) appears, in any letter case and also inside identifiers, in
//! the code of a generic module: comments and `#[cfg(test)]` modules are not code and are
//! skipped (tests and docs may use real integrations as examples).

use std::path::{Path, PathBuf};

/// Generic code: every file under these directories (recursively) ...
const GENERIC_DIRS: &[&str] = &["src/exec", "src/lua", "src/cli", "src/docs", "templates"];
/// ... the simulator engine (its top-level files, not the families' own directories) ...
const GENERIC_FLAT_DIRS: &[&str] = &["src/simulator"];
/// ... and these files.
const GENERIC_FILES: &[&str] = &[
    "src/manifest.rs",
    "src/registry.rs",
    "src/validate.rs",
    "src/credentials.rs",
];

/// Where a name may appear anyway: (file or `dir/*`, name, a fragment the line must contain or
/// "" for any line, why). Keep each entry as narrow as possible.
const ALLOWED: &[(&str, &str, &str, &str)] = &[
    // Permanent: the list of manifests built into the binary names their files ...
    (
        "src/registry.rs",
        "anthropic",
        "anthropic.yaml\"",
        "BUILTIN",
    ),
    ("src/registry.rs", "openai", "openai.yaml\"", "BUILTIN"),
    ("src/registry.rs", "github", "github.yaml\"", "BUILTIN"),
    // ... and the simulator registers each behaviour family's directory, once.
    (
        "src/simulator/mod.rs",
        "anthropic",
        "pub(crate) mod anthropic;",
        "family module",
    ),
    (
        "src/simulator/behaviours.rs",
        "anthropic",
        "super::anthropic::Anthropic",
        "FAMILIES",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every integration name: the file stems of `manifests/*.yaml`.
fn integration_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("manifests"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "yaml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    // The names the issue names, whether or not their manifests are merged yet.
    for n in ["anthropic", "openai", "github"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    names.sort();
    names
}

fn files_under(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if recursive {
                files_under(&p, true, out);
            }
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("rs") | Some("j2")
        ) {
            out.push(p);
        }
    }
}

/// Rust source without comments and without its `#[cfg(test)]` module; string literals stay
/// (a name in a message or a default is code).
fn rust_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            // A line comment (doc comments included).
            let end = rest.find('\n').map_or(b.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let mut depth = 0usize;
            while i < b.len() {
                if text[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if text[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if rest.starts_with("'\"'") || rest.starts_with("'\\\"'") {
            // A char literal holding a quote is not the start of a string.
            let n = if rest.starts_with("'\"'") { 3 } else { 4 };
            out.push_str(&rest[..n]);
            i += n;
        } else if rest.starts_with("r#") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            if rest[1 + hashes..].starts_with('"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let body_start = 2 + hashes;
                let end = rest[body_start..]
                    .find(&close)
                    .map_or(rest.len(), |n| body_start + n + close.len());
                out.push_str(&rest[..end]);
                i += end;
            } else {
                out.push('r');
                i += 1;
            }
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
            let j = j.min(rest.len());
            out.push_str(&rest[..j]);
            i += j;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A template without `{# ... #}` comments.
fn template_code(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{#") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find("#}") {
            Some(j) => &rest[i + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn allowed(rel: &str, name: &str, line: &str) -> bool {
    ALLOWED.iter().any(|(pattern, n, fragment, _)| {
        *n == name
            && line.contains(fragment)
            && match pattern.strip_suffix("/*") {
                Some(dir) => rel.starts_with(&format!("{dir}/")),
                None => rel == *pattern,
            }
    })
}

/// `(file, line number, name, line)` of every name in generic code.
fn offences() -> Vec<(String, usize, String, String)> {
    let root = root();
    let mut files = Vec::new();
    for d in GENERIC_DIRS {
        files_under(&root.join(d), true, &mut files);
    }
    for d in GENERIC_FLAT_DIRS {
        files_under(&root.join(d), false, &mut files);
    }
    for f in GENERIC_FILES {
        files.push(root.join(f));
    }
    let names = integration_names();
    let mut found = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let code = if rel.ends_with(".j2") {
            template_code(&text)
        } else {
            rust_code(&text)
        };
        for (n, line) in code.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            for name in &names {
                if lower.contains(name.as_str()) && !allowed(&rel, name, line) {
                    found.push((rel.clone(), n + 1, name.clone(), line.trim().to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn no_integration_name_in_generic_code() {
    let found = offences();
    assert!(
        found.is_empty(),
        "integration names in generic code (move them to the manifest or the integration's own \
         simulator directory; line numbers count code lines without comments):\n{}",
        found
            .iter()
            .map(|(f, n, name, line)| format!("  {f}:{n}: '{name}' in `{line}`"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_names_in_code_but_not_in_comments_or_tests() {
    let src = "//! about anthropic\nfn a() { let x = \"https://api.openai.com\"; } // github\n/* anthropic */\nconst R: &str = r#\"github\"#;\nlet q = '\"'; let s = \"anthropic\";\n#[cfg(test)]\nmod tests { fn t() { \"openai\"; } }\n";
    let code = rust_code(src);
    assert!(!code.contains("about anthropic") && !code.contains("/* anthropic"));
    assert!(code.contains("api.openai.com"), "{code}");
    assert!(code.contains("r#\"github\"#"), "{code}");
    assert!(code.contains("\"anthropic\""), "{code}");
    assert!(!code.contains("// github"));
    assert!(!code.contains("mod tests"));
    assert_eq!(template_code("a{# anthropic #}b{{ x }}"), "ab{{ x }}");
    assert!(!allowed("src/exec/sse.rs", "anthropic", "x"));
    assert!(allowed(
        "src/registry.rs",
        "anthropic",
        "\"anthropic.yaml\","
    ));
    assert!(!allowed("src/simulator/server.rs", "anthropic", "x"));
    assert!(allowed(
        "src/simulator/mod.rs",
        "anthropic",
        "pub(crate) mod anthropic;"
    ));
    assert!(!allowed(
        "src/simulator/mod.rs",
        "anthropic",
        "let x = \"anthropic\";"
    ));
    assert!(integration_names().contains(&"anthropic".to_string()));
}
