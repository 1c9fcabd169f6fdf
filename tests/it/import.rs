//! `kosmo manifests:import` (issue 14): golden files for small specs, one per mapping rule; the
//! CLI's outputs and errors; what imported functions send to a server imitating the API; the
//! Anthropic description compared on the wire with the hand-written manifest; and GitHub's
//! whole REST description imported, checked, rendered and called against the simulator.

use std::path::{Path, PathBuf};

use kosmo::import::{Filter, Options, import};
use kosmo::manifest::Manifest;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::kosmo;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi")
}

fn opts(source: &str) -> Options {
    Options {
        name: None,
        filter: Filter::default(),
        source: source.into(),
        date: "2026-01-01".into(),
    }
}

/// Each rule's spec imports into the manifest in its snapshot, with the notes listed after it;
/// every output passes the full manifest check.
#[test]
fn each_mapping_rule_has_a_golden_manifest() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi"),
        "rules/*",
        |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let imported = import(&text, &opts(&name)).unwrap();
            let (m, problems) = Manifest::check(&name, &imported.yaml);
            assert!(
                problems.is_empty(),
                "{name}: {problems:#?}\n{}",
                imported.yaml
            );
            assert!(m.is_some());
            let notes = imported.report.lines().join("\n");
            insta::assert_snapshot!(format!("{}\n# ---- notes ----\n{notes}\n", imported.yaml));
        }
    );
}

/// The rules' specs also answer in the simulator: every generated example passes.
#[test]
fn imported_rule_manifests_pass_their_examples_in_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        kosmo(dir.path())
            .args(["manifests:import"])
            .arg(&path)
            .args(["--out"])
            .arg(dir.path().join(format!("{stem}.yaml")))
            .assert()
            .success();
    }
    let out = kosmo(dir.path())
        .args(["manifests:test", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], json!(true), "{v:#}");
    assert!(v["passed"].as_u64().unwrap() >= 30, "{v:#}");
}

#[test]
fn the_cli_writes_the_manifest_and_reports_every_unmapped_feature() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures().join("rules/params.yaml");
    let out_file = dir.path().join("params.yaml");
    let out = kosmo(dir.path())
        .args(["manifests:import"])
        .arg(&spec)
        .args(["--name", "paramz", "--out"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for code in [
        "cookie_parameter",
        "reserved_header",
        "parameter_content",
        "parameter_serialization",
    ] {
        assert!(
            stderr.contains(&format!("note: {code}: ")),
            "{code} missing from:\n{stderr}"
        );
    }
    let yaml = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        yaml.starts_with("# Imported by `kosmo manifests:import` from params.yaml on "),
        "{yaml}"
    );
    assert!(yaml.contains("\nname: paramz\n"), "{yaml}");
    kosmo(dir.path())
        .args(["manifests:check"])
        .arg(&out_file)
        .assert()
        .success();

    // --json on stdin: the notes as data, and the manifest text without --out.
    let out = kosmo(dir.path())
        .args(["manifests:import", "-", "--json", "--include", "getItem"])
        .write_stdin(std::fs::read(&spec).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], json!(true));
    assert_eq!(v["functions"], json!(["get_item"]));
    assert!(
        v["manifest"]
            .as_str()
            .unwrap()
            .contains("from standard input")
    );
    let codes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"cookie_parameter"), "{codes:?}");
    let cookie = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["code"] == "cookie_parameter")
        .unwrap();
    assert_eq!(cookie["places"], json!(["getItem (session)"]));
}

