//! Polling deadlines: a poll that runs out says so; one that reaches the value at the deadline
//! succeeds.

use std::time::{Duration, Instant};

use serde_json::json;

use super::server::{self, Action};
use kosmo::exec::Call;

use super::requests::anthropic;

// ------------------------------------------------------------------ poll deadline

#[tokio::test]
async fn poll_honours_its_deadline_and_says_so() {
    let srv = server::start(vec![Action::json(
        200,
        r#"{"id":"msgbatch_x","type":"message_batch","processing_status":"in_progress"}"#,
    )])
    .await;
    let ex = anthropic(&srv.url);
    let t = Instant::now();
    let e = ex
        .call(Call::new(
            "anthropic",
            "wait_for_message_batch",
            json!({"id": "msgbatch_x", "timeout_seconds": 1, "interval_seconds": 0.1}),
        ))
        .await
        .unwrap_err();
    let elapsed = t.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "gave up early: {elapsed:?}"
    );
    // The server answers "in_progress" forever: a hang guard, far above the 1 s deadline.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "timeout", "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("wait_for_message_batch: msgbatch_x still in_progress after 1.0s"),
        "{msg}"
    );
    assert!(msg.contains("timeout_seconds"), "{msg}");
    // 0.1 + 0.2 + 0.4 = 0.7 s of backoff, then the last poll at the deadline itself.
    assert_eq!(srv.count(), 5, "polls at 0, 0.1, 0.3, 0.7 and 1.0 s");
}

#[tokio::test]
async fn poll_that_reaches_the_value_at_the_deadline_succeeds() {
    let running = r#"{"id":"msgbatch_y","processing_status":"in_progress"}"#;
    let srv = server::start(vec![
        Action::json(200, running),
        Action::json(200, running),
        Action::json(200, r#"{"id":"msgbatch_y","processing_status":"ended"}"#),
    ])
    .await;
    let ex = anthropic(&srv.url);
    let out = ex
        .call(Call::new(
            "anthropic",
            "wait_for_message_batch",
            json!({"id": "msgbatch_y", "timeout_seconds": 0.3, "interval_seconds": 0.2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["processing_status"], "ended");
    assert_eq!(srv.count(), 3);
}
