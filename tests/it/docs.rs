//! Docs rendered from the manifests: page resolution, search, the committed reference (drift
//! check), snapshots, LuaCATS, and every Lua example in the docs compiled and run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kosmo::docs::Docs;
use kosmo::manifest::Manifest;
use kosmo::registry::{Integration, Registry, Source};

use crate::support::kosmo;

mod commands;
mod examples;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn builtin() -> Arc<Registry> {
    Arc::new(Registry::builtin().unwrap())
}

fn docs() -> Docs {
    Docs::new(builtin(), BTreeMap::new())
}

fn docs_with_work() -> Docs {
    let mut accounts = BTreeMap::new();
    accounts.insert(
        "anthropic".to_string(),
        vec!["default".to_string(), "work".to_string()],
    );
    Docs::new(builtin(), accounts)
}

fn fixture_registry(path: &Path) -> Arc<Registry> {
    let text = std::fs::read_to_string(path).unwrap();
    let m = Manifest::from_yaml(&path.display().to_string(), &text).unwrap();
    let mut reg = Registry::default();
    reg.insert(Integration::new(m, Source::File(path.to_path_buf())));
    Arc::new(reg)
}

/// Every ```lua block of a markdown text, with whether it is marked `<!-- kosmo:no-run -->`.
pub fn lua_blocks(md: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut lines = md.lines().peekable();
    let mut prev = "";
    while let Some(line) = lines.next() {
        if line.trim() == "```lua" {
            let runnable = prev.trim() != "<!-- kosmo:no-run -->";
            let mut code = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                code.push_str(l);
                code.push('\n');
            }
            out.push((code, runnable));
        }
        if !line.trim().is_empty() {
            prev = line;
        }
    }
    out
}

#[test]
fn committed_reference_matches_the_manifests() {
    let files = docs().generate().unwrap();
    let dir = root().join("docs/reference");
    let problems = kosmo::docs::tree::check_dir(&dir, &files);
    assert!(
        problems.is_empty(),
        "docs/reference is stale; run `cargo run -- docs:generate`:\n{}",
        problems.join("\n")
    );
}

#[test]
fn generate_check_cli_agrees() {
    let cfg = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let outdir = out.path().join("ref");
    kosmo(cfg.path())
        .args(["docs:generate", "--out"])
        .arg(&outdir)
        .assert()
        .success();
    assert!(outdir.join("README.md").is_file());
    assert!(outdir.join("kosmo.lua").is_file());
    assert!(outdir.join("anthropic/create_message.md").is_file());
    kosmo(cfg.path())
        .args(["docs:generate", "--check", "--out"])
        .arg(&outdir)
        .assert()
        .success();
    std::fs::write(outdir.join("anthropic.md"), "edited by hand\n").unwrap();
    std::fs::write(outdir.join("anthropic/gone.md"), "old\n").unwrap();
    let assert = kosmo(cfg.path())
        .args(["docs:generate", "--check", "--out"])
        .arg(&outdir)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        err.contains("changed:") && err.contains("anthropic.md"),
        "{err}"
    );
    assert!(err.contains("stale") && err.contains("gone.md"), "{err}");
}

#[test]
fn pages_resolve_by_every_documented_name() {
    let d = docs();
    let page = d.read("anthropic").unwrap();
    assert!(
        page.starts_with("# Anthropic (Claude) - Lua API Reference\n"),
        "{page}"
    );
    for name in [
        "integrations.anthropic",
        "app.integrations.anthropic",
        " anthropic ",
    ] {
        assert_eq!(d.read(name).unwrap(), page, "{name}");
    }
    let f = d.read("anthropic.create_message").unwrap();
    assert!(f.starts_with("# anthropic.create_message\n"), "{f}");
    for name in [
        "integrations.anthropic.create_message",
        "app.integrations.anthropic.create_message",
        "anthropic.anthropic_create_message",
    ] {
        assert_eq!(d.read(name).unwrap(), f, "{name}");
    }
    for g in ["overview", "errors", "examples", "app.overview"] {
        assert!(d.read(g).unwrap().starts_with("# "), "{g}");
    }
}

#[test]
fn every_alias_resolves_to_its_function_page() {
    let d = docs();
    let reg = builtin();
    let a = reg.get("anthropic").unwrap();
    let mut seen = 0;
    for (name, f) in &a.manifest.functions {
        let page = d.read(&format!("anthropic.{name}")).unwrap();
        for alias in &f.aliases {
            seen += 1;
            assert_eq!(
                d.read(&format!("anthropic.{alias}")).unwrap(),
                page,
                "{alias}"
            );
            assert_eq!(
                d.read(&format!("integrations.anthropic.anthropic_{alias}"))
                    .unwrap(),
                page,
                "anthropic_{alias}"
            );
            assert!(
                page.contains(&format!("`{alias}`")),
                "{name}'s page documents alias {alias}"
            );
        }
    }
    let stub = a.manifest.functions.len() < 5;
    assert!(
        stub || seen >= 3,
        "the Anthropic manifest documents its aliases ({seen})"
    );
}

