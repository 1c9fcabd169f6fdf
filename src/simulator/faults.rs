//! Scripted faults, so a test (or a user testing their retry logic) decides exactly what happens.
//!
//! Grammar of `--faults` (also accepted by `POST /_kosmo/faults`):
//!
//! ```text
//! SPEC   = RULE { ";" RULE }
//! RULE   = TARGET "=" STEP { "," STEP }        TARGET = function name, alias, full name, or "*"
//! STEP   = KIND { ":" KEY "=" VALUE } [ "*" COUNT ]
//! KIND   = ok | 400..599 | reset | stall | html | truncated | eof | hang | error-event
//! ```
//!
//! Each request to a function takes the next step of that function's sequence (then of `*`);
//! when a sequence is used up, requests are answered normally. The `x-kosmo-fault` request
//! header applies one STEP to that request only, without touching the sequences.

use std::collections::{HashMap, VecDeque};

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::server::Sim;
use super::wire::{self, Reply, Tail};
use crate::registry::Integration;

pub const CONTROL_PREFIX: &str = "/_kosmo/";
pub const FAULT_HEADER: &str = "x-kosmo-fault";

/// One scripted outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer normally.
    Ok,
    /// An error response with this status in the service's envelope.
    Status {
        status: u16,
        retry_after: Option<String>,
        retry_after_ms: Option<u64>,
        should_retry: Option<bool>,
        message: Option<String>,
    },
    /// Drop the connection with a TCP reset before any response.
    Reset,
    /// Answer after `ms`, or never (the client has to time out) when `ms` is absent.
    Stall { ms: Option<u64> },
    /// An HTML error page, as a proxy in front of the service would send.
    Html { status: u16 },
    /// The real body cut in half, with a matching content-length (a JSON parse error).
    Truncated,
    /// The body stops early: a stream ends after `after` events without its final ones (cleanly,
    /// or with the connection dropped when `abort`); any other body announces its full length,
    /// sends half and drops the connection.
    Eof { after: Option<usize>, abort: bool },
    /// The body stalls: a stream sends `after` events, any other body half of its bytes, then
    /// nothing more while the connection stays open (for idle-timeout tests).
    Hang { after: Option<usize> },
    /// A stream sends `after` events, then an `error` event of type `kind`.
    /// `kind` None: the behaviour family's "overloaded" type.
    ErrorEvent {
        after: Option<usize>,
        kind: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    per_function: HashMap<String, VecDeque<Step>>,
    any: VecDeque<Step>,
}

impl FaultPlan {
    pub fn parse(spec: &str, integration: &Integration) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan::default();
        plan.extend(spec, integration)?;
        Ok(plan)
    }

    /// Append the sequences of `spec` to the current ones; all or nothing, so a spec with one
    /// bad rule changes nothing.
    pub fn extend(&mut self, spec: &str, integration: &Integration) -> Result<(), String> {
        let mut next = self.clone();
        next.extend_in_place(spec, integration)?;
        *self = next;
        Ok(())
    }

    fn extend_in_place(&mut self, spec: &str, integration: &Integration) -> Result<(), String> {
        for rule in spec.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (target, steps) = rule
                .split_once('=')
                .ok_or_else(|| format!("'{rule}': expected FUNCTION=STEP,STEP,..."))?;
            let target = target.trim();
            let mut parsed = VecDeque::new();
            for step in steps.split(',').map(str::trim) {
                let (step, count) = split_count(step)?;
                let s = parse_step(step)?;
                for _ in 0..count {
                    parsed.push_back(s.clone());
                }
            }
            if target == "*" {
                self.any.extend(parsed);
            } else {
                let (name, _) = integration.function(target).ok_or_else(|| {
                    let near = crate::error::closest(target, integration.all_names());
                    if near.is_empty() {
                        format!("unknown function '{target}'")
                    } else {
                        format!(
                            "unknown function '{target}'; did you mean: {}?",
                            near.join(", ")
                        )
                    }
                })?;
                self.per_function
                    .entry(name.to_string())
                    .or_default()
                    .extend(parsed);
            }
        }
        Ok(())
    }

    /// The next step for a function, consuming it.
    pub fn next(&mut self, function: &str) -> Option<Step> {
        if let Some(s) = self
            .per_function
            .get_mut(function)
            .and_then(VecDeque::pop_front)
        {
            return Some(s);
        }
        self.any.pop_front()
    }

    /// What is left, for `GET /_kosmo/faults`.
    pub fn remaining(&self) -> Value {
        let mut per: serde_json::Map<String, Value> = serde_json::Map::new();
        let mut names: Vec<&String> = self.per_function.keys().collect();
        names.sort();
        for n in names {
            let steps: Vec<String> = self.per_function[n].iter().map(describe).collect();
            if !steps.is_empty() {
                per.insert(n.clone(), json!(steps));
            }
        }
        let any: Vec<String> = self.any.iter().map(describe).collect();
        json!({"functions": per, "any": any})
    }
}

