//! The offset / header-cursor manifest (`offsets.yaml`): offset + limit with a body `total`,
//! a cursor in `X-Next-Cursor`, the API key as a query parameter, and optional auth.

use serde_json::{Value, json};

use super::{Env, Req, Resp, Srv, env, serve};

const KEY: &str = "qk_live_0123456789";

fn q(req: &Req, k: &str) -> Option<String> {
    req.query_pairs()
        .into_iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v)
}

fn configured(url: &str, with_key: bool) -> Env {
    let e = env();
    let url = format!("url={url}");
    let key = format!("key={KEY}");
    if with_key {
        e.configure("offsets", &[&key, &url]);
    } else {
        e.configure("offsets", &[&url]);
    }
    e
}

fn server() -> Srv {
    serve(|req, _| {
        if req.path == "/v2/records" {
            let offset: usize = q(req, "offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = q(req, "limit").and_then(|v| v.parse().ok()).unwrap_or(10);
            let results: Vec<Value> = (offset..25)
                .take(limit)
                .map(|i| json!({"id": format!("r{i}")}))
                .collect();
            return Resp::json(200, json!({"total": 25, "results": results}));
        }
        if req.path == "/v2/events" {
            let (events, next) = match q(req, "cursor").as_deref() {
                None => (vec!["e1", "e2"], Some("c2")),
                Some("c2") => (vec!["e3", "e4"], Some("c3")),
                Some("c3") => (vec!["e5"], None),
                Some(other) => panic!("unexpected cursor {other}"),
            };
            let mut r = Resp::json(200, json!({"events": events}));
            if let Some(n) = next {
                r = r.header("x-next-cursor", n);
            }
            return r;
        }
        Resp::json(
            404,
            json!({"error": "not_found", "detail": "no such route"}),
        )
    })
}

#[test]
fn offset_pagination_stops_at_the_body_total_and_sends_the_key_in_the_query() {
    let srv = server();
    let e = configured(&srv.url, true);
    let r = e.ok("return app.integrations.offsets.list_records{limit = 10, fetch_all = true}");
    let ids: Vec<String> = r["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:#}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, (0..25).map(|i| format!("r{i}")).collect::<Vec<_>>());
    assert_eq!(r["total"], 25);
    let reqs = srv.requests();
    assert_eq!(
        reqs.len(),
        3,
        "the total ends the walk: no empty fourth page"
    );
    let offsets: Vec<Option<String>> = reqs.iter().map(|r| q(r, "offset")).collect();
    assert_eq!(offsets, [None, Some("10".into()), Some("20".into())]);
    for r in &reqs {
        assert_eq!(q(r, "api_key").as_deref(), Some(KEY));
        assert_eq!(q(r, "limit").as_deref(), Some("10"));
        assert_eq!(r.header("authorization"), None);
    }
}

#[test]
fn a_walk_from_the_callers_offset_stops_at_the_total_too() {
    let srv = server();
    let e = configured(&srv.url, true);
    let r = e.ok(
        "return app.integrations.offsets.list_records{offset = 10, limit = 10, fetch_all = true}",
    );
    assert_eq!(r["results"].as_array().unwrap().len(), 15, "{r:#}");
    let offsets: Vec<Option<String>> = srv.requests().iter().map(|r| q(r, "offset")).collect();
    assert_eq!(
        offsets,
        [Some("10".into()), Some("20".into())],
        "no empty page after the total"
    );
}

#[test]
fn a_header_cursor_is_followed_into_the_cursor_parameter() {
    let srv = server();
    let e = configured(&srv.url, true);
    let r = e.ok("return app.integrations.offsets.list_events{fetch_all = true}");
    assert_eq!(r["events"], json!(["e1", "e2", "e3", "e4", "e5"]), "{r:#}");
    let cursors: Vec<Option<String>> = srv.requests().iter().map(|r| q(r, "cursor")).collect();
    assert_eq!(cursors, [None, Some("c2".into()), Some("c3".into())]);
    assert!(
        srv.requests()
            .iter()
            .all(|r| q(r, "api_key").as_deref() == Some(KEY))
    );

    // The lazy iterator makes the same walk.
    let n = e.ok(r#"local n = 0
           for ev in items(app.integrations.offsets.list_events, {}) do n = n + 1 end
           return n"#);
    assert_eq!(n, 5);
}

#[test]
fn optional_auth_goes_without_a_key_and_required_auth_fails_before_any_request() {
    let srv = server();
    let e = configured(&srv.url, false);
    let r = e.ok("return app.integrations.offsets.list_events{fetch_all = true}");
    assert_eq!(r["events"].as_array().unwrap().len(), 5, "{r:#}");
    assert!(srv.requests().iter().all(|r| q(r, "api_key").is_none()));
    let before = srv.requests().len();

    let err = e.ok(
        r#"local ok, err = pcall(app.integrations.offsets.delete_record, {id = "r1"})
           assert(not ok)
           return err"#,
    );
    assert_eq!(err["code"], "missing_credential", "{err:#}");
    assert!(
        err["message"].as_str().unwrap().contains("OFFSETS_KEY"),
        "{err:#}"
    );
    assert_eq!(srv.requests().len(), before);
}

#[test]
fn a_query_key_never_shows_in_errors_or_dry_runs() {
    // An API error, a transport error (nothing listens) and a dry run: the key is in the URL of
    // each request, and in none of the outputs.
    let srv = serve(|_, _| {
        Resp::json(
            401,
            json!({"error": "unauthorized", "detail": "invalid api key"}),
        )
    });
    let e = configured(&srv.url, true);
    let env = e.lua("return app.integrations.offsets.list_records{}");
    assert_eq!(env["error"]["code"], "unauthorized", "{env:#}");
    assert_eq!(env["error"]["status"], 401);
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid api key")
    );
    assert!(!env.to_string().contains(KEY), "the key leaked: {env}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = configured(&url, true);
    let env = e.lua("return app.integrations.offsets.list_records{}");
    assert_eq!(env["success"], json!(false));
    assert!(!env.to_string().contains(KEY), "the key leaked: {env}");

    let out = super::super::support::kosmo(e.config.path())
        .arg("--manifests")
        .arg(&e.manifests)
        .args([
            "integrations:lua",
            "--json",
            "--dry-run",
            "--eval",
            "return app.integrations.offsets.list_records{limit = 2}",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.contains(KEY), "the key leaked: {text}");
}