#[test]
fn include_and_exclude_pick_operations_by_tag_path_and_id() {
    let spec = std::fs::read_to_string(fixtures().join("rules/names_groups.yaml")).unwrap();
    let run = |include: &[&str], exclude: &[&str]| {
        let mut o = opts("names_groups.yaml");
        o.filter.include = include.iter().map(|s| s.to_string()).collect();
        o.filter.exclude = exclude.iter().map(|s| s.to_string()).collect();
        import(&spec, &o).map(|i| i.functions)
    };
    assert_eq!(
        run(&["Pet Store"], &[]).unwrap(),
        ["list_pets", "pets_get_by_id"]
    );
    assert_eq!(run(&["/pets/*"], &[]).unwrap(), ["pets_get_by_id"]);
    assert_eq!(
        run(&["/**"], &["admin", "listPets"]).unwrap(),
        ["pets_get_by_id", "get_untagged_id_things"]
    );
    assert_eq!(run(&["pets_get_by_id"], &[]).unwrap(), ["pets_get_by_id"]);
    let e = run(&["nothing"], &[]).unwrap_err();
    assert_eq!(e.code(), "import_error");
}

#[test]
fn malformed_specs_are_structured_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("{\"swagger\": \"2.0\", \"paths\": {}}", "Swagger 2.0"),
        ("openapi: 3.1.0\ninfo: {title: x}\n", "no `paths`"),
        ("{not json", "not valid JSON"),
        ("\u{1}\u{2}: [", "neither JSON nor valid YAML"),
        (
            "openapi: 3.0.0\npaths: {/b: 7, /c: {head: {}}, /d: {get: 5}}\n",
            "no operation",
        ),
    ] {
        let out = kosmo(dir.path())
            .args(["manifests:import", "-", "--json"])
            .write_stdin(text)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["error"]["code"], json!("import_error"), "{text}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{text}: {v}"
        );
    }
    kosmo(dir.path())
        .args(["manifests:import", "--name", "Bad-Name"])
        .arg(fixtures().join("rules/params.yaml"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not a Lua-safe integration name"));
}

/// A spec the importer has not seen as a test of its own: the imported functions send what the
/// spec describes to a server imitating the API.
#[tokio::test(flavor = "multi_thread")]
async fn imported_functions_send_the_requests_the_spec_describes() {
    let srv = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "has_more": false})),
        )
        .mount(&srv)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    kosmo(dir.path())
        .args(["manifests:import"])
        .arg(fixtures().join("wire.yaml"))
        .args(["--name", "wire", "--out"])
        .arg(manifests.join("wire.yaml"))
        .assert()
        .success()
        .stderr(predicates::str::contains("note: cookie_parameter"));
    let script = r#"
        local w = app.integrations.wire
        w.list_pets({limit = 5, tags = {"a", "b"}})
        w.create_pet({name = "Rex", tag_name = "dog", age = 3})
        w.get_pet({pet_id = "p 1/x", x_trace_id = "t-1"})
        w.delete_pet({pet_id = "p1"})
        w.upload_photo({pet_id = "p1", file = {content = "PNGDATA", filename = "a.png"}, caption = "hi"})
        w.put_notes({pet_id = "p1", text = "good dog", pinned = true, tags = {"a", "b"}})
        w.put_raw({pet_id = "p1", body = "a,b\n1,2\n"})
        w.search_pets({q = "rex"})
        return true
    "#;
    let out = kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .args(["integrations:lua", "--json", "--force", "--eval", script])
        .env("WIRE_BASE_URL", format!("{}/v2", srv.uri()))
        .env("WIRE_BEARER", "tok_secret")
        .env("WIRE_KEY", "qkey_secret")
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(env["success"], json!(true), "{env:#}");
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 8);
    let auth = |i: usize| {
        reqs[i]
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let body = |i: usize| String::from_utf8_lossy(&reqs[i].body).into_owned();

    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].url.path()),
        ("GET", "/v2/pets")
    );
    assert_eq!(
        reqs[0].url.query(),
        Some("limit=5&tags=a&tags=b"),
        "explode: true arrays repeat the key"
    );
    assert_eq!(auth(0).as_deref(), Some("Bearer tok_secret"));

    assert_eq!(
        (reqs[1].method.as_str(), reqs[1].url.path()),
        ("POST", "/v2/pets")
    );
    let sent: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(
        sent,
        json!({"name": "Rex", "Tag-Name": "dog", "age": 3}),
        "wire names restored"
    );

    assert_eq!(reqs[2].url.path(), "/v2/pets/p%201%2Fx");
    assert_eq!(reqs[2].headers.get("x-trace-id").unwrap(), "t-1");
    assert!(reqs[2].headers.get("cookie").is_none());

    assert_eq!(
        (reqs[3].method.as_str(), reqs[3].url.path()),
        ("DELETE", "/v2/pets/p1")
    );

    let ct = reqs[4]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let b = body(4);
    assert!(
        b.contains("name=\"file\"; filename=\"a.png\"") && b.contains("PNGDATA"),
        "{b}"
    );
    assert!(b.contains("name=\"caption\"") && b.contains("hi"), "{b}");

    assert_eq!(
        (reqs[5].method.as_str(), reqs[5].url.path()),
        ("PUT", "/v2/pets/p1/notes")
    );
    assert_eq!(
        reqs[5].headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        body(5),
        "pinned=true&tags=a&tags=b&text=good+dog",
        "form arrays repeat the key (OpenAPI's default)"
    );

    assert_eq!(reqs[6].headers.get("content-type").unwrap(), "text/csv");
    assert_eq!(body(6), "a,b\n1,2\n");

    assert_eq!(reqs[7].url.path(), "/v2/search");
    let mut q: Vec<(String, String)> = reqs[7]
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    q.sort();
    assert_eq!(
        q,
        [
            ("api_key".to_string(), "qkey_secret".to_string()),
            ("mode".into(), "fast".into()),
            ("q".into(), "rex".into())
        ]
    );
    assert!(
        auth(7).is_none(),
        "the query key replaces the bearer token on this operation"
    );
}