#[test]
fn every_function_page_lists_its_real_parameters() {
    for path in fixtures()
        .into_iter()
        .map(|p| fixture_registry(&p))
        .chain([builtin()])
    {
        let d = Docs::new(path.clone(), BTreeMap::new());
        for integ in path.iter() {
            for (name, f) in &integ.manifest.functions {
                let page = d.read(&format!("{}.{name}", integ.name())).unwrap();
                assert!(!page.contains("No parameters."), "{name}");
                for p in &f.params {
                    assert!(
                        page.contains(&format!("`{}`", p.name))
                            || page.contains(&format!(".{}`", p.name)),
                        "{}.{name} documents parameter {}:\n{page}",
                        integ.name(),
                        p.name
                    );
                }
                if f.params.is_empty() {
                    assert!(page.contains("takes no parameters"), "{name}:\n{page}");
                } else {
                    assert!(!page.contains("takes no parameters"), "{name}:\n{page}");
                }
                if let Some(msg) = &f.unsupported {
                    assert!(
                        page.contains("(unsupported)") && page.contains(msg.trim()),
                        "{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn wrapper_fields_and_kosmo_options_are_spelled_out() {
    let d = Docs::new(
        fixture_registry(&root().join("tests/it/docs/fixtures/echo.yaml")),
        BTreeMap::new(),
    );
    let page = d.read("echo.create_note").unwrap();
    assert!(page.contains("| `payload` | object | yes |"), "{page}");
    assert!(page.contains("| `payload.text` | string | yes |"), "{page}");
    assert!(
        page.contains("| `payload.tags[].name` | string | yes |"),
        "{page}"
    );
    assert!(
        page.contains("| `payload.tags[].weight` | number | no |"),
        "{page}"
    );
    assert!(page.contains("One of: `red`, `green`, `blue`."), "{page}");
    assert!(
        page.contains("The note \\| text."),
        "pipes are escaped in cells:\n{page}"
    );
    let list = d.read("echo.list_notes").unwrap();
    assert!(
        list.contains("| `query.limit` | integer | no | `20` |"),
        "{list}"
    );
    assert!(
        list.contains("| `fetch_all` | boolean | no |  | **kosmo option.**"),
        "{list}"
    );
    let dl = d.read("echo.download_note").unwrap();
    assert!(
        dl.contains("| `save_to` | string | no |  | **kosmo option.**"),
        "{dl}"
    );
    let who = d.read("echo.whoami").unwrap();
    assert!(who.contains("takes no parameters"), "{who}");
    assert!(who.contains("`get_current_org`"), "{who}");
}

#[test]
fn named_accounts_have_pages() {
    let d = docs_with_work();
    let page = d.read("integrations.anthropic.work").unwrap();
    assert!(page.contains("`work` credential account"), "{page}");
    assert!(
        page.contains("app.integrations[\"anthropic\"].work"),
        "{page}"
    );
    assert!(d.read("integrations.anthropic.default").is_ok());
    assert!(
        d.read("integrations.anthropic.work.create_message")
            .unwrap()
            .contains("account `work`")
    );
    let pages = d.list(None).unwrap();
    assert!(pages.contains(&"integrations.anthropic.work".to_string()));
    assert!(
        !pages.iter().any(|p| p.ends_with(".default")),
        "default is implied"
    );
    assert!(
        docs().read("integrations.anthropic.work").is_err(),
        "no such account"
    );
}

#[test]
fn unknown_pages_list_what_exists() {
    let d = docs();
    let err = d.read("anthropic.create_mesage").unwrap_err().to_string();
    assert!(
        err.starts_with("Page 'anthropic.create_mesage' not found."),
        "{err}"
    );
    assert!(
        err.contains("Did you mean: anthropic.create_message"),
        "{err}"
    );
    assert!(
        err.contains("Available pages: overview, errors, examples, integrations.anthropic"),
        "{err}"
    );
    assert!(d.read("nope").is_err());
    assert!(d.read("").is_err());
    assert!(d.read("anthropic.create_message.extra").is_err());
}

#[test]
fn list_filters_by_namespace() {
    let d = docs();
    let all = d.list(None).unwrap();
    assert_eq!(
        &all[..4],
        ["overview", "errors", "examples", "integrations.anthropic"]
    );
    let ns = d.list(Some("integrations.anthropic")).unwrap();
    assert!(ns.contains(&"integrations.anthropic.create_message".to_string()));
    assert!(!ns.contains(&"overview".to_string()));
    assert_eq!(d.list(Some("anthropic")).unwrap(), ns);
    assert_eq!(d.list(Some("app.integrations.anthropic")).unwrap(), ns);
    assert_eq!(d.list(Some("integrations")).unwrap().len(), all.len() - 3);
    let err = d.list(Some("nothing")).unwrap_err().to_string();
    assert!(
        err.contains("Available namespaces: integrations, integrations.anthropic"),
        "{err}"
    );
}

#[test]
fn search_ranks_names_then_summaries_then_bodies() {
    let d = docs();
    let hits = d.search("create_message", 5);
    assert_eq!(
        hits[0].page, "integrations.anthropic.create_message",
        "{hits:?}"
    );
    let hits = d.search("anthropic_create_message", 3);
    assert_eq!(
        hits[0].page, "integrations.anthropic.create_message",
        "{hits:?}"
    );
    assert_eq!(d.search("error codes", 3)[0].page, "errors");
    assert_eq!(d.search("x", 0).len(), 0);
    assert!(d.search("zzzzqqqq", 10).is_empty());
    let fixture = Docs::new(
        fixture_registry(&root().join("tests/it/docs/fixtures/echo.yaml")),
        BTreeMap::new(),
    );
    let hits = fixture.search("notes", 10);
    // The alias `notes` is a name: list_notes first; then names containing it; bodies last.
    assert_eq!(hits[0].page, "integrations.echo.list_notes", "{hits:?}");
    let hits = fixture.search("newest first", 10);
    assert_eq!(
        hits[0].page, "integrations.echo.list_notes",
        "summary match: {hits:?}"
    );
    let hits = fixture.search("100 notes per minute", 10);
    assert_eq!(hits[0].page, "integrations.echo", "body match: {hits:?}");
}

#[test]
fn errors_page_documents_every_error_code() {
    use kosmo::Error;
    use kosmo::error::TransportKind;
    let page = docs().read("errors").unwrap();
    let io = std::io::Error::other("x");
    let errors = vec![
        Error::Manifest {
            file: "f".into(),
            location: "l".into(),
            message: "m".into(),
        },
        Error::Validation {
            function: "f".into(),
            errors: vec![],
        },
        Error::UnknownIntegration {
            name: "n".into(),
            suggestions: vec![],
        },
        Error::UnknownFunction {
            integration: "i".into(),
            name: "n".into(),
            suggestions: vec![],
        },
        Error::MissingCredential {
            integration: "i".into(),
            account: "a".into(),
            credential: "c".into(),
            hint: "h".into(),
        },
        Error::PermissionDenied {
            message: "m".into(),
        },
        Error::Unsupported {
            function: "f".into(),
            message: "m".into(),
        },
        Error::Transport {
            kind: TransportKind::Connect,
            message: "m".into(),
        },
        Error::BadResponse {
            status: 502,
            message: "m".into(),
            request_id: None,
        },
        Error::Config {
            message: "m".into(),
        },
        Error::PaginationLimit {
            function: "f".into(),
            message: "m".into(),
        },
        Error::Limit {
            limit: "memory".into(),
            message: "m".into(),
        },
        Error::UnknownPage {
            message: "x".into(),
        },
        Error::Docs {
            message: "x".into(),
        },
        Error::Lua {
            message: "m".into(),
        },
        Error::Io {
            path: "p".into(),
            source: io.into(),
        },
    ];
    for e in &errors {
        assert!(
            page.contains(&format!("| `{}` |", e.code())),
            "errors page lacks {}",
            e.code()
        );
    }
    for t in [
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    ] {
        assert!(
            page.contains(&format!("| `{t}` |")),
            "errors page lacks API type {t}"
        );
    }
}

#[test]
fn luacats_covers_every_function_and_alias() {
    let lua = docs().luacats().unwrap();
    assert!(lua.starts_with("---@meta"), "{lua}");
    let reg = builtin();
    for integ in reg.iter() {
        for (name, f) in &integ.manifest.functions {
            let root = format!("function app.integrations.{}.", integ.name());
            assert!(lua.contains(&format!("{root}{name}(args) end")), "{name}");
            assert!(
                lua.contains(&format!("---@class {}.{name}.args", integ.name())),
                "{name}"
            );
            for a in &f.aliases {
                assert!(lua.contains(&format!("{root}{a}(args) end")), "{a}");
            }
        }
    }
    for helper in [
        "function docs.read(page) end",
        "function docs.list(namespace) end",
        "function docs.search(query, limit) end",
        "function json.encode(value, options) end",
        "function json.decode(text) end",
        "function regex.match(subject, pattern, flags) end",
        "function regex.gsub(subject, pattern, replacement, limit) end",
        "function lua_read_doc(page) end",
    ] {
        assert!(lua.contains(helper), "{helper}");
    }
    mlua::Lua::new()
        .load(&lua)
        .set_name("kosmo.lua")
        .into_function()
        .unwrap();
}

#[test]
fn every_lua_block_in_the_docs_compiles() {
    let mut count = 0;
    let mut all = docs().generate().unwrap();
    for p in fixtures() {
        all.extend(
            Docs::new(fixture_registry(&p), BTreeMap::new())
                .generate()
                .unwrap(),
        );
    }
    for (file, text) in &all {
        if file.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        for (i, (code, _)) in lua_blocks(text).into_iter().enumerate() {
            count += 1;
            if let Err(e) = mlua::Lua::new()
                .load(&code)
                .set_name(format!("{}#{i}", file.display()))
                .into_function()
            {
                panic!(
                    "{}: block {i} does not compile: {e}\n{code}",
                    file.display()
                );
            }
        }
    }
    assert!(count > 10, "found {count} Lua blocks");
}

#[test]
fn a_warm_function_page_renders_far_faster_than_a_cold_one() {
    let d = docs();
    let pages = [
        "anthropic.create_message",
        "integrations.anthropic",
        "errors",
    ];
    for p in pages {
        d.read(p).unwrap(); // warm: views are built once per Docs
    }
    // The best of several batches: the machine is shared, a mean would measure the neighbours.
    let mut report = Vec::new();
    for p in pages {
        let per = (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..40 {
                    std::hint::black_box(d.read(p).unwrap());
                }
                start.elapsed() / 40
            })
            .min()
            .unwrap();
        report.push(format!("{p}: {per:?}"));
    }
    let warm = {
        let start = Instant::now();
        for _ in 0..40 {
            std::hint::black_box(d.read("anthropic.create_message").unwrap());
        }
        start.elapsed() / 40
    };
    let fresh = docs();
    let start = Instant::now();
    fresh.read("anthropic.create_message").unwrap();
    let cold = start.elapsed();
    report.push(format!(
        "first function page of a new Docs (its view built): {cold:?}"
    ));
    // A ratio measured in one run, not a time: views are built once per Docs, so a warm page
    // is a lookup and a render, not a rebuild.
    assert!(
        warm * 3 < cold,
        "a warm page ({warm:?}) should be far cheaper than a cold one ({cold:?})"
    );
    let start = Instant::now();
    fresh.read("anthropic").unwrap();
    report.push(format!(
        "first integration page (all views built): {:?}",
        start.elapsed()
    ));
    let start = Instant::now();
    std::hint::black_box(fresh.search("batch results", 10));
    report.push(format!("first search (index built): {:?}", start.elapsed()));
    let start = Instant::now();
    std::hint::black_box(fresh.search("batch results", 10));
    report.push(format!("next search: {:?}", start.elapsed()));
    eprintln!(
        "docs render timing (debug build):\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn cli_prints_pages_in_every_format() {
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "anthropic.create_message", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["page"], "integrations.anthropic.create_message");
    assert_eq!(v["title"], "anthropic.create_message");
    assert!(
        v["markdown"]
            .as_str()
            .unwrap()
            .contains("| `payload.model` |")
    );
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "--format", "json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["pages"][0]["page"], "overview");
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "anthropic", "--format", "text"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.starts_with("ANTHROPIC (CLAUDE) - LUA API REFERENCE\n"),
        "{text}"
    );
    assert!(!text.contains("```"), "{text}");
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "anthropic"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        docs().read("anthropic").unwrap()
    );
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "nope", "--json"])
        .assert()
        .failure();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["success"], false);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Available pages:")
    );
}

#[test]
fn cli_shows_configured_accounts() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("credentials.yaml"),
        "anthropic:\n  work:\n    api_key_env: WORK_KEY\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            cfg.path().join("credentials.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let out = kosmo(cfg.path())
        .args(["integrations:docs", "integrations.anthropic.work"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("`work` credential account"), "{text}");
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/it/docs/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn anthropic_reference_snapshots() {
    let d = docs();
    insta::assert_snapshot!("anthropic_lua_reference", d.read("anthropic").unwrap());
    insta::assert_snapshot!(
        "anthropic_create_message",
        d.read("anthropic.create_message").unwrap()
    );
    insta::assert_snapshot!("luacats", d.luacats().unwrap());
}

#[test]
fn fixture_manifest_docs_snapshots() {
    insta::glob!("docs/fixtures/*.yaml", |path| {
        let d = Docs::new(fixture_registry(path), BTreeMap::new());
        let mut out = String::new();
        for (file, text) in d.generate().unwrap() {
            if matches!(
                file.to_str(),
                Some("README.md" | "overview.md" | "errors.md" | "examples.md")
            ) {
                continue;
            }
            out.push_str(&format!("===== {} =====\n{text}\n", file.display()));
        }
        insta::assert_snapshot!(out);
    });
}
