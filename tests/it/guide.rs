//! docs/adding-an-integration.md, run: every command of the newcomer's guide goes through the real
//! binary, and every output the guide shows (`<!-- guide:NAME -->` blocks) is compared with what
//! the binary prints. The worked example is docs/examples/todoist.yaml (+ todoist.lua).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{Sim, kosmo};

const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn guide() -> String {
    read("docs/adding-an-integration.md")
}

/// The contents of every fenced block that follows a `<!-- guide:NAME -->` marker.
fn blocks(name: &str) -> Vec<String> {
    let g = guide();
    let marker = format!("<!-- guide:{name} -->\n");
    let mut out = Vec::new();
    let mut rest = g.as_str();
    while let Some(at) = rest.find(&marker) {
        let after = &rest[at + marker.len()..];
        assert!(
            after.starts_with("```"),
            "{marker} is not followed by a fence"
        );
        let body = &after[after.find('\n').unwrap() + 1..];
        let end = body.find("\n```\n").expect("the fence is closed");
        out.push(body[..end + 1].to_string());
        rest = &body[end..];
    }
    assert!(!out.is_empty(), "the guide has no {marker}");
    out
}

fn block(name: &str) -> String {
    let mut b = blocks(name);
    assert_eq!(b.len(), 1, "one {name} block");
    b.remove(0)
}

