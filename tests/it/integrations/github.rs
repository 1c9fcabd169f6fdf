//! manifests/github.yaml against a wiremock GitHub.

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Setup, last_json};

const TOKEN: &str = "ghp_testToken0123456789abcdef";

fn issue(n: u64) -> serde_json::Value {
    json!({"id": n, "number": n, "title": format!("issue {n}"), "state": "open"})
}

#[tokio::test(flavor = "multi_thread")]
async fn public_reads_go_without_a_token_and_writes_need_one() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octocat/Hello-World"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 1, "full_name": "octocat/Hello-World"})),
        )
        .mount(&srv)
        .await;
    let s = Setup::new("github");
    let url = srv.uri();

    // No token: the read is sent without authorization; the write fails before any request.
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &url)],
            r#"
            local repo = app.integrations.github.get_repo({owner = "octocat", repo = "Hello-World"})
            local ok, e = pcall(function()
              return app.integrations.github.create_issue({owner = "octocat", repo = "Hello-World", title = "x"})
            end)
            print(json.encode({name = repo.full_name, write_ok = ok, write_code = e.code}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["name"], "octocat/Hello-World");
    assert_eq!(v["write_ok"], false);
    assert_eq!(v["write_code"], "missing_credential", "{v}");
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "only the read reached the server");
    assert!(reqs[0].headers.get("authorization").is_none());
    assert_eq!(
        reqs[0].headers.get("accept").unwrap(),
        "application/vnd.github.v3+json"
    );
    assert!(
        reqs[0].headers.get("user-agent").is_some(),
        "GitHub refuses requests without one"
    );

    // With GITHUB_TOKEN the same read sends it the way @octokit/rest does.
    srv.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&srv)
        .await;
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &url), ("GITHUB_TOKEN", TOKEN)],
            r#"app.integrations.github.get_repo({owner = "octocat", repo = "Hello-World"}) print("{}")"#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].headers.get("authorization").unwrap(),
        &format!("token {TOKEN}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_all_follows_link_headers_across_array_pages() {
    let srv = MockServer::start().await;
    let base = srv.uri();
    let link = |page: u32| {
        format!(
            "<{base}/repositories/1296269/issues?per_page=2&page={page}>; rel=\"next\", <{base}/repositories/1296269/issues?per_page=2&page=3>; rel=\"last\""
        )
    };
    Mock::given(method("GET"))
        .and(path("/repos/octocat/Hello-World/issues"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", link(2).as_str())
                .set_body_json(json!([issue(1), issue(2)])),
        )
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/1296269/issues"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", link(3).as_str())
                .set_body_json(json!([issue(3), issue(4)])),
        )
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/1296269/issues"))
        .and(query_param("page", "3"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!("<{base}/repositories/1296269/issues?per_page=2&page=2>; rel=\"prev\"")
                        .as_str(),
                )
                .set_body_json(json!([issue(5)])),
        )
        .mount(&srv)
        .await;
    let s = Setup::new("github");
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &base), ("GITHUB_TOKEN", TOKEN)],
            r#"
            local all = app.integrations.github.list_issues({owner = "octocat", repo = "Hello-World", per_page = 2, fetch_all = true})
            local numbers = {}
            for _, i in ipairs(all.data) do numbers[#numbers + 1] = i.number end
            print(json.encode(numbers))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(last_json(&out, &err), json!([1, 2, 3, 4, 5]));
    assert_eq!(srv.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn content_paths_keep_their_slashes() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octocat/Hello-World/contents/docs/guide/README.md"))
        .and(query_param("ref", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"type": "file", "path": "docs/guide/README.md", "encoding": "base64", "content": "aGk="}),
        ))
        .mount(&srv)
        .await;
    let s = Setup::new("github");
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &srv.uri())],
            r#"
            local f = app.integrations.github.get_content({owner = "octocat", repo = "Hello-World", path = "docs/guide/README.md", ref = "main"})
            print(json.encode({path = f.path}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(last_json(&out, &err)["path"], "docs/guide/README.md");
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].url.path(),
        "/repos/octocat/Hello-World/contents/docs/guide/README.md"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_rate_limit_403_is_a_rate_limit_error() {
    let srv = MockServer::start().await;
    // The quota refills in an hour: far beyond any wait kosmo sleeps, so it is returned at once.
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-limit", "60")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .insert_header("x-github-request-id", "C0DE:1234")
                .set_body_json(json!({
                    "message": "API rate limit exceeded for 127.0.0.1.",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
                })),
        )
        .mount(&srv)
        .await;
    let s = Setup::new("github");
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &srv.uri())],
            r#"
            local ok, e = pcall(function()
              return app.integrations.github.get_repo({owner = "octocat", repo = "Hello-World"})
            end)
            print(json.encode({ok = ok, type = e.type, status = e.status, message = e.message, request_id = e.request_id}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["ok"], false);
    assert_eq!(v["type"], "rate_limit_error", "{v}");
    assert_eq!(v["status"], 403);
    assert_eq!(v["request_id"], "C0DE:1234");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("API rate limit exceeded"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validation_error_keeps_github_s_error_body() {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/octocat/Hello-World/issues"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
            "status": "422"
        })))
        .mount(&srv)
        .await;
    let s = Setup::new("github");
    let (out, err, ok) = s
        .lua(
            &[("GITHUB_API_URL", &srv.uri()), ("GITHUB_TOKEN", TOKEN)],
            r#"
            local ok, e = pcall(function()
              return app.integrations.github.create_issue({owner = "octocat", repo = "Hello-World", title = " "})
            end)
            print(json.encode({ok = ok, type = e.type, status = e.status, message = e.message,
              field = e.body and e.body.errors[1].field, docs = e.body and e.body.documentation_url}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], 422);
    assert_eq!(v["type"], "validation_failed", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("Validation Failed"),
        "{v}"
    );
    assert_eq!(v["field"], "title", "{v}");
    assert_eq!(
        v["docs"],
        "https://docs.github.com/rest/issues/issues#create-an-issue"
    );
}