/// What the hand-written manifest and the import send for one call.
fn dry_run(dir: &Path, manifests: Option<&Path>, function: &str, args: &Value) -> Value {
    let mut cmd = kosmo(dir);
    if let Some(m) = manifests {
        cmd.arg("--manifests").arg(m);
    }
    let out = cmd
        .args([
            "integrations:call",
            function,
            &args.to_string(),
            "--dry-run",
            "--json",
        ])
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-roundtrip")
        .env("ANTHROPIC_OPENAPI_API_KEY", "sk-ant-api03-roundtrip")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{function}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["success"], json!(true), "{function}: {v:#}");
    v["result"][0].clone()
}

/// The differences between two dry runs: method, URL, query, body, and every header except
/// the credential's (the hand-written manifest sends the key as `authorization: Bearer`, the
/// description declares `x-api-key`; the API takes both).
fn wire_differences(a: &Value, b: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    for key in ["method", "url", "query", "body"] {
        if a[key] != b[key] {
            diffs.push(format!("{key}: {} vs {}", a[key], b[key]));
        }
    }
    let headers = |v: &Value| -> Vec<(String, Value)> {
        let mut h: Vec<(String, Value)> = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "authorization" && *k != "x-api-key")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        h.sort_by(|x, y| x.0.cmp(&y.0));
        h
    };
    if headers(a) != headers(b) {
        diffs.push(format!("headers: {:?} vs {:?}", headers(a), headers(b)));
    }
    diffs
}