fn describe(s: &Step) -> String {
    match s {
        Step::Ok => "ok".into(),
        Step::Status { status, .. } => status.to_string(),
        Step::Reset => "reset".into(),
        Step::Stall { ms: Some(ms) } => format!("stall:ms={ms}"),
        Step::Stall { ms: None } => "stall".into(),
        Step::Html { status } => format!("html:status={status}"),
        Step::Truncated => "truncated".into(),
        Step::Eof { after, abort } => {
            let mut s = after.map_or("eof".into(), |a| format!("eof:after={a}"));
            if *abort {
                s.push_str(":abort=true");
            }
            s
        }
        Step::Hang { after } => after.map_or("hang".into(), |a| format!("hang:after={a}")),
        Step::ErrorEvent { after, kind } => {
            let mut s = "error-event".to_string();
            if let Some(a) = after {
                s.push_str(&format!(":after={a}"));
            }
            if let Some(k) = kind {
                s.push_str(&format!(":type={k}"));
            }
            s
        }
    }
}

fn split_count(step: &str) -> Result<(&str, usize), String> {
    match step.rsplit_once('*') {
        Some((s, n)) => {
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| format!("'{step}': the repeat count after '*' must be a number"))?;
            if n == 0 || n > 10_000 {
                return Err(format!("'{step}': the repeat count must be 1..10000"));
            }
            Ok((s.trim(), n))
        }
        None => Ok((step, 1)),
    }
}

/// Parse one STEP (`429:retry-after=2`).
pub fn parse_step(step: &str) -> Result<Step, String> {
    let mut parts = step.split(':').map(str::trim);
    let kind = parts.next().unwrap_or("").to_ascii_lowercase();
    let mut opts: HashMap<String, String> = HashMap::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("'{step}': option '{p}' must be KEY=VALUE"))?;
        opts.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let num = |k: &str| -> Result<Option<u64>, String> {
        opts.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("'{step}': {k} must be a whole number"))
            })
            .transpose()
    };
    let allow = |keys: &[&str]| -> Result<(), String> {
        match opts.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "'{step}': unknown option '{k}' for {kind} (allowed: {})",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            )),
            None => Ok(()),
        }
    };
    let s = match kind.as_str() {
        "ok" => {
            allow(&[])?;
            Step::Ok
        }
        "reset" => {
            allow(&[])?;
            Step::Reset
        }
        "stall" => {
            allow(&["ms"])?;
            Step::Stall { ms: num("ms")? }
        }
        "html" => {
            allow(&["status"])?;
            let status = num("status")?.unwrap_or(502);
            Step::Html {
                status: valid_status(status, step)?,
            }
        }
        "truncated" => {
            allow(&[])?;
            Step::Truncated
        }
        "eof" => {
            allow(&["after", "abort"])?;
            let abort = match opts.get("abort").map(String::as_str) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(format!("'{step}': abort must be true or false")),
            };
            Step::Eof {
                after: num("after")?.map(|n| n as usize),
                abort,
            }
        }
        "hang" => {
            allow(&["after"])?;
            Step::Hang {
                after: num("after")?.map(|n| n as usize),
            }
        }
        "error-event" | "sse-error" => {
            allow(&["after", "type"])?;
            if opts.get("type").is_some_and(|t| t.is_empty()) {
                return Err(format!("'{step}': type must name an error type"));
            }
            Step::ErrorEvent {
                after: num("after")?.map(|n| n as usize),
                kind: opts.get("type").cloned(),
            }
        }
        code if code.chars().all(|c| c.is_ascii_digit()) && !code.is_empty() => {
            allow(&["retry-after", "retry-after-ms", "should-retry", "message"])?;
            let status: u64 = code.parse().map_err(|_| format!("'{step}': bad status"))?;
            let status = valid_status(status, step)?;
            if status < 400 {
                return Err(format!("'{step}': a fault status must be 400..599"));
            }
            let should_retry = match opts.get("should-retry").map(String::as_str) {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(_) => return Err(format!("'{step}': should-retry must be true or false")),
            };
            let retry_after = match opts.get("retry-after") {
                Some(v) if !v.parse::<f64>().is_ok_and(|n| n.is_finite() && n >= 0.0) => {
                    return Err(format!(
                        "'{step}': retry-after must be a number of seconds, 0 or more (got '{v}')"
                    ));
                }
                Some(v) => Some(v.clone()),
                None if status == 429 => Some("1".into()),
                None => None,
            };
            Step::Status {
                status,
                retry_after,
                retry_after_ms: num("retry-after-ms")?,
                should_retry,
                message: opts.get("message").cloned(),
            }
        }
        "" => return Err("empty fault step".into()),
        other => {
            return Err(format!(
                "unknown fault '{other}' (known: ok, an HTTP status 400..599, reset, stall, html, truncated, eof, hang, error-event)"
            ));
        }
    };
    Ok(s)
}

