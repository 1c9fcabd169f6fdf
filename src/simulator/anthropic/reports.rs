//! Usage and cost reports: time buckets from `starting_at`, deterministic numbers per bucket,
//! and the opaque `page` / `next_page` cursor (the next bucket's start).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Rng, derived_id, stable_hash};
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::{self, Reply};

/// (width, default buckets, max buckets) per `bucket_width`.
fn width(call: &Call, allowed: &[&str]) -> Result<(Duration, u64, u64, String), Reply> {
    let w = call.text("bucket_width").unwrap_or_else(|| "1d".into());
    if !allowed.contains(&w.as_str()) {
        return Err(Reply::invalid(format!(
            "bucket_width: Input should be {}",
            allowed
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(match w.as_str() {
        "1m" => (Duration::from_secs(60), 60, 1440, w),
        "1h" => (Duration::from_secs(3600), 24, 168, w),
        _ => (Duration::from_secs(86400), 7, 31, w),
    })
}

fn snap(t: SystemTime, width: Duration) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let w = width.as_secs().max(1);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs - secs % w)
}

fn time_arg(call: &Call, name: &str) -> Result<Option<SystemTime>, Reply> {
    match call.text(name) {
        None => Ok(None),
        Some(s) => wire::parse_rfc3339(&s)
            .map(Some)
            .ok_or_else(|| Reply::invalid(format!("{name}: '{s}' is not an RFC 3339 timestamp"))),
    }
}

/// One page of buckets: (start, end) pairs and the next page's cursor.
struct Buckets {
    spans: Vec<(SystemTime, SystemTime)>,
    next: Option<String>,
}

fn buckets(call: &Call, allowed: &[&str]) -> Result<Buckets, Reply> {
    let (w, default_limit, max_limit, wname) = width(call, allowed)?;
    let Some(start) = time_arg(call, "starting_at")? else {
        return Err(Reply::invalid("starting_at: Field required"));
    };
    let end = time_arg(call, "ending_at")?.unwrap_or_else(SystemTime::now);
    let limit = match call.text("limit") {
        None => default_limit,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max_limit).contains(n))
            .ok_or_else(|| {
                Reply::invalid(format!(
                    "limit: Input should be between 1 and {max_limit} for bucket_width {wname}"
                ))
            })?,
    };
    let mut cur = snap(start, w);
    if let Some(page) = call.text("page") {
        let decoded = page
            .strip_prefix("page_")
            .and_then(|p| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(p).ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| wire::parse_rfc3339(&s));
        cur = decoded.ok_or_else(|| Reply::invalid(format!("page: invalid cursor '{page}'")))?;
    }
    let mut out = Vec::new();
    while cur < end && (out.len() as u64) < limit {
        out.push((cur, cur + w));
        cur += w;
    }
    let next = (cur < end).then(|| {
        use base64::Engine;
        format!(
            "page_{}",
            base64::engine::general_purpose::STANDARD
                .encode(humantime::format_rfc3339_seconds(cur).to_string())
        )
    });
    Ok(Buckets { spans: out, next })
}

fn grouped(call: &Call) -> Vec<String> {
    match call.arg("group_by") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => call.query.get("group_by").cloned().unwrap_or_default(),
    }
}

fn page(data: Vec<Value>, next: Option<String>) -> Reply {
    Reply::json(json!({"data": data, "has_more": next.is_some(), "next_page": next}))
}

/// `GET /v1/organizations/usage_report/messages`.
pub fn usage(sim: &Sim, call: &Call) -> Reply {
    let Buckets { spans: bs, next } = match buckets(call, &["1m", "1h", "1d"]) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let groups = grouped(call);
    let g = |name: &str, v: Value| {
        if groups.iter().any(|x| x == name) {
            v
        } else {
            Value::Null
        }
    };
    let seed = sim.opts.seed;
    let data = bs
        .into_iter()
        .map(|(s, e)| {
            let start = humantime::format_rfc3339_seconds(s).to_string();
            let mut rng = Rng::new(stable_hash(&start, seed));
            let scale = 1 + rng.below(50);
            json!({
                "starting_at": start,
                "ending_at": humantime::format_rfc3339_seconds(e).to_string(),
                "results": [{
                    "uncached_input_tokens": 1000 * scale,
                    "cache_creation": {"ephemeral_1h_input_tokens": 100 * scale, "ephemeral_5m_input_tokens": 50 * scale},
                    "cache_read_input_tokens": 20 * scale,
                    "output_tokens": 300 * scale,
                    "server_tool_use": {"web_search_requests": rng.below(5)},
                    "api_key_id": g("api_key_id", json!(derived_id("apikey_", "dev", seed))),
                    "workspace_id": g("workspace_id", json!(derived_id("wrkspc_", "research", seed))),
                    "model": g("model", json!("claude-sonnet-4-20250514")),
                    "service_tier": g("service_tier", json!("standard")),
                    "context_window": g("context_window", json!("0-200k")),
                    "inference_geo": g("inference_geo", json!("global")),
                }],
            })
        })
        .collect();
    page(data, next)
}

/// `GET /v1/organizations/cost_report`.
pub fn cost(sim: &Sim, call: &Call) -> Reply {
    let Buckets { spans: bs, next } = match buckets(call, &["1d"]) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let groups = grouped(call);
    let by_desc = groups.iter().any(|x| x == "description");
    let by_ws = groups.iter().any(|x| x == "workspace_id");
    let seed = sim.opts.seed;
    let data = bs
        .into_iter()
        .map(|(s, e)| {
            let start = humantime::format_rfc3339_seconds(s).to_string();
            let mut rng = Rng::new(stable_hash(&format!("cost{start}"), seed));
            let cents = 1000 + rng.below(50_000);
            let d = |v: Value| if by_desc { v } else { Value::Null };
            json!({
                "starting_at": start,
                "ending_at": humantime::format_rfc3339_seconds(e).to_string(),
                "results": [{
                    "amount": format!("{}.{:05}", cents, rng.below(100_000)),
                    "currency": "USD",
                    "cost_type": d(json!("tokens")),
                    "description": d(json!("Claude Sonnet 4 Usage - Input Tokens")),
                    "model": d(json!("claude-sonnet-4-20250514")),
                    "token_type": d(json!("uncached_input_tokens")),
                    "service_tier": d(json!("standard")),
                    "context_window": d(json!("0-200k")),
                    "inference_geo": d(json!("global")),
                    "workspace_id": if by_ws { json!(derived_id("wrkspc_", "research", seed)) } else { Value::Null },
                }],
            })
        })
        .collect();
    page(data, next)
}