/// The Anthropic description, imported, against `manifests/anthropic.yaml` on the wire:
/// the same arguments through both, dry runs compared. docs/adding-an-integration.md lists the
/// result ("Round trip: the Anthropic description").
#[test]
fn anthropic_round_trip_agrees_on_the_wire_where_documented() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    kosmo(dir.path())
        .args(["manifests:import"])
        .arg(fixtures().join("anthropic-openapi-2024.json"))
        .args(["--name", "anthropic_openapi", "--out"])
        .arg(manifests.join("anthropic_openapi.yaml"))
        .assert()
        .success();
    let version = "2026-10-21"; // manifests/anthropic.yaml's `anthropic-version`
    let msg = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    let with_version = |v: &Value| {
        let mut v = v.clone();
        v["anthropic_version"] = json!(version);
        v
    };
    let batch = json!({"requests": [{"custom_id": "a", "params": msg.clone()}]});
    // (imported function, its arguments, hand-written function, its arguments)
    let pairs: Vec<(&str, Value, &str, Value)> = vec![
        (
            "messages_post",
            with_version(&msg),
            "create_message",
            msg.clone(),
        ),
        (
            "beta_messages_count_tokens_post_2",
            with_version(&json!({"model": msg["model"], "messages": msg["messages"]})),
            "count_message_tokens",
            json!({"model": msg["model"], "messages": msg["messages"]}),
        ),
        (
            "beta_message_batches_post_2",
            with_version(&batch),
            "create_message_batch",
            batch.clone(),
        ),
        (
            "beta_message_batches_list_2",
            with_version(&json!({"limit": 20, "after_id": "msgbatch_a"})),
            "list_message_batches",
            json!({"limit": 20, "after_id": "msgbatch_a"}),
        ),
        (
            "beta_message_batches_retrieve_2",
            with_version(&json!({"message_batch_id": "msgbatch_1"})),
            "get_message_batch",
            json!({"id": "msgbatch_1"}),
        ),
        (
            "beta_message_batches_cancel_2",
            with_version(&json!({"message_batch_id": "msgbatch_1"})),
            "cancel_message_batch",
            json!({"id": "msgbatch_1"}),
        ),
        (
            "beta_message_batches_results_2",
            with_version(&json!({"message_batch_id": "msgbatch_1"})),
            "get_message_batch_results",
            json!({"id": "msgbatch_1"}),
        ),
        (
            "beta_messages_post",
            with_version(&msg),
            "create_message",
            msg.clone(),
        ),
        (
            "prompt_caching_beta_messages_post",
            with_version(&msg),
            "create_message",
            msg.clone(),
        ),
        (
            "beta_message_batches_list",
            with_version(&json!({"limit": 20})),
            "list_message_batches",
            json!({"limit": 20}),
        ),
    ];
    let mut agree = Vec::new();
    let mut differ = Vec::new();
    for (imported, iargs, hand, hargs) in &pairs {
        let a = dry_run(
            dir.path(),
            Some(&manifests),
            &format!("anthropic_openapi.{imported}"),
            iargs,
        );
        let b = dry_run(dir.path(), None, &format!("anthropic.{hand}"), hargs);
        let d = wire_differences(&a, &b);
        eprintln!(
            "{imported} vs {hand}: {}",
            if d.is_empty() {
                "same".to_string()
            } else {
                d.join("; ")
            }
        );
        if d.is_empty() {
            agree.push(*imported);
        } else {
            differ.push((*imported, d));
        }
    }
    assert_eq!(
        agree,
        [
            "messages_post",
            "beta_messages_count_tokens_post_2",
            "beta_message_batches_post_2",
            "beta_message_batches_list_2",
            "beta_message_batches_retrieve_2",
            "beta_message_batches_cancel_2",
            "beta_message_batches_results_2",
        ],
        "{differ:#?}"
    );
    // The `?beta=...` variants differ by exactly their fixed query parameter.
    for (f, d) in &differ {
        assert_eq!(d.len(), 1, "{f}: {d:?}");
        assert!(d[0].starts_with("query: {\"beta\":"), "{f}: {d:?}");
    }
}

