//! When to try a request again, and how long to wait first.
//!
//! The base is the official SDKs' policy: retry connection errors, timeouts, 408, 409, 429 and
//! every 5xx (529 included), obey `x-should-retry` (the manifest names the header), wait what
//! `retry-after-ms` / `retry-after` say, else `0.5 s * 2^n` capped at 8 s with 75-100 % jitter.
//!
//! The improvement is for writes that the manifest does not mark idempotent (creating a batch,
//! uploading a file): the SDKs retry those too and can create duplicates. kosmo retries such a
//! write only when the server cannot have done the work:
//! - the connection was never established (connect refused, DNS, connect timeout);
//! - the server answered 408, 429 or 529, statuses it uses for "refused before processing";
//! - the server explicitly said `x-should-retry: true`.
//!
//! A reset, a timeout after the request was sent, or any other 5xx is returned to the caller
//! instead, unless the caller opted in with `retry_non_idempotent`.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Statuses the SDKs retry.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Statuses that mean the server refused the work before doing any of it.
pub fn refused_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 529)
}

/// The server's explicit verdict, if it sent one.
pub fn should_retry_header(headers: &HeaderMap, name: Option<&str>) -> Option<bool> {
    let v = headers.get(name?)?.to_str().ok()?;
    match v.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Decide about an HTTP error response. `safe_to_repeat` is true for reads, idempotent writes,
/// and when the caller opted in.
pub fn retry_response(
    status: u16,
    headers: &HeaderMap,
    header_name: Option<&str>,
    safe_to_repeat: bool,
) -> bool {
    match should_retry_header(headers, header_name) {
        Some(verdict) => verdict,
        None => retryable_status(status) && (safe_to_repeat || refused_status(status)),
    }
}

/// Decide about a failure without a response. `reached` is false when the connection was never
/// established, so the server cannot have seen the request.
pub fn retry_transport(reached: bool, safe_to_repeat: bool) -> bool {
    !reached || safe_to_repeat
}

/// Seconds from `retry-after-ms`, else `retry-after` (seconds, or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<f64> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(ms / 1000.0);
    }
    let raw = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    let wait = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(wait.as_secs_f64())
}

/// The wait before retry number `retries_done + 1`.
///
/// A server-given wait is honoured when positive; when it is longer than `max_server_wait` we do
/// not sleep that long inside a script and return `None` (the caller gets the error, with
/// `retry_after` set, and decides).
pub fn delay(
    retries_done: u32,
    server_wait: Option<f64>,
    max_server_wait: Duration,
) -> Option<Duration> {
    if let Some(secs) = server_wait
        && secs > 0.0
    {
        let d = Duration::from_secs_f64(secs);
        return (d <= max_server_wait).then_some(d);
    }
    let base = (0.5 * 2f64.powi(retries_done.min(16) as i32)).min(8.0);
    let jitter = 1.0 - 0.25 * fastrand::f64();
    Some(Duration::from_secs_f64(base * jitter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn sdk_statuses_and_the_write_rule() {
        let h = HeaderMap::new();
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(retry_response(s, &h, None, true), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!retry_response(s, &h, None, true), "{s}");
        }
        assert!(retry_response(429, &h, None, false));
        assert!(retry_response(529, &h, None, false));
        assert!(!retry_response(500, &h, None, false));
        assert!(!retry_response(409, &h, None, false));
        assert!(retry_transport(false, false));
        assert!(!retry_transport(true, false));
    }

    #[test]
    fn should_retry_header_wins() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert!(!retry_response(529, &h, Some("x-should-retry"), true));
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        assert!(retry_response(400, &h, Some("x-should-retry"), false));
        // Without the manifest naming the header, it is not consulted.
        assert!(!retry_response(400, &h, None, true));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(3.0));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(0.25));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(0.0));
    }

    #[test]
    fn backoff_is_capped_with_jitter() {
        let max = Duration::from_secs(60);
        for n in 0..10 {
            let d = delay(n, None, max).unwrap().as_secs_f64();
            let base = (0.5 * 2f64.powi(n as i32)).min(8.0);
            assert!(d <= base && d >= base * 0.75, "{n}: {d}");
        }
        assert_eq!(delay(0, Some(2.0), max), Some(Duration::from_secs(2)));
        assert_eq!(delay(0, Some(120.0), max), None);
    }
}
