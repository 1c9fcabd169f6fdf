//! Following cursors (`fetch_all`) and polling (`poll` functions), both declared in the manifest.
//!
//! Cursor styles are generic: `id_cursor` sends `after_id` / `before_id` and reads `has_more`,
//! `first_id`, `last_id`; `page_cursor` sends `page` and reads `next_page`. Like the official
//! SDKs, a caller who starts with `before_id` walks backwards (`before_id = first_id`). A cursor
//! seen before ends the walk instead of looping forever.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::request::{Prepared, is_kosmo_option};
use super::{Call, CallOutput, Executor, Target};
use crate::error::{Error, Result, TransportKind};
use crate::manifest::{Location, PaginationStyle, Poll};
use crate::validate::OPTION_MAX_ITEMS;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Every page's items in one `data` list, up to `max_items`.
pub(super) async fn fetch_all(
    exec: &Executor,
    t: &Target<'_>,
    mut p: Prepared,
    args: &Map<String, Value>,
) -> Result<CallOutput> {
    let pagination =
        t.f.pagination
            .as_ref()
            .ok_or_else(|| Error::config(format!("{} is not paginated", t.name)))?;
    let max = args
        .get(OPTION_MAX_ITEMS)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .unwrap_or(usize::MAX);
    let backwards = pagination.style == PaginationStyle::IdCursor
        && p.query_value("before_id").is_some()
        && p.query_value("after_id").is_none();
    let mut items: Vec<Value> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut first_page: Option<Value> = None;
    let mut last_page: Value;
    let mut truncated = false;
    let mut page_cursor_used: Option<String> = None;
    let mut status: Option<u16>;
    let mut request_id: Option<String>;
    loop {
        let (page, st, rid) = exec.fetch(t, &p).await?;
        status = Some(st);
        request_id = rid.clone();
        let data = page
            .get(&pagination.items)
            .and_then(Value::as_array)
            .ok_or_else(|| Error::BadResponse {
                status: st,
                message: format!("a page of {} has no `{}` list", t.name, pagination.items),
                request_id: rid.clone(),
            })?;
        let empty = data.is_empty();
        for item in data {
            if items.len() >= max {
                truncated = true;
                break;
            }
            items.push(item.clone());
        }
        if items.len() >= max {
            // Whether more exist is known only when this page had more than we took.
            truncated = truncated
                || page.get("has_more") == Some(&Value::Bool(true))
                || text(&page, "next_page").is_some();
        }
        if first_page.is_none() {
            first_page = Some(page.clone());
        }
        last_page = page;
        if truncated || empty {
            break;
        }
        let next = match pagination.style {
            PaginationStyle::IdCursor => {
                if last_page.get("has_more") != Some(&Value::Bool(true)) {
                    break;
                }
                let (param, field) = if backwards {
                    ("before_id", "first_id")
                } else {
                    ("after_id", "last_id")
                };
                text(&last_page, field).map(|c| (param, c))
            }
            PaginationStyle::PageCursor => text(&last_page, "next_page").map(|c| ("page", c)),
        };
        let Some((param, cursor)) = next else { break };
        if !seen.insert(cursor.clone()) {
            tracing::warn!(
                "{}: the server repeated cursor {cursor}; stopping to avoid a loop",
                t.name
            );
            break;
        }
        page_cursor_used = Some(cursor.clone());
        p.set_query(param, Some(cursor));
    }
    let first_page = first_page.unwrap_or(Value::Null);
    let value = match pagination.style {
        PaginationStyle::IdCursor => {
            let item_id = |i: Option<&Value>| i.and_then(|v| text(v, "id"));
            let has_more = truncated || last_page.get("has_more") == Some(&Value::Bool(true));
            let (first_id, last_id) = if backwards {
                let first = if truncated {
                    item_id(items.last())
                } else {
                    text(&last_page, "first_id")
                };
                (
                    first.or_else(|| item_id(items.last())),
                    text(&first_page, "last_id"),
                )
            } else {
                let last = if truncated {
                    item_id(items.last())
                } else {
                    text(&last_page, "last_id")
                };
                (
                    text(&first_page, "first_id").or_else(|| item_id(items.first())),
                    last,
                )
            };
            json!({"data": items, "has_more": has_more, "first_id": first_id, "last_id": last_id})
        }
        PaginationStyle::PageCursor => {
            // Cut inside a page: point at that page again rather than skip its remaining items.
            // (`null` when the cut page was the first one: start over rather than lose items.)
            let next_page = if truncated {
                page_cursor_used
            } else {
                text(&last_page, "next_page")
            };
            json!({"data": items, "has_more": truncated || next_page.is_some(), "next_page": next_page})
        }
    };
    Ok(t.output(value, status, request_id))
}

