//! When to try a request again, and how long to wait first, as the manifest's `retry:` block
//! declares it.
//!
//! The defaults are the official SDKs' policy: retry connection errors, timeouts, 408, 409, 429
//! and every 5xx, obey a "should retry" header when the manifest names one, wait what
//! `retry-after-ms` / `retry-after` say, else `0.5 s * 2^n` capped at 8 s with 75-100 % jitter.
//! A manifest may list its own statuses, wait headers, reset-time headers (`x-ratelimit-reset`,
//! epoch seconds) and responses that are rate limits under another status (a 403 with
//! `x-ratelimit-remaining: 0`).
//!
//! The improvement is for writes that the manifest does not mark idempotent (creating a batch,
//! uploading a file): the SDKs retry those too and can create duplicates. kosmo retries such a
//! write only when the server cannot have done the work:
//! - the connection was never established (connect refused, DNS, connect timeout);
//! - the server answered a status of `retry.refused_statuses` ("refused before processing",
//!   default 408 and 429), or the response is a declared rate limit;
//! - the server explicitly said so in the "should retry" header.
//!
//! A reset, a timeout after the request was sent, or any other 5xx is returned to the caller
//! instead, unless the caller opted in with `retry_non_idempotent`.
//!
//! Every number a server sends is parsed with bounds: a wait that is negative, not finite or
//! absurdly long never reaches `Duration` arithmetic (which panics on overflow).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use crate::manifest::{ResetFormat, RetrySpec};

/// The longest wait a server can ask for that kosmo keeps as a number (about 31 years); longer
/// values are clamped to it.
pub const MAX_WAIT_SECONDS: f64 = 1e9;