/// GitHub's whole REST description (from the pinned `@octokit/openapi` package in
/// tests/oracle/github, installed by `npm ci`): imported, checked, rendered, and called against
/// the simulator.
#[test]
fn github_rest_description_imports_checks_renders_and_answers_in_the_simulator() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle/github/node_modules/@octokit/openapi/generated/api.github.com.json");
    if !spec.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing under CI: run `npm ci` in tests/oracle/github",
            spec.display()
        );
        eprintln!(
            "\n\n*** SKIPPED github_rest_description_imports...: {} is missing; run `npm ci` in tests/oracle/github ***\n\n",
            spec.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    let out = kosmo(dir.path())
        .args(["manifests:import"])
        .arg(&spec)
        .args(["--name", "github_rest", "--json", "--out"])
        .arg(manifests.join("github_rest.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions = v["functions"].as_array().unwrap();
    assert!(functions.len() > 1000, "{} functions", functions.len());
    let codes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["code"].as_str().unwrap())
        .collect();
    assert!(
        !codes.contains(&"function_dropped") && !codes.contains(&"check_problem"),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"no_credentials") && codes.contains(&"body_on_get_or_delete"),
        "{codes:?}"
    );

    kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .args(["manifests:check"])
        .assert()
        .success();
    let docs = kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .args(["integrations:docs", "github_rest.repos_get"])
        .output()
        .unwrap();
    let docs = String::from_utf8_lossy(&docs.stdout);
    assert!(
        docs.contains("GET /repos/{owner}/{repo}") && docs.contains("`owner`"),
        "{docs}"
    );

    let yaml = std::fs::read_to_string(manifests.join("github_rest.yaml")).unwrap();
    assert!(
        yaml.contains("  repos_list_for_user:\n"),
        "operation ids in snake_case"
    );
    let script = r#"
        local g = app.integrations.github_rest
        local repo = g.repos_get({owner = "octocat", repo = "Hello-World"})
        local issues = g.issues_list_for_repo({owner = "octocat", repo = "Hello-World", state = "open", per_page = 2})
        local all = g.issues_list_for_repo({owner = "octocat", repo = "Hello-World", fetch_all = true})
        local created = g.issues_create({owner = "octocat", repo = "Hello-World", title = "Found a bug", labels = {"bug"}})
        local found = g.search_repos({q = "tetris language:assembly"})
        local user = g.users_get_authenticated()
        return {repo = repo.full_name, first_issue = issues[1].number, all = #all.data,
                created = created.number, total = found.total_count, login = user.login}
    "#;
    let out = kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .args([
            "integrations:lua",
            "--offline",
            "--force",
            "--json",
            "--eval",
            script,
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(env["success"], json!(true), "{env:#}");
    let r = &env["result"][0];
    // The simulator answers with the spec's own response examples.
    assert_eq!(r["repo"], json!("octocat/Hello-World"), "{r}");
    assert_eq!(r["first_issue"], json!(1347), "{r}");
    assert!(r["all"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["created"], json!(1347), "{r}");
    assert!(r["total"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["login"], json!("octocat"), "{r}");
}

/// The worked example of docs/adding-an-integration.md (section 10) shows what the import
/// writes: every line of its excerpt is a line of the real output, in order.
#[test]
fn the_guide_excerpt_is_what_the_import_writes() {
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/adding-an-integration.md"),
    )
    .unwrap();
    let at = guide
        .find("<!-- import:wire -->\n```yaml\n")
        .expect("the guide marks its excerpt");
    let body = &guide[at..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let excerpt = &body[..body.find("\n```\n").unwrap()];
    let spec = std::fs::read_to_string(fixtures().join("wire.yaml")).unwrap();
    let mut o = opts("wire.yaml");
    o.name = Some("wire".into());
    let yaml = import(&spec, &o).unwrap().yaml;
    let lines: Vec<&str> = yaml.lines().collect();
    let mut from = 0;
    for want in excerpt.lines() {
        if want.trim() == "..." || want.starts_with("# Imported by") {
            continue;
        }
        match lines[from..].iter().position(|l| *l == want) {
            Some(i) => from += i + 1,
            None => panic!(
                "the guide's line {want:?} is not in the import's output (after line {from}):\n{yaml}"
            ),
        }
    }
}
