//! Mock mode (`--mock`) and the generic options of `simulator:serve` (`--key`, `--set`, and the
//! old flags as aliases).

use std::io::{BufRead, BufReader};

use kosmo::simulator::SimulatorOptions;
use serde_json::json;

use super::{ADMIN_KEY, API_KEY, get, post, req, send, start};

async fn mock() -> kosmo::simulator::RunningSimulator {
    start(SimulatorOptions {
        mock: true,
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_mode_answers_what_the_normal_mode_refuses() {
    let normal = start(SimulatorOptions::default()).await;
    let mock = mock().await;
    // Unknown ids: 404 normally, an answer shaped like the real one in mock mode.
    for (path, key) in [
        ("/v1/messages/batches/message_batch_id", API_KEY),
        ("/v1/models/model_id", API_KEY),
        ("/v1/files/file_id", API_KEY),
        ("/v1/organizations/users/user_id", ADMIN_KEY),
        (
            "/v1/organizations/workspaces/workspace_id/members/user_id",
            ADMIN_KEY,
        ),
    ] {
        let (s, b) = get(&normal, path, key).await;
        assert_eq!(s, 404, "{path}: {b}");
        assert_eq!(b["error"]["type"], "not_found_error");
        let (s, b) = get(&mock, path, key).await;
        assert_eq!(s, 200, "{path}: {b}");
        assert!(
            b["id"].is_string() || b["user_id"].is_string(),
            "{path}: {b}"
        );
    }
    // A batch that does not exist can be canceled and deleted.
    let (s, b) = post(
        &mock,
        "/v1/messages/batches/msgbatch_nowhere/cancel",
        API_KEY,
        json!({}),
    )
    .await;
    assert_eq!((s, b["type"].as_str()), (200, Some("message_batch")), "{b}");
    // Parameters that exclude each other.
    let both = "/v1/models?before_id=before_id&after_id=after_id&limit=1";
    let (s, b) = get(&normal, both, API_KEY).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = get(&mock, both, API_KEY).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["data"].is_array());
    // Enum values the SDK types as plain strings.
    let roles = "/v1/organizations/users?roles[]=string";
    assert_eq!(get(&normal, roles, ADMIN_KEY).await.0, 400);
    assert_eq!(get(&mock, roles, ADMIN_KEY).await.0, 200);
    // Unknown beta names.
    let beta = |sim: &kosmo::simulator::RunningSimulator| {
        req(
            reqwest::Method::GET,
            format!("{}/v1/models?beta=true", sim.base_url),
            API_KEY,
        )
        .header("anthropic-beta", "no-such-beta-2099-01-01")
    };
    assert_eq!(send(beta(&normal)).await.0, 400);
    assert_eq!(send(beta(&mock)).await.0, 200);
    // Schema validation and auth still apply in mock mode.
    let (s, b) = post(
        &mock,
        "/v1/messages",
        API_KEY,
        json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    assert_eq!(get(&mock, "/v1/models/model_id", "sk-wrong").await.0, 401);
    assert_eq!(get(&mock, "/v1/organizations/users", API_KEY).await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_part_without_a_file_name_is_the_file() {
    let sim = start(SimulatorOptions::default()).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"Example data".to_vec()),
    );
    let (s, _, b) = send(
        req(
            reqwest::Method::POST,
            format!("{}/v1/files", sim.base_url),
            API_KEY,
        )
        .header("anthropic-beta", "files-api-2025-04-14")
        .multipart(form),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["size_bytes"], 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upload_reads_the_body_so_the_client_gets_the_answer() {
    let sim = start(SimulatorOptions::default()).await;
    let addr = sim.base_url.trim_start_matches("http://").to_string();
    // Like aiohttp: send the whole request (8 MB, far more than socket buffers hold), then read
    // the answer. A server that answers without reading the body closes the connection under
    // the upload, and the client sees a reset instead of the 401.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = vec![b'x'; 8 << 20];
        let head = format!(
            "POST /v1/files HTTP/1.1\r\nhost: sim\r\nx-api-key: sk-wrong\r\nanthropic-version: 2023-06-01\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(&body)?;
        let mut out = vec![0u8; 4096];
        let n = s.read(&mut out)?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out[..n]).into_owned())
    })
    .await
    .unwrap()
    .expect("an answer, not a connection error");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("authentication_error"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_requests_of_its_generated_tests_pass_in_mock_mode() {
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let key = "my-anthropic-api-key".to_string();
    let sim = start(SimulatorOptions {
        mock: true,
        keys: [("api_key".into(), key.clone()), ("admin_key".into(), key)].into(),
        ..Default::default()
    })
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/mock_mode.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(&sim.base_url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mock_mode.py failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("9 steps passed"), "{stdout}");
}

fn serve(args: &[&str]) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .arg("simulator:serve")
        .args(args)
        .env("KOSMO_CONFIG_DIR", "/nonexistent-kosmo-test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

async fn status_with_key(url: &str, path: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_pins_keys_by_credential_name_and_the_old_flags_are_aliases() {
    let (mut child, url) = serve(&[
        "--key",
        "api_key=sk-ant-api03-pinned",
        "--admin-key",
        "sk-ant-admin01-pinned",
        "--set",
        "batch_delay_ms=100",
    ]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        status_with_key(&url, "/v1/models", "sk-ant-api03-pinned").await,
        200
    );
    assert_eq!(
        status_with_key(&url, "/v1/models", "sk-ant-api03-other").await,
        401
    );
    assert_eq!(
        status_with_key(&url, "/v1/organizations/me", "sk-ant-admin01-pinned").await,
        200
    );
    assert_eq!(
        status_with_key(&url, "/v1/organizations/me", "sk-ant-admin01-other").await,
        401
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn serve_refuses_unknown_keys_and_options_with_exit_2() {
    for (args, needle) in [
        (vec!["--set", "nope=1"], "batch_delay_ms"),
        (vec!["--set", "batch_delay_ms=soon"], "batch_delay_ms"),
        (vec!["--set", "novalue"], "NAME=VALUE"),
        (vec!["--key", "nope=x"], "api_key"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
            .arg("simulator:serve")
            .args(&args)
            .env("KOSMO_CONFIG_DIR", "/nonexistent-kosmo-test")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_keep_inference_data_privacy_member_by_member() {
    let sim = start(SimulatorOptions::default()).await;
    let (s, w) = post(
        &sim,
        "/v1/organizations/workspaces",
        ADMIN_KEY,
        json!({"name": "Private", "inference_data_privacy": {"human_review": {"type": "disabled"}}}),
    )
    .await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(
        w["inference_data_privacy"],
        json!({"human_review": {"type": "disabled"}, "safeguards_storage": {"type": "internal"}, "transcripts_storage": {"type": "internal"}})
    );
    let id = w["id"].as_str().unwrap();
    let (s, w) = post(
        &sim,
        &format!("/v1/organizations/workspaces/{id}"),
        ADMIN_KEY,
        json!({"inference_data_privacy": {"transcripts_storage": {"type": "external", "external_storage_id": "estrg_1"}}}),
    )
    .await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(
        w["inference_data_privacy"]["human_review"]["type"],
        "disabled"
    );
    assert_eq!(
        w["inference_data_privacy"]["transcripts_storage"]["external_storage_id"],
        "estrg_1"
    );
    // The schema is the SDK's: unknown members are refused.
    let (s, _) = post(
        &sim,
        "/v1/organizations/workspaces",
        ADMIN_KEY,
        json!({"name": "X", "inference_data_privacy": {"nope": true}}),
    )
    .await;
    assert_eq!(s, 400);
}