/// `kosmo` with a private config dir, run from `dir`, without the host's Todoist variables.
fn cmd(cfg: &Path, dir: &Path) -> assert_cmd::Command {
    let mut c = kosmo(cfg);
    c.current_dir(dir)
        .env_remove("TODOIST_API_TOKEN")
        .env_remove("TODOIST_BASE_URL");
    c
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn show(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(mut c: assert_cmd::Command, args: &[&str]) -> Out {
    let o = c.args(args).output().expect("kosmo runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `kosmo simulator:serve todoist --manifests docs/examples ...` as a child; killed when dropped.
fn start_sim(extra: &[&str]) -> Sim {
    let examples = root().join("docs/examples");
    let mut args = vec![
        "todoist",
        "--manifests",
        examples.to_str().expect("a UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    Sim::start_bare(&args)
}

#[test]
fn guide_excerpts_are_the_example_manifest_and_the_guide_is_linked() {
    let manifest = read("docs/examples/todoist.yaml");
    let excerpts = blocks("excerpt");
    assert!(excerpts.len() >= 10, "{} excerpts", excerpts.len());
    for e in &excerpts {
        assert!(
            manifest.contains(e.as_str()),
            "this excerpt of the guide is not in docs/examples/todoist.yaml:\n{e}"
        );
    }
    assert_eq!(block("tour.lua"), read("docs/examples/todoist.lua"));
    assert!(read("README.md").contains("(docs/adding-an-integration.md)"));
    assert!(read("docs/manifest-format.md").contains("(adding-an-integration.md)"));
}

#[test]
fn guide_first_draft_shows_located_problems_pass_by_pass_until_ok() {
    let cfg = TempDir::new().unwrap();
    let work = TempDir::new().unwrap();
    fs::create_dir(work.path().join("my-manifests")).unwrap();
    let file = work.path().join("my-manifests/todoist.yaml");
    let check = |file_text: &str| {
        fs::write(&file, file_text).unwrap();
        run(
            cmd(cfg.path(), work.path()),
            &["manifests:check", "my-manifests/todoist.yaml"],
        )
    };

    // The draft: schema problems (a missing group, a misspelt key and value).
    let draft = block("broken.yaml");
    let o = check(&draft);
    assert_eq!(o.code, 1, "{}", o.show());
    assert_eq!(o.stdout, "", "{}", o.show());
    assert_eq!(o.stderr, block("broken-check"), "{}", o.show());

    // The fixes the guide names, then the lint's problems.
    let fixed = draft
        .replace("pagnation", "pagination")
        .replace("in: qurey", "in: query")
        .replace("    class: read\n", "    group: tasks\n    class: read\n");
    let o = check(&fixed);
    assert_eq!(o.code, 1, "{}", o.show());
    assert_eq!(o.stderr, block("broken-lint"), "{}", o.show());

    // --json: the same problems as data, each located.
    let o = run(
        cmd(cfg.path(), work.path()),
        &["manifests:check", "--json", "my-manifests/todoist.yaml"],
    );
    assert_eq!(o.code, 1, "{}", o.show());
    let v: Value = serde_json::from_str(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["success"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4, "{v}");
    assert_eq!(problems[1]["pointer"], "/functions/get_task/credential");
    assert_eq!(problems[1]["line"], 15);
    assert_eq!(problems[1]["column"], 17);
    assert!(problems.iter().all(|p| p["rule"] == "lint"), "{v}");

    // The last fixes the guide describes: the draft checks clean.
    let done = fixed
        .replace("/tasks/{id}", "/tasks/{task_id}")
        .replace("credential: tokn", "credential: token")
        .replace(
            "{style: cursor, items: /results}",
            "{style: cursor, items: /results, cursor: {from: /next_cursor, param: cursor}}",
        );
    let o = check(&done);
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(
        o.stdout.contains("ok: 1 manifest(s) checked"),
        "{}",
        o.show()
    );
}

#[test]
fn guide_example_manifest_checks_and_every_example_passes_on_the_simulator() {
    let cfg = TempDir::new().unwrap();
    let o = run(
        cmd(cfg.path(), &root()),
        &["manifests:check", "docs/examples/todoist.yaml"],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(
        o.stdout.contains("ok: 1 manifest(s) checked"),
        "{}",
        o.show()
    );

    let o = run(
        cmd(cfg.path(), &root()),
        &["manifests:test", "docs/examples/todoist.yaml"],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.stdout, block("manifests-test"), "{}", o.show());

    let o = run(
        cmd(cfg.path(), &root()),
        &["manifests:test", "--json", "docs/examples/todoist.yaml"],
    );
    let v: Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["passed"], 5, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
}

#[test]
fn guide_offline_tour_prints_what_the_guide_shows() {
    let cfg = TempDir::new().unwrap();
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--offline",
            "--force",
            "docs/examples/todoist.lua",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.stdout, block("tour-output"), "{}", o.show());

    // Without --force the first write is refused: no terminal to ask on.
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--offline",
            "docs/examples/todoist.lua",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.show());
    assert!(o.stderr.contains("[permission_denied]"), "{}", o.show());

    // The guide's one-liner reads the seeded task.
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--offline",
            "--eval",
            r#"dump(app.integrations.todoist.get_task({task_id = "6X7rM8997g3RQmvh"}))"#,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    let v: Value = serde_json::from_str(&o.stdout).expect("dump prints JSON");
    assert_eq!(v["id"], "6X7rM8997g3RQmvh");
    assert_eq!(v["content"], "Water the plants");
}

#[test]
fn guide_dry_run_shows_the_request_with_the_token_redacted() {
    let cfg = TempDir::new().unwrap();
    let eval = r#"dump(app.integrations.todoist.create_task({content = "Buy milk", priority = 4, labels = {"errands"}}))"#;
    let args = [
        "integrations:lua",
        "--manifests",
        "docs/examples",
        "--dry-run",
        "--eval",
        eval,
    ];
    assert!(guide().contains(&format!("--dry-run --eval '{eval}'")));
    let mut c = cmd(cfg.path(), &root());
    c.env("TODOIST_API_TOKEN", TOKEN);
    let o = run(c, &args);
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(!o.stdout.contains(TOKEN) && !o.stderr.contains(TOKEN));
    let got: Value = serde_json::from_str(&o.stdout).expect("JSON");
    let want: Value = serde_json::from_str(&block("dry-run")).expect("the guide's JSON");
    assert_eq!(got, want);

    // Without a token: the same request, the header not configured.
    let o = run(cmd(cfg.path(), &root()), &args);
    assert_eq!(o.code, 0, "{}", o.show());
    let got: Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(got["headers"]["authorization"], "[not configured]");
}

#[test]
fn guide_simulator_serves_a_configured_account() {
    let sim = start_sim(&[]);
    let cfg = TempDir::new().unwrap();
    let mut c = cmd(cfg.path(), &root());
    c.write_stdin(format!("{TOKEN}\n"));
    let url_arg = format!("url={}", sim.url);
    let o = run(
        c,
        &[
            "integrations:configure",
            "todoist",
            "--manifests",
            "docs/examples",
            "--account",
            "sim",
            "--set-stdin",
            "token",
            "--set",
            &url_arg,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(!o.stdout.contains(TOKEN), "{}", o.show());

    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--account",
            "sim",
            "--force",
            "--eval",
            r#"print(app.integrations.todoist.create_task({content = "Live"}).content)"#,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.stdout, "Live\n");

    // The simulator kept it: the seeded task and the new one, through the account by name.
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--eval",
            "print(#app.integrations.todoist.sim.list_tasks({fetch_all = true}).results)",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.stdout, "2\n");

    // An unknown id is a 404 in Todoist's envelope, with the whole body kept.
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--account",
            "sim",
            "--eval",
            r#"local ok, e = pcall(app.integrations.todoist.get_task, {task_id = "nope"})
               print(e.code, e.status, e.body.error_tag, e.body.error)"#,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.stdout,
        "NOT_FOUND\t404\tNOT_FOUND\tNo tasks with id 'nope'\n"
    );
}

#[test]
fn guide_mock_mode_answers_any_id_and_pins_the_bearer_token() {
    let sim = start_sim(&["--mock", "--key", "token=secret-1"]);
    let cfg = TempDir::new().unwrap();
    for (account, token) in [("mock", "secret-1"), ("wrong", "secret-2")] {
        let mut c = cmd(cfg.path(), &root());
        c.write_stdin(format!("{token}\n"));
        let url_arg = format!("url={}", sim.url);
        let o = run(
            c,
            &[
                "integrations:configure",
                "todoist",
                "--manifests",
                "docs/examples",
                "--account",
                account,
                "--set-stdin",
                "token",
                "--set",
                &url_arg,
            ],
        );
        assert_eq!(o.code, 0, "{}", o.show());
    }
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--eval",
            r#"local t = app.integrations.todoist.mock.get_task({task_id = "anything"})
               local ok, e = pcall(app.integrations.todoist.wrong.get_task, {task_id = "anything"})
               print(t.id, t.content, e.code, e.status)"#,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.stdout,
        "anything\tWater the plants\tAUTH_INVALID_TOKEN\t401\n"
    );
}

#[test]
fn guide_docs_commands_render_the_manifest() {
    let cfg = TempDir::new().unwrap();
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:docs",
            "todoist",
            "--manifests",
            "docs/examples",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    for want in [
        "# Todoist",
        "Every function needs the `token` credential",
        "## Tasks",
        "### list_tasks",
        "### create_task",
        "-- Add an urgent task",
    ] {
        assert!(o.stdout.contains(want), "{want:?} missing:\n{}", o.stdout);
    }

    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:docs",
            "todoist.create_task",
            "--manifests",
            "docs/examples",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(o.stdout.contains("`POST /tasks`"), "{}", o.stdout);
    assert!(o.stdout.contains("Range 1..4"), "{}", o.stdout);

    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "integrations:lua",
            "--manifests",
            "docs/examples",
            "--eval",
            r#"print(docs.read("todoist"))"#,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(o.stdout.starts_with("# Todoist"), "{}", o.show());

    let out = TempDir::new().unwrap();
    let out_dir = out.path().join("kosmo-reference");
    let o = run(
        cmd(cfg.path(), &root()),
        &[
            "docs:generate",
            "--manifests",
            "docs/examples",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    for f in ["todoist.md", "todoist/create_task.md", "kosmo.lua"] {
        assert!(out_dir.join(f).is_file(), "{f} not written: {}", o.show());
    }
    let lua = fs::read_to_string(out_dir.join("kosmo.lua")).unwrap();
    assert!(lua.contains("create_task"), "LuaCATS names the functions");
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_curl_answers_and_a_scripted_fault() {
    let sim = start_sim(&["--faults", "get_task=429,ok"]);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", sim.url))
            .header("authorization", "Bearer any-token")
    };
    let r = get("/tasks").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["id"], "6X7rM8997g3RQmvh");
    assert_eq!(v["results"][0]["content"], "Water the plants");
    assert_eq!(v["next_cursor"], Value::Null);

    let g = guide();
    // --faults 'get_task=429,ok': the next get_task is a 429, the one after it normal.
    let r = get("/tasks/6X7rM8997g3RQmvh").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_tag"], "LIMITS_REACHED", "{v}");
    let r = get("/tasks/6X7rM8997g3RQmvh").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(g.contains("`--faults 'get_task=429,ok'`"));

    let r = get("/tasks/nope").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let text = r.text().await.unwrap();
    assert!(g.contains(&format!("# {text}\n")), "{text}");

    let r = client
        .post(format!("{}/tasks", sim.url))
        .header("authorization", "Bearer any-token")
        .header("content-type", "application/json")
        .body(r#"{"priority": 9}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().await.unwrap();
    assert!(g.contains(&format!("# {text}\n")), "{text}");
}