fn valid_status(status: u64, step: &str) -> Result<u16, String> {
    if (100..=599).contains(&status) {
        Ok(status as u16)
    } else {
        Err(format!("'{step}': status must be 100..599"))
    }
}

/// The step for this request: the header's, else the next scripted one. `ok` means none.
pub fn step_for(sim: &Sim, function: &str, headers: &HeaderMap) -> Result<Option<Step>, String> {
    let step = match headers.get(FAULT_HEADER) {
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| format!("{FAULT_HEADER}: not valid text"))?;
            let (text, _) = split_count(text.trim())?;
            Some(parse_step(text).map_err(|e| format!("{FAULT_HEADER}: {e}"))?)
        }
        None => sim
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next(function),
    };
    Ok(step.filter(|s| *s != Step::Ok))
}

fn default_message(status: u16) -> &'static str {
    match status {
        429 => "Number of requests has exceeded your rate limit (simulated fault).",
        529 => "Overloaded",
        500 => "Internal server error (simulated fault).",
        504 => "Request timed out (simulated fault).",
        _ => "Simulated fault.",
    }
}

/// Faults answered instead of the request (status errors, HTML pages).
pub fn before(sim: &Sim, step: &Step) -> Option<Reply> {
    match step {
        Step::Status {
            status,
            retry_after,
            retry_after_ms,
            should_retry,
            message,
        } => {
            let mut headers = Vec::new();
            if let Some(r) = retry_after {
                headers.push(("retry-after".to_string(), r.clone()));
            }
            if let Some(ms) = retry_after_ms {
                headers.push(("retry-after-ms".to_string(), ms.to_string()));
            }
            if let Some(b) = should_retry {
                let name = sim
                    .integration
                    .manifest
                    .errors
                    .should_retry_header
                    .clone()
                    .unwrap_or_else(|| "x-should-retry".into());
                headers.push((name, b.to_string()));
            }
            Some(Reply::Error {
                status: *status,
                kind: None,
                message: message.clone().unwrap_or_else(|| default_message(*status).into()),
                headers,
            })
        }
        Step::Html { status } => Some(Reply::Raw {
            status: *status,
            content_type: "text/html; charset=utf-8".into(),
            body: format!(
                "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
            )
            .into_bytes(),
        }),
        _ => None,
    }
}

