//! The page-number manifest (`pager.yaml`): array-root lists, `X-Total-Count`, `Link` headers
//! with relative URLs, and a 403 + reset-header rate limit.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Env, Req, Resp, Srv, env, serve};

fn configured(url: &str) -> Env {
    let e = env();
    e.configure(
        "pager",
        &["token=pg_secret_token", &format!("url={url}/api")],
    );
    e
}

fn q(req: &Req, k: &str) -> Option<usize> {
    req.query_pairs()
        .into_iter()
        .find(|(n, _)| n == k)
        .and_then(|(_, v)| v.parse().ok())
}

/// 23 items; `page` / `per_page`; a Link header whose next URL is relative (path-absolute on
/// page 1, path-relative after that, as servers behind proxies write them).
fn pager_server(link: bool) -> Srv {
    serve(move |req, _| {
        let per = q(req, "per_page").unwrap_or(10);
        let page = q(req, "page").unwrap_or(1);
        let items: Vec<Value> = (1..=23)
            .skip((page - 1) * per)
            .take(per)
            .map(|i| json!({"id": i, "name": format!("w{i}")}))
            .collect();
        let mut r = Resp::json(200, Value::Array(items)).header("x-total-count", "23");
        let last = 23usize.div_ceil(per);
        if link && page < last {
            let next = if page == 1 {
                format!("</api/widgets?page=2&per_page={per}>; rel=\"next\"")
            } else {
                format!("<widgets?page={}&per_page={per}>; rel=\"next\"", page + 1)
            };
            r = r.header(
                "link",
                &format!("{next}, </api/widgets?page={last}&per_page={per}>; rel=\"last\""),
            );
        }
        r
    })
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn link_pagination_with_relative_urls_collects_every_item() {
    let srv = pager_server(true);
    let e = configured(&srv.url);
    let r = e.ok("return app.integrations.pager.list_widgets{per_page = 5, fetch_all = true}");
    assert_eq!(ids(&r["data"]), (1..=23).collect::<Vec<_>>(), "{r:#}");
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 5);
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(req.path, "/api/widgets");
        assert_eq!(req.header("authorization"), Some("Bearer pg_secret_token"));
        if i > 0 {
            assert_eq!(q(req, "page"), Some(i + 1));
            assert_eq!(q(req, "per_page"), Some(5));
        }
    }
}

#[test]
fn the_total_count_header_is_reachable_from_lua_while_paging_lazily() {
    let srv = pager_server(true);
    let e = configured(&srv.url);
    let r = e.ok(r#"local n, npages, total = 0, 0, nil
           for page in pages(app.integrations.pager.list_widgets, {per_page = 10}) do
             npages = npages + 1
             n = n + #page
             total = tonumber(last_response().headers["x-total-count"])
           end
           return {n = n, pages = npages, total = total}"#);
    assert_eq!(r, json!({"n": 23, "pages": 3, "total": 23}));
}

#[test]
fn page_numbers_of_the_link_api_stop_on_a_short_page() {
    let srv = pager_server(false);
    let e = configured(&srv.url);
    let r = e.ok("return app.integrations.pager.list_gadgets{per_page = 10, fetch_all = true}");
    assert_eq!(ids(&r["data"]), (1..=23).collect::<Vec<_>>(), "{r:#}");
    let pages: Vec<Option<usize>> = srv.requests().iter().map(|r| q(r, "page")).collect();
    assert_eq!(pages, [None, Some(2), Some(3)]);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_403_with_remaining_zero_waits_for_the_reset_and_retries() {
    let srv = serve(|_, n| {
        if n == 0 {
            Resp::json(403, json!({"message": "API rate limit exceeded"}))
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &(now() + 1).to_string())
        } else {
            Resp::json(200, json!([{"id": 1}]))
        }
    });
    let e = configured(&srv.url);
    let r = e.ok("return app.integrations.pager.list_widgets{}");
    assert_eq!(ids(&r), [1]);
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn a_far_reset_is_a_rate_limit_error_with_retry_after_and_a_plain_403_is_not_retried() {
    let srv = serve(|req, _| {
        if q(req, "page") == Some(1) {
            Resp::json(403, json!({"message": "API rate limit exceeded"}))
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &(now() + 3600).to_string())
        } else {
            Resp::json(403, json!({"message": "Resource not accessible by token"}))
                .header("x-ratelimit-remaining", "4999")
                .header("x-request-id", "rq-9")
        }
    });
    let e = configured(&srv.url);
    let err = e.ok(
        r#"local ok, err = pcall(app.integrations.pager.list_widgets, {page = 1})
           assert(not ok)
           return err"#,
    );
    assert_eq!(err["code"], "rate_limit_error", "{err:#}");
    assert_eq!(err["status"], 403);
    let wait = err["retry_after"]
        .as_f64()
        .unwrap_or_else(|| panic!("no retry_after: {err:#}"));
    assert!(wait > 60.0, "{err:#}");
    assert_eq!(srv.requests().len(), 1);

    let err = e.ok(
        r#"local ok, err = pcall(app.integrations.pager.list_widgets, {page = 2})
           assert(not ok)
           return err"#,
    );
    assert_eq!(err["code"], "forbidden", "{err:#}");
    assert_eq!(err["status"], 403);
    assert_eq!(err["request_id"], "rq-9");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Resource not accessible by token")
    );
    assert_eq!(srv.requests().len(), 2);
}