/// The server's explicit verdict, if it sent one.
pub fn should_retry_header(headers: &HeaderMap, name: Option<&str>) -> Option<bool> {
    let v = headers.get(name?)?.to_str().ok()?;
    match v.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Whether a response is a rate limit: 429, or a declared `rate_limited` rule matches.
pub fn is_rate_limited(spec: &RetrySpec, status: u16, headers: &HeaderMap) -> bool {
    status == 429
        || spec.rate_limited.iter().any(|r| {
            r.status == status
                && headers
                    .get(r.header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| r.equals.as_deref().is_none_or(|e| v.trim() == e))
        })
}

/// Decide about an HTTP error response. `safe_to_repeat` is true for reads, idempotent writes,
/// and when the caller opted in.
pub fn retry_response(
    spec: &RetrySpec,
    status: u16,
    headers: &HeaderMap,
    header_name: Option<&str>,
    safe_to_repeat: bool,
) -> bool {
    let rate_limited = is_rate_limited(spec, status, headers);
    match should_retry_header(headers, header_name) {
        Some(verdict) => verdict,
        None => {
            (spec.retries_status(status) || rate_limited)
                && (safe_to_repeat || rate_limited || spec.refused_statuses.contains(&status))
        }
    }
}

/// Decide about a failure without a response. `reached` is false when the connection was never
/// established, so the server cannot have seen the request.
pub fn retry_transport(reached: bool, safe_to_repeat: bool) -> bool {
    !reached || safe_to_repeat
}

/// A server number of seconds, bounded: finite, not negative, at most [`MAX_WAIT_SECONDS`].
fn bounded(secs: f64) -> Option<f64> {
    (secs.is_finite() && secs >= 0.0).then(|| secs.min(MAX_WAIT_SECONDS))
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Seconds to wait from the first wait header that says (`-ms` names are milliseconds, others
/// seconds or an HTTP date); for a rate limit, else from the reset headers.
pub fn server_wait(spec: &RetrySpec, headers: &HeaderMap, rate_limited: bool) -> Option<f64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    for name in &spec.retry_after_headers {
        let Some(raw) = text(name) else { continue };
        let millis = name.to_ascii_lowercase().ends_with("-ms");
        if let Ok(n) = raw.parse::<f64>() {
            if let Some(secs) = bounded(if millis { n / 1000.0 } else { n }) {
                return Some(secs);
            }
            continue;
        }
        if !millis && let Ok(when) = httpdate::parse_http_date(raw) {
            let wait = when
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            return bounded(wait.as_secs_f64());
        }
    }
    if !rate_limited {
        return None;
    }
    for r in &spec.reset_headers {
        let Some(n) = text(&r.header).and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        let secs = match r.format {
            ResetFormat::EpochSeconds => n - now_epoch(),
            ResetFormat::DeltaSeconds => n,
        };
        if secs.is_finite() {
            return bounded(secs.max(0.0));
        }
    }
    None
}

/// Seconds from `retry-after-ms`, else `retry-after` (seconds, or an HTTP date): the default
/// wait headers.
pub fn retry_after(headers: &HeaderMap) -> Option<f64> {
    server_wait(&RetrySpec::default(), headers, false)
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
        // Compared as numbers first: `Duration::from_secs_f64` panics on huge or odd values.
        if !secs.is_finite() || secs > max_server_wait.as_secs_f64() {
            return None;
        }
        return Duration::try_from_secs_f64(secs).ok();
    }
    let base = (0.5 * 2f64.powi(retries_done.min(16) as i32)).min(8.0);
    let jitter = 1.0 - 0.25 * fastrand::f64();
    Duration::try_from_secs_f64(base * jitter).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{RateLimitedRule, ResetHeader};
    use reqwest::header::HeaderValue;

    fn sdk() -> RetrySpec {
        RetrySpec::default()
    }

    fn with_529() -> RetrySpec {
        RetrySpec {
            statuses: Some(vec![408, 409, 429, 500, 502, 503, 504, 529]),
            refused_statuses: vec![408, 429, 529],
            ..RetrySpec::default()
        }
    }

    #[test]
    fn sdk_statuses_and_the_write_rule() {
        let h = HeaderMap::new();
        let s = sdk();
        for st in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(retry_response(&s, st, &h, None, true), "{st}");
        }
        for st in [400, 401, 403, 404, 413, 422] {
            assert!(!retry_response(&s, st, &h, None, true), "{st}");
        }
        assert!(retry_response(&s, 429, &h, None, false));
        // 529 is nothing special unless a manifest declares it.
        assert!(!retry_response(&s, 529, &h, None, false));
        assert!(retry_response(&with_529(), 529, &h, None, false));
        assert!(!retry_response(&with_529(), 501, &h, None, true));
        assert!(!retry_response(&s, 500, &h, None, false));
        assert!(!retry_response(&s, 409, &h, None, false));
        assert!(retry_transport(false, false));
        assert!(!retry_transport(true, false));
    }

    #[test]
    fn should_retry_header_wins() {
        let mut h = HeaderMap::new();
        let s = with_529();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert!(!retry_response(&s, 529, &h, Some("x-should-retry"), true));
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        assert!(retry_response(&s, 400, &h, Some("x-should-retry"), false));
        // Without the manifest naming the header, it is not consulted.
        assert!(!retry_response(&s, 400, &h, None, true));
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
    fn absurd_waits_are_bounded_and_never_panic() {
        let max = Duration::from_secs(60);
        for (name, value) in [
            ("retry-after", "1e20"),
            ("retry-after-ms", "1e300"),
            ("retry-after", "1e309"),
            ("retry-after", "-5"),
            ("retry-after", "NaN"),
            ("retry-after", "inf"),
            ("retry-after-ms", "18446744073709551616000"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            let w = retry_after(&h);
            if let Some(w) = w {
                assert!(
                    w.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(&w),
                    "{value}: {w}"
                );
            }
            // Longer than the max wait: returned to the caller, not slept; never a panic.
            let d = delay(0, w, max);
            assert!(d.is_none_or(|d| d <= max), "{value}: {d:?}");
        }
        assert_eq!(delay(0, Some(f64::INFINITY), max), None);
        assert_eq!(delay(0, Some(1e300), max), None);
    }

    #[test]
    fn rate_limit_rules_and_reset_headers() {
        let spec = RetrySpec {
            reset_headers: vec![ResetHeader {
                header: "x-ratelimit-reset".into(),
                format: ResetFormat::EpochSeconds,
            }],
            rate_limited: vec![RateLimitedRule {
                status: 403,
                header: "x-ratelimit-remaining".into(),
                equals: Some("0".into()),
            }],
            ..RetrySpec::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (now_epoch() as u64 + 30).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        assert!(is_rate_limited(&spec, 403, &h));
        // A rate limit is refused work: retried even for a non-idempotent write.
        assert!(retry_response(&spec, 403, &h, None, false));
        let w = server_wait(&spec, &h, true).unwrap();
        assert!((25.0..=31.0).contains(&w), "{w}");
        // The reset header alone does not make a wait for other errors.
        assert_eq!(server_wait(&spec, &h, false), None);
        let mut other = HeaderMap::new();
        other.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
        assert!(!is_rate_limited(&spec, 403, &other));
        assert!(!retry_response(&spec, 403, &other, None, true));
        // Without `equals`, the header's presence is enough (a secondary limit's retry-after).
        let present = RetrySpec {
            rate_limited: vec![RateLimitedRule {
                status: 403,
                header: "retry-after".into(),
                equals: None,
            }],
            ..RetrySpec::default()
        };
        let mut h2 = HeaderMap::new();
        assert!(!is_rate_limited(&present, 403, &h2));
        h2.insert("retry-after", HeaderValue::from_static("5"));
        assert!(is_rate_limited(&present, 403, &h2));
        // A reset in the past is no wait; one far away is clamped, not a panic.
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1"));
        assert_eq!(server_wait(&spec, &h, true), Some(0.0));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1e300"));
        assert_eq!(server_wait(&spec, &h, true), Some(MAX_WAIT_SECONDS));
        let delta = RetrySpec {
            reset_headers: vec![ResetHeader {
                header: "ratelimit-reset".into(),
                format: ResetFormat::DeltaSeconds,
            }],
            ..RetrySpec::default()
        };
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(server_wait(&delta, &h, true), Some(7.0));
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
