//! Walking pages (`fetch_all`, the lazy `pages` / `items` iterators) and polling (`poll`
//! functions), all declared in the manifest.
//!
//! A [`Walker`] knows one function's `pagination:` block and moves the request from page to
//! page: a cursor (from a body pointer, a response header or the page's last item) into a query
//! parameter, optionally backwards (`reverse`) when the caller started with the reverse
//! parameter; a page number; an offset; or the `Link: <...>; rel="next"` header (RFC 8288).
//! A walk ends when `has_more` is false, a page is empty (or short, with `stop: [short_page]`),
//! there is no next cursor or link, `total` items were collected, or a cursor repeats (a loop
//! guard). It never ends quietly at a cap: reaching `max_pages` is an error
//! (`pagination_limit`) unless the caller set `max_items` / `max_pages`, and then the result says
//! so (`has_more: true`, or `truncated: true` when the result has no `has_more`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use super::request::{Prepared, is_kosmo_option};
use super::{Call, CallOutput, Executor, Fetched, Target};
use crate::error::{Error, Result, TransportKind};
use crate::manifest::{Location, Pagination, PaginationStyle, Poll, StopRule};
use crate::registry::Integration;
use crate::validate::{OPTION_MAX_ITEMS, OPTION_MAX_PAGES};

/// A cursor as query text: a non-empty string, or a number.
fn cursor_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A cursor as it is shown in a result: the same rule, `null` otherwise.
fn cursor_value(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Value::String(s.clone()),
        Some(n @ Value::Number(_)) => n.clone(),
        _ => Value::Null,
    }
}

/// The field a single-segment pointer (`/last_id`) names; `None` for deeper pointers.
fn top_field(pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix('/')?;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.replace("~1", "/").replace("~0", "~"))
}

/// The `rel="next"` target of `Link` headers (RFC 8288), as written.
pub fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        // Each link is `<uri>; param; param`, links separated by commas (a URI may contain
        // commas, but only inside the angle brackets).
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else { break };
            let uri = &after[..close];
            let tail = &after[close + 1..];
            let params_end = tail.find('<').unwrap_or(tail.len());
            let params = &tail[..params_end];
            let is_next = params.split(';').any(|p| {
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim_matches(|c: char| c.is_whitespace() || c == ',' || c == '"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next && !uri.trim().is_empty() {
                return Some(uri.trim().to_string());
            }
            rest = &tail[params_end..];
        }
    }
    None
}

/// One page as the walker got it.
pub struct Page {
    /// The decoded body.
    pub body: Value,
    /// The items at the pagination's `items` pointer.
    pub items: Vec<Value>,
    pub status: u16,
    pub request_id: Option<String>,
    pub headers: HeaderMap,
    /// The cursor (or page number, offset, link) that fetched this page; `None` for the first.
    pub cursor_used: Option<String>,
    /// The bytes of the page's body as sent.
    pub size: usize,
}

/// Moves a request from page to page.
pub struct Walker {
    spec: Pagination,
    p: Prepared,
    backwards: bool,
    seen: HashSet<String>,
    pages: u32,
    max_pages: u32,
    /// The caller set `max_items` or `max_pages`: a cap ends the walk as "truncated".
    caller_capped: bool,
    page_no: i64,
    offset: u64,
    collected: u64,
    /// The cursor the next page will be fetched with, if there is a next page.
    next_cursor: Option<String>,
    started: bool,
    done: bool,
    /// The page cap was reached while more pages remained.
    capped: bool,
    /// Whether more items remained after the last page fetched.
    more: bool,
    /// The last page named a next page (a cursor, a link, a page number).
    next_found: bool,
    /// The credential query parameter, never copied from a `next` link.
    auth_query: Option<String>,
}