/// Faults that mangle the real answer (truncation, early end, a mid-stream error).
pub fn after(sim: &Sim, step: &Step, reply: Reply, rid: &str) -> Reply {
    match (step, reply) {
        (Step::Truncated, reply) => {
            let (status, content_type, body) = reply.render(sim, rid);
            let cut = body.len() / 2;
            Reply::Raw {
                status,
                content_type,
                body: body[..cut].to_vec(),
            }
        }
        (Step::Eof { after, abort }, Reply::Sse { mut events, .. }) => {
            let keep = after
                .unwrap_or(events.len() / 2)
                .min(events.len().saturating_sub(1));
            events.truncate(keep);
            let tail = if *abort { Tail::Abort } else { Tail::Complete };
            Reply::Sse { events, tail }
        }
        (Step::Hang { after }, Reply::Sse { mut events, .. }) => {
            let keep = after.unwrap_or(events.len() / 2).min(events.len());
            events.truncate(keep);
            Reply::Sse {
                events,
                tail: Tail::Hang,
            }
        }
        (Step::Eof { .. } | Step::Hang { .. }, reply) => {
            let (status, content_type, body) = reply.render(sim, rid);
            Reply::Broken {
                status,
                content_type,
                declared: body.len(),
                body: body[..body.len() / 2].to_vec(),
                tail: if matches!(step, Step::Hang { .. }) {
                    Tail::Hang
                } else {
                    Tail::Abort
                },
            }
        }
        (Step::ErrorEvent { after, kind }, Reply::Sse { mut events, .. }) => {
            let keep = after.unwrap_or(events.len() / 2).min(events.len());
            events.truncate(keep);
            let (status, default_kind, overloaded) = overloaded(sim);
            let (kind, message) = match kind {
                Some(k) => (k.clone(), "Simulated mid-stream error.".to_string()),
                None => (
                    default_kind.unwrap_or_else(|| wire::status_type(sim, status)),
                    overloaded.to_string(),
                ),
            };
            let mut data = wire::error_body(sim, &kind, &message, rid);
            if let Some(map) = data.as_object_mut() {
                // The stream's error event carries no request id (the response header has it).
                map.remove("request_id");
            }
            events.push(("error".into(), data));
            Reply::Sse {
                events,
                tail: Tail::Complete,
            }
        }
        (Step::ErrorEvent { kind, .. }, _) => {
            let (status, default_kind, message) = overloaded(sim);
            match kind.clone().or(default_kind) {
                Some(k) => Reply::error(status, &k, message),
                None => Reply::status(status, message),
            }
        }
        (_, reply) => reply,
    }
}

/// The family's "overloaded" answer: (status, type if it names one, message).
fn overloaded(sim: &Sim) -> (u16, Option<String>, &'static str) {
    let (status, kind, message) =
        sim.family
            .map(|f| f.overloaded())
            .unwrap_or((503, None, "Service Unavailable"));
    (status, kind.map(str::to_string), message)
}

/// `GET|POST|DELETE /_kosmo/faults` and `GET /_kosmo/health`.
pub fn control(sim: &Sim, method: &Method, path: &str, body: &str) -> Reply {
    let mut plan = sim.faults.lock().unwrap_or_else(|p| p.into_inner());
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/_kosmo/health") => Reply::json(json!({"ok": true})),
        ("GET", "/_kosmo/faults") => Reply::json(plan.remaining()),
        ("POST", "/_kosmo/faults") => match plan.extend(body, &sim.integration) {
            Ok(()) => Reply::json(plan.remaining()),
            Err(e) => Reply::invalid(e),
        },
        ("DELETE", "/_kosmo/faults") => {
            *plan = FaultPlan::default();
            Reply::json(plan.remaining())
        }
        _ => Reply::not_found("Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_with_options_and_counts() {
        assert_eq!(
            parse_step("429:retry-after=2").unwrap(),
            Step::Status {
                status: 429,
                retry_after: Some("2".into()),
                retry_after_ms: None,
                should_retry: None,
                message: None
            }
        );
        assert_eq!(split_count("529*3").unwrap(), ("529", 3));
        assert_eq!(
            parse_step("stall:ms=10").unwrap(),
            Step::Stall { ms: Some(10) }
        );
        assert!(
            parse_step("html:colour=red")
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse_step("explode").unwrap_err().contains("unknown fault"));
        assert!(parse_step("200").is_err());
        for bad in [
            "429:retry-after=-1",
            "429:retry-after=soon",
            "429:retry-after=inf",
            "429:retry-after-ms=-5",
            "529:colour=red",
            "stall:ms=1.5",
            "eof:abort=maybe",
            "html:status=99",
            "error-event:type=",
        ] {
            assert!(parse_step(bad).is_err(), "{bad} was accepted");
        }
        match parse_step("429").unwrap() {
            Step::Status { retry_after, .. } => assert_eq!(retry_after.as_deref(), Some("1")),
            other => panic!("{other:?}"),
        }
    }
}