/// Call the poll target with backoff until the manifest's pointer reaches one of its values.
pub(super) async fn poll(
    exec: &Executor,
    t: &Target<'_>,
    poll: &Poll,
    args: Map<String, Value>,
    dry_run: bool,
) -> Result<CallOutput> {
    let manifest = t.manifest();
    let (target_name, _) = t.integ.require_function(&poll.function)?;
    let control: Vec<&str> =
        t.f.params
            .iter()
            .filter(|p| p.location == Location::Control)
            .map(|p| p.name.as_str())
            .collect();
    let seconds = |k: &str, default: f64| {
        args.get(k)
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(default)
    };
    let timeout = seconds("timeout_seconds", poll.timeout_seconds);
    let mut interval = seconds("interval_seconds", poll.interval_seconds);
    let max_interval = poll.max_interval_seconds.max(interval);
    let target_args: Map<String, Value> = args
        .iter()
        .filter(|(k, _)| !control.contains(&k.as_str()) && !is_kosmo_option(manifest, k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // What the poll waits on, for the timeout message: the target's path arguments (its id).
    let subject: Vec<String> =
        t.f.params
            .iter()
            .filter(|p| p.location == Location::Path)
            .filter_map(|p| match args.get(&p.name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(v @ Value::Number(_)) => Some(v.to_string()),
                _ => None,
            })
            .collect();
    let started = Instant::now();
    // Polls are scheduled up to the deadline, the last one at the deadline itself, so a
    // `timeout_seconds` of 1 really waits 1 s. A poll in flight at the deadline may finish
    // (its own HTTP timeout bounds it); no poll starts after it.
    let deadline =
        started + Duration::try_from_secs_f64(timeout.min(MAX_POLL_SECONDS)).unwrap_or_default();
    let mut polls = 0u32;
    loop {
        let out = Box::pin(exec.call(Call {
            integration: &manifest.name,
            function: target_name,
            account: Some(&t.account),
            args: Value::Object(target_args.clone()),
            dry_run,
            on_event: None,
        }))
        .await?;
        polls += 1;
        let reached = out.value.pointer(&poll.until_pointer);
        if dry_run || reached.is_some_and(|v| poll.until_values.contains(v)) {
            return Ok(CallOutput {
                function: t.name.to_string(),
                class: t.f.class,
                ..out
            });
        }
        let now = Instant::now();
        if now >= deadline {
            let state = match reached {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => format!("without {}", poll.until_pointer),
            };
            let subject = if subject.is_empty() {
                String::new()
            } else {
                format!("{} ", subject.join("/"))
            };
            return Err(Error::Transport {
                kind: TransportKind::Timeout,
                message: format!(
                    "{}: {subject}still {state} after {:.1}s (timeout_seconds = {timeout}); {polls} polls of {target_name}, waiting for {} to be {}; the operation itself keeps running, call again to keep waiting",
                    t.name,
                    now.duration_since(started).as_secs_f64(),
                    poll.until_pointer,
                    poll.until_values
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            });
        }
        // A floor, so that a tiny `interval_seconds` cannot turn the wait into a request storm.
        let pause = if interval.is_nan() {
            MIN_POLL_SECONDS
        } else {
            interval.clamp(MIN_POLL_SECONDS, MAX_POLL_SECONDS)
        };
        let wake = (now + Duration::try_from_secs_f64(pause).unwrap_or_default()).min(deadline);
        tokio::time::sleep_until(wake.into()).await;
        interval = (interval * 2.0).min(max_interval);
    }
}

/// The shortest pause between two polls.
const MIN_POLL_SECONDS: f64 = 0.02;

/// `Duration::from_secs_f64` panics on huge values; no wait needs to be longer than a year.
const MAX_POLL_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