impl Walker {
    pub fn new(spec: &Pagination, p: Prepared, args: &Map<String, Value>) -> Walker {
        let backwards = spec.style == PaginationStyle::Cursor
            && spec
                .reverse
                .as_ref()
                .is_some_and(|r| p.query_value(&r.param).is_some())
            && spec
                .cursor
                .as_ref()
                .is_none_or(|c| p.query_value(&c.param).is_none());
        let caller_pages = args
            .get(OPTION_MAX_PAGES)
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32);
        let caller_capped = caller_pages.is_some() || args.contains_key(OPTION_MAX_ITEMS);
        let page_no = p
            .query_value(&spec.page_param)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(spec.start);
        let offset = p
            .query_value(&spec.offset_param)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let auth_query = p.auth.as_ref().and_then(|a| a.query_param.clone());
        Walker {
            max_pages: caller_pages.unwrap_or(spec.max_pages).max(1),
            spec: spec.clone(),
            p,
            backwards,
            seen: HashSet::new(),
            pages: 0,
            caller_capped,
            page_no,
            offset,
            collected: 0,
            next_cursor: None,
            started: false,
            done: false,
            capped: false,
            more: false,
            next_found: false,
            auth_query,
        }
    }

    pub fn spec(&self) -> &Pagination {
        &self.spec
    }

    pub fn backwards(&self) -> bool {
        self.backwards
    }

    /// Whether items remained after the last page fetched (a next cursor, `has_more`, a link).
    pub fn more(&self) -> bool {
        self.more
    }

    /// The walk stopped at the page cap with pages remaining.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// The error for a walk that hit the manifest's page cap without a caller's limit.
    fn limit_error(&self, function: &str) -> Error {
        Error::PaginationLimit {
            function: function.into(),
            message: format!(
                "{function}: stopped after {} pages and more remain; pass max_pages or max_items to take a part of the list (the result then says it is cut), or narrow the query",
                self.pages
            ),
        }
    }

    /// The next page, or `None` at the end of the list.
    pub(super) async fn next(&mut self, exec: &Executor, t: &Target<'_>) -> Result<Option<Page>> {
        if self.done {
            if self.capped && !self.caller_capped {
                return Err(self.limit_error(t.name));
            }
            return Ok(None);
        }
        let cursor_used = if self.started {
            self.next_cursor.clone()
        } else {
            None
        };
        self.started = true;
        let Fetched {
            value,
            status,
            request_id,
            headers,
            size,
        } = exec.fetch(t, &self.p).await?;
        self.pages += 1;
        let pointer = self.spec.items_pointer();
        let items = match value.pointer(&pointer) {
            Some(Value::Array(a)) => a.clone(),
            // A page without the list when the API says there is no more (some APIs omit an
            // empty list) ends the walk.
            None if value.is_null() => Vec::new(),
            _ => {
                return Err(Error::BadResponse {
                    status,
                    message: format!(
                        "a page of {} has no list at `{}`",
                        t.name,
                        if pointer.is_empty() { "/" } else { &pointer }
                    ),
                    request_id,
                });
            }
        };
        self.collected += items.len() as u64;
        self.next_found = false;
        let next = self.advance(t, &value, &items, &headers)?;
        // More remain when the list says so (`has_more`), else when it named a next page (even
        // one the loop guard refused to fetch).
        self.more = match self.spec.has_more.as_deref() {
            Some(hm) => value.pointer(hm) == Some(&Value::Bool(true)),
            None => self.next_found,
        };
        match next {
            Some(c) if self.pages >= self.max_pages => {
                self.next_cursor = Some(c);
                self.capped = true;
                self.done = true;
            }
            Some(c) => self.next_cursor = Some(c),
            None => self.done = true,
        }
        Ok(Some(Page {
            body: value,
            items,
            status,
            request_id,
            headers,
            cursor_used,
            size,
        }))
    }

    /// Move the request to the next page; `None` when the walk is over.
    fn advance(
        &mut self,
        t: &Target<'_>,
        body: &Value,
        items: &[Value],
        headers: &HeaderMap,
    ) -> Result<Option<String>> {
        let spec = &self.spec;
        if items.is_empty() {
            return Ok(None);
        }
        if let Some(hm) = &spec.has_more
            && body.pointer(hm) != Some(&Value::Bool(true))
        {
            return Ok(None);
        }
        // Offsets count from the list's start (a walk may start at the caller's offset); other
        // styles count what this walk collected.
        let reached = match spec.style {
            PaginationStyle::Offset => self.offset.saturating_add(items.len() as u64),
            _ => self.collected,
        };
        if let Some(total) = spec.total.as_deref().and_then(|p| body.pointer(p))
            && let Some(total) = total.as_u64()
            && reached >= total
        {
            return Ok(None);
        }
        let asked = |param: &str| {
            self.p
                .query_value(param)
                .and_then(|s| s.parse::<usize>().ok())
        };
        if spec.stop.contains(&StopRule::ShortPage) {
            let size_param = spec.size_param.as_deref().unwrap_or(&spec.limit_param);
            if asked(size_param).is_some_and(|n| items.len() < n) {
                return Ok(None);
            }
        }
        let next = match spec.style {
            PaginationStyle::Cursor => {
                let c = if self.backwards {
                    spec.reverse.as_ref()
                } else {
                    spec.cursor.as_ref()
                };
                let Some(c) = c else { return Ok(None) };
                let value = if let Some(h) = &c.header {
                    super::response::header_text(headers, h)
                } else if let Some(from) = &c.from {
                    cursor_text(body.pointer(from))
                } else {
                    let item = if self.backwards {
                        items.first()
                    } else {
                        items.last()
                    };
                    c.item
                        .as_deref()
                        .and_then(|ptr| cursor_text(item.and_then(|i| i.pointer(ptr))))
                };
                value.map(|v| (c.param.clone(), v))
            }
            PaginationStyle::Page => {
                self.page_no = self.page_no.saturating_add(1);
                Some((spec.page_param.clone(), self.page_no.to_string()))
            }
            PaginationStyle::Offset => {
                self.offset = self.offset.saturating_add(items.len() as u64);
                Some((spec.offset_param.clone(), self.offset.to_string()))
            }
            PaginationStyle::Link => match spec
                .next_url
                .as_deref()
                .map_or_else(|| link_next(headers), |p| cursor_text(body.pointer(p)))
            {
                Some(uri) => {
                    self.next_found = true;
                    self.follow_link(t, &uri)?;
                    return Ok(self.first_visit(t, uri));
                }
                None => None,
            },
        };
        let Some((param, cursor)) = next else {
            return Ok(None);
        };
        self.next_found = true;
        if !self.seen.insert(format!("{param}={cursor}")) {
            tracing::warn!(
                "{}: the server repeated cursor {cursor}; stopping to avoid a loop",
                t.name
            );
            return Ok(None);
        }
        self.p.set_query(&param, Some(cursor.clone()));
        Ok(Some(cursor))
    }

    fn first_visit(&mut self, t: &Target<'_>, uri: String) -> Option<String> {
        if self.seen.insert(uri.clone()) {
            Some(uri)
        } else {
            tracing::warn!(
                "{}: the server repeated the next link; stopping to avoid a loop",
                t.name
            );
            None
        }
    }

    /// Point the request at a `next` link: absolute or relative to the current URL, on the
    /// same origin only (the credential must not travel to another host).
    fn follow_link(&mut self, t: &Target<'_>, uri: &str) -> Result<()> {
        let bad = |message: String| Error::BadResponse {
            status: 200,
            message,
            request_id: None,
        };
        let current = reqwest::Url::parse(&self.p.url)
            .map_err(|e| bad(format!("{}: the request URL is not a URL: {e}", t.name)))?;
        let next = current.join(uri).map_err(|e| {
            bad(format!(
                "{}: the next link '{}' is not a URL: {e}",
                t.name,
                crate::credentials::redact_url(uri)
            ))
        })?;
        if next.origin() != current.origin() {
            return Err(bad(format!(
                "{}: the next link points to another origin ({}); kosmo does not send the credential there",
                t.name,
                next.origin().ascii_serialization()
            )));
        }
        let mut base = next.clone();
        base.set_query(None);
        base.set_fragment(None);
        self.p.url = base.to_string();
        self.p.query = next
            .query_pairs()
            .filter(|(k, _)| self.auth_query.as_deref() != Some(k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(())
    }
}

/// Every page's items in one list, up to `max_items`, with the cursor fields of the list.
pub(super) async fn fetch_all(
    exec: &Executor,
    t: &Target<'_>,
    p: Prepared,
    args: &Map<String, Value>,
) -> Result<CallOutput> {
    let spec =
        t.f.pagination
            .as_ref()
            .ok_or_else(|| Error::config(format!("{} is not paginated", t.name)))?;
    let max = args
        .get(OPTION_MAX_ITEMS)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .unwrap_or(usize::MAX);
    let mut walker = Walker::new(spec, p, args);
    let mut items: Vec<Value> = Vec::new();
    let mut first_page: Option<Value> = None;
    let mut last: Option<Page> = None;
    let mut truncated = false;
    // The collected pages may not add up past `http.max_fetch_all_bytes`.
    let mut held = super::caps::Counter::new(super::caps::Cap::FetchAll, &exec.config().caps, None);
    while let Some(page) = walker.next(exec, t).await? {
        held.add(page.size)?;
        let mut cut = false;
        for item in &page.items {
            if items.len() >= max {
                cut = true;
                break;
            }
            items.push(item.clone());
        }
        if first_page.is_none() {
            first_page = Some(page.body.clone());
        }
        let full = items.len() >= max;
        last = Some(page);
        if cut || full {
            // Whether more exist is known only when this page had more than we took, or the
            // list says it goes on.
            truncated = cut || walker.more();
            break;
        }
    }
    if walker.capped() {
        truncated = true;
    }
    let first_page = first_page.unwrap_or(Value::Null);
    let Some(last) = last else {
        return Err(Error::config(format!("{}: no page was fetched", t.name)));
    };
    let value = assemble(&walker, &items, &first_page, &last, truncated);
    let mut out = t.output(value, Some(last.status), last.request_id.clone());
    out.headers = super::response::header_pairs(&last.headers, &[]);
    Ok(out)
}

/// The `fetch_all` result: `{<items>: [...]}`, then `has_more` (cursor style or a declared
/// `has_more`), the reverse and forward cursor fields, `total`, and `truncated: true` when the
/// result was cut and has no `has_more` to say so.
fn assemble(
    walker: &Walker,
    items: &[Value],
    first_page: &Value,
    last: &Page,
    truncated: bool,
) -> Value {
    let spec = walker.spec();
    let mut out = Map::new();
    out.insert(spec.items_key(), Value::Array(items.to_vec()));
    let has_more_key = match (&spec.has_more, spec.style) {
        (Some(p), _) => top_field(p),
        (None, PaginationStyle::Cursor) => Some("has_more".into()),
        _ => None,
    };
    if let Some(k) = &has_more_key {
        out.insert(k.clone(), Value::Bool(truncated || walker.more()));
    }
    if spec.style == PaginationStyle::Cursor {
        let fwd = spec.cursor.as_ref();
        let rev = spec.reverse.as_ref();
        let item_ptr = |c: Option<&crate::manifest::CursorSpec>| {
            c.and_then(|c| c.item.clone())
                .or_else(|| fwd.and_then(|c| c.item.clone()))
        };
        let item_cursor = |c: Option<&crate::manifest::CursorSpec>, item: Option<&Value>| match (
            item_ptr(c),
            item,
        ) {
            (Some(p), Some(i)) => cursor_value(i.pointer(&p)),
            _ => Value::Null,
        };
        let field = |c: Option<&crate::manifest::CursorSpec>| {
            c.and_then(|c| c.from.as_deref()).and_then(top_field)
        };
        let from = |c: Option<&crate::manifest::CursorSpec>, page: &Value| {
            c.and_then(|c| c.from.as_deref())
                .map_or(Value::Null, |p| cursor_value(page.pointer(p)))
        };
        // The cursor that resumes a cut result: the last item's, else the cursor that fetched
        // the cut page (start that page over rather than skip its remaining items).
        let resume = |c: Option<&crate::manifest::CursorSpec>| {
            if item_ptr(c).is_some() {
                item_cursor(c, items.last())
            } else {
                last.cursor_used.clone().map_or(Value::Null, Value::String)
            }
        };
        let or_item = |v: Value, item: Option<&Value>, c| {
            if v.is_null() { item_cursor(c, item) } else { v }
        };
        let (rev_value, fwd_value) = if walker.backwards() {
            let first = if truncated {
                resume(rev)
            } else {
                from(rev, &last.body)
            };
            (or_item(first, items.last(), rev), from(fwd, first_page))
        } else {
            let last_value = if truncated {
                resume(fwd)
            } else {
                from(fwd, &last.body)
            };
            (
                or_item(from(rev, first_page), items.first(), rev),
                last_value,
            )
        };
        if let Some(k) = field(rev) {
            out.insert(k, rev_value);
        }
        if let Some(k) = field(fwd) {
            out.insert(k, fwd_value);
        }
    }
    if let Some(p) = &spec.total
        && let Some(k) = top_field(p)
    {
        out.insert(k, first_page.pointer(p).cloned().unwrap_or(Value::Null));
    }
    if truncated && has_more_key.is_none() {
        out.insert("truncated".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// A lazy walk over the pages of one call: one request per [`PageStream::next`].
pub struct PageStream {
    exec: Executor,
    integ: Arc<Integration>,
    name: String,
    account: String,
    state: PageState,
    secrets: Vec<String>,
}

enum PageState {
    Walk(Box<Walker>),
    /// A dry run: the request, once.
    Once(Option<Value>),
}

/// One page from a [`PageStream`].
pub struct PageOut {
    /// The page's body, with what the envelope records about the request.
    pub output: CallOutput,
    pub items: Vec<Value>,
}

impl PageStream {
    pub(super) fn new(
        exec: &Executor,
        t: &Target<'_>,
        walker: Option<Walker>,
        dry_run: Option<Value>,
        secrets: Vec<String>,
    ) -> PageStream {
        PageStream {
            exec: exec.clone(),
            integ: t.integ.clone(),
            name: t.name.to_string(),
            account: t.account.clone(),
            state: match walker {
                Some(w) => PageState::Walk(Box::new(w)),
                None => PageState::Once(dry_run),
            },
            secrets,
        }
    }

    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<PageOut>> {
        let f = self
            .integ
            .manifest
            .functions
            .get(&self.name)
            .ok_or_else(|| Error::config(format!("internal: {} vanished", self.name)))?;
        let t = Target {
            integ: &self.integ,
            name: &self.name,
            f,
            account: self.account.clone(),
        };
        match &mut self.state {
            PageState::Once(v) => Ok(v.take().map(|v| PageOut {
                output: t.output(v, None, None),
                items: Vec::new(),
            })),
            PageState::Walk(w) => {
                let page = w
                    .next(&self.exec, &t)
                    .await
                    .map_err(|e| super::response::redact_error(e, &self.secrets))?;
                Ok(page.map(|mut page| {
                    let redactor = crate::redact::Redactor::for_secrets(&self.secrets);
                    redactor.redact_value_in_place(&mut page.body);
                    for item in &mut page.items {
                        redactor.redact_value_in_place(item);
                    }
                    let mut output = t.output(page.body, Some(page.status), page.request_id);
                    output.headers = super::response::header_pairs(&page.headers, &self.secrets);
                    PageOut {
                        output,
                        items: page.items,
                    }
                }))
            }
        }
    }

    pub fn function(&self) -> &str {
        &self.name
    }

    /// Nothing more to fetch and nothing more to report (a pending page-cap error is reported
    /// by the next [`PageStream::next`]).
    pub fn finished(&self) -> bool {
        match &self.state {
            PageState::Once(v) => v.is_none(),
            PageState::Walk(w) => w.done && (!w.capped || w.caller_capped),
        }
    }
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
        .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                if let Some(progress) = exec.progress() {
                    progress.finished(t.name);
                }
                return Err(e);
            }
        };
        polls += 1;
        let reached = out.value.pointer(&poll.until_pointer);
        let done = dry_run || reached.is_some_and(|v| poll.until_values.contains(v));
        if let Some(progress) = exec.progress() {
            if done || Instant::now() >= deadline {
                progress.finished(t.name);
            } else {
                progress.polled(
                    t.name,
                    polls,
                    reached,
                    started.elapsed(),
                    deadline.duration_since(started),
                );
            }
        }
        if done {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                r#"<https://api.x/r?page=1>; rel="prev", <https://api.x/r?page=3&a=b,c>; rel="next", <https://api.x/r?page=9>; rel="last""#,
            ),
        );
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://api.x/r?page=3&a=b,c")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static("</r?p=2>; rel=\"next last\""),
        );
        assert_eq!(link_next(&h).as_deref(), Some("/r?p=2"));
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static("<https://api.x/r?page=1>; rel=prev"),
        );
        assert_eq!(link_next(&h), None);
        assert_eq!(link_next(&HeaderMap::new()), None);
    }

    #[test]
    fn pointers_and_cursors() {
        assert_eq!(top_field("/last_id").as_deref(), Some("last_id"));
        assert_eq!(top_field("/a/b"), None);
        assert_eq!(top_field(""), None);
        assert_eq!(
            cursor_text(Some(&serde_json::json!(12))).as_deref(),
            Some("12")
        );
        assert_eq!(cursor_text(Some(&serde_json::json!(""))), None);
        assert_eq!(cursor_value(Some(&serde_json::json!(null))), Value::Null);
    }
}
