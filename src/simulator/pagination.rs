//! The server side of every pagination style a manifest declares (`pagination:`): cursor (from
//! a body pointer or a response header, with an optional reverse cursor), page number, offset /
//! limit and RFC 8288 `Link` headers; items at a pointer or at the root of the response.
//!
use serde_json::{Map, Value, json};

use super::request::Call;
use super::wire::{Reply, set_pointer};
use crate::manifest::Function;
pub use crate::manifest::PaginationStyle as Style;

/// A function's pagination, as the simulator needs it.
#[derive(Debug, Clone)]
pub struct Paging {
    pub style: Style,
    /// Pointer to the items; `""` = the response is the array.
    pub items: String,
    pub cursor_from: Option<String>,
    pub cursor_header: Option<String>,
    pub cursor_param: Option<String>,
    pub reverse_from: Option<String>,
    pub reverse_param: Option<String>,
    pub has_more: Option<String>,
    pub page_param: String,
    pub start: i64,
    pub offset_param: String,
    pub limit_param: String,
    pub size_param: Option<String>,
    pub total: Option<String>,
}

/// A bare word (`data`, the older form) means `/data`.
pub fn pointer(p: &str) -> String {
    if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

impl Paging {
    /// The function's declared pagination, if any.
    pub fn of(f: &Function) -> Option<Paging> {
        let spec = f.pagination.as_ref()?;
        let cursor = spec.cursor.as_ref();
        let reverse = spec.reverse.as_ref();
        Some(Paging {
            style: spec.style,
            items: spec.items_pointer(),
            cursor_from: cursor.and_then(|c| c.from.as_deref()).map(pointer),
            cursor_header: cursor.and_then(|c| c.header.clone()),
            cursor_param: cursor.map(|c| c.param.clone()),
            reverse_from: reverse.and_then(|c| c.from.as_deref()).map(pointer),
            reverse_param: reverse.map(|c| c.param.clone()),
            has_more: spec.has_more.as_deref().map(pointer),
            page_param: spec.page_param.clone(),
            start: spec.start,
            offset_param: spec.offset_param.clone(),
            limit_param: spec.limit_param.clone(),
            size_param: spec.size_param.clone(),
            total: spec.total.as_deref().map(pointer),
        })
    }

    /// The parameter that sets the page size.
    fn size_name(&self) -> &str {
        match &self.size_param {
            Some(s) => s,
            None => &self.limit_param,
        }
    }
}

/// An integer request value; `Ok(None)` when absent.
fn int_value(call: &Call, name: &str) -> Result<Option<i64>, Reply> {
    match call.text(name) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            Reply::invalid(format!(
                "{name}: Input should be a valid integer, got '{s}'"
            ))
        }),
    }
}

/// The page size: the request's, else the size parameter's schema default, else 20.
fn page_size(p: &Paging, call: &Call) -> Result<usize, Reply> {
    let name = p.size_name();
    let default = call
        .f
        .params
        .iter()
        .find(|q| q.wire() == name || q.name == name)
        .and_then(|q| q.schema.get("default"))
        .and_then(Value::as_i64)
        .unwrap_or(20);
    let n = int_value(call, name)?.unwrap_or(default);
    if n < 1 {
        return Err(Reply::invalid(format!(
            "{name}: Input should be greater than or equal to 1, got {n}"
        )));
    }
    Ok(n as usize)
}

/// An item's id as text (numbers too), for cursors.
pub fn id_text(item: &Value, id_field: &str) -> Option<String> {
    match item.get(id_field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One page of `items` (already in list order): the response body, built on `envelope` (the
/// function's example; ignored when the items are the root), and the headers it needs.
pub fn page(
    base_url: &str,
    p: &Paging,
    items: &[Value],
    call: &Call,
    envelope: Value,
    id_field: &str,
) -> Result<(Value, Vec<(String, String)>), Reply> {
    let size = page_size(p, call)?;
    let mut headers = Vec::new();
    let (slice, more, extra): (&[Value], bool, Vec<(String, Value)>) = match p.style {
        Style::Cursor => {
            let after = p.cursor_param.as_deref().and_then(|n| call.text(n));
            let before = p.reverse_param.as_deref().and_then(|n| call.text(n));
            // Mock mode answers every well-formed request: with both, the walk goes forward.
            let before = if call.mock && after.is_some() {
                None
            } else {
                before
            };
            if let (Some(_), Some(_), Some(a), Some(b)) =
                (&after, &before, &p.cursor_param, &p.reverse_param)
            {
                return Err(Reply::invalid(format!(
                    "{b} and {a} cannot be used together"
                )));
            }
            let position = |c: &str| {
                items
                    .iter()
                    .position(|v| id_text(v, id_field).as_deref() == Some(c))
            };
            let (slice, more) = if let Some(b) = before {
                let end = position(&b).unwrap_or(0);
                let start = end.saturating_sub(size);
                (&items[start..end], start > 0)
            } else if let Some(a) = after {
                let start = position(&a).map(|i| i + 1).unwrap_or(items.len());
                let end = (start + size).min(items.len());
                (&items[start..end], end < items.len())
            } else {
                let end = size.min(items.len());
                (&items[..end], end < items.len())
            };
            let first = slice.first().and_then(|v| id_text(v, id_field));
            let last = slice.last().and_then(|v| id_text(v, id_field));
            let mut extra = Vec::new();
            // With a has_more flag the cursor is set on every non-empty page (the flag tells
            // whether to follow it); without one, a cursor means "there is more".
            let next = if p.has_more.is_some() || more {
                last.clone()
            } else {
                None
            };
            if let Some(from) = &p.cursor_from {
                extra.push((from.clone(), json!(next)));
            }
            if let Some(from) = &p.reverse_from {
                extra.push((from.clone(), json!(first)));
            }
            if let (Some(h), true, Some(n)) = (&p.cursor_header, more, &last) {
                headers.push((h.clone(), n.clone()));
            }
            (slice, more, extra)
        }
        Style::Page | Style::Link => {
            let number = int_value(call, &p.page_param)?.unwrap_or(p.start);
            if number < p.start {
                return Err(Reply::invalid(format!(
                    "{}: Input should be greater than or equal to {}, got {number}",
                    p.page_param, p.start
                )));
            }
            let skip = ((number - p.start) as usize).saturating_mul(size);
            let start = skip.min(items.len());
            let end = start.saturating_add(size).min(items.len());
            let more = end < items.len();
            if p.style == Style::Link {
                let pages = items.len().div_ceil(size).max(1) as i64;
                let mut links = Vec::new();
                if more {
                    links.push(link(base_url, call, p, number + 1, "next"));
                    links.push(link(base_url, call, p, p.start + pages - 1, "last"));
                }
                if number > p.start {
                    links.push(link(base_url, call, p, p.start, "first"));
                    links.push(link(base_url, call, p, number - 1, "prev"));
                }
                if !links.is_empty() {
                    headers.push(("link".into(), links.join(", ")));
                }
            }
            (&items[start..end], more, Vec::new())
        }
        Style::Offset => {
            let offset = int_value(call, &p.offset_param)?.unwrap_or(0);
            if offset < 0 {
                return Err(Reply::invalid(format!(
                    "{}: Input should be greater than or equal to 0, got {offset}",
                    p.offset_param
                )));
            }
            let start = (offset as usize).min(items.len());
            let end = start.saturating_add(size).min(items.len());
            (&items[start..end], end < items.len(), Vec::new())
        }
    };
    if p.items.is_empty() {
        return Ok((Value::Array(slice.to_vec()), headers));
    }
    let mut body = match envelope {
        Value::Object(m) => Value::Object(m),
        _ => Value::Object(Map::new()),
    };
    set_pointer(&mut body, &p.items, Value::Array(slice.to_vec()));
    for (ptr, v) in extra {
        set_pointer(&mut body, &ptr, v);
    }
    if let Some(h) = &p.has_more {
        set_pointer(&mut body, h, json!(more));
    }
    if let Some(t) = &p.total {
        set_pointer(&mut body, t, json!(items.len()));
    }
    Ok((body, headers))
}

/// `<URL of this request with page=N>; rel="REL"`.
fn link(base_url: &str, call: &Call, p: &Paging, number: i64, rel: &str) -> String {
    let (path, query) = call.uri.split_once('?').unwrap_or((&call.uri, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| kv.split('=').next() != Some(p.page_param.as_str()))
        .map(str::to_string)
        .collect();
    pairs.push(format!("{}={number}", p.page_param));
    format!("<{base_url}{path}?{}>; rel=\"{rel}\"", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::manifest::Manifest;

    const M: &str = r#"
name: t
label: T
summary: t
category: testing
base_url: http://127.0.0.1:1
credentials: {k: {label: K, header: x-key, hint: h}}
functions:
  list_things:
    {group: g, class: read, summary: s, method: GET, path: /v1/things, credential: k,
     params: [{name: per_page, in: query, type: integer, default: 2}]}
"#;

    fn paging(style: Style, items: &str) -> Paging {
        Paging {
            style,
            items: items.into(),
            cursor_from: None,
            cursor_header: None,
            cursor_param: None,
            reverse_from: None,
            reverse_param: None,
            has_more: None,
            page_param: "page".into(),
            start: 1,
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            size_param: None,
            total: None,
        }
    }

    fn items(n: usize) -> Vec<Value> {
        (1..=n).map(|i| json!({"id": format!("t{i}")})).collect()
    }

    fn run(
        f: &Function,
        p: &Paging,
        query: &[(&str, &str)],
        envelope: Value,
    ) -> Result<(Value, Vec<(String, String)>), Reply> {
        let mut q: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in query {
            q.entry(k.to_string()).or_default().push(v.to_string());
        }
        let uri = format!(
            "/v1/things?{}",
            query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        let call = Call {
            function: "list_things",
            f,
            path: vec![],
            args: json!({}),
            query: q,
            headers: Default::default(),
            betas: vec![],
            upload: None,
            mock: false,
            uri,
        };
        page("http://sim", p, &items(5), &call, envelope, "id")
    }

    fn ids(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn cursor_pages_write_the_declared_pointers_and_headers() {
        let m = Manifest::from_yaml("t.yaml", M).unwrap();
        let f = &m.functions["list_things"];
        // The shape of id-cursor lists: both cursors on every page, has_more tells.
        let mut p = paging(Style::Cursor, "/data");
        p.cursor_from = Some("/last_id".into());
        p.cursor_param = Some("after_id".into());
        p.reverse_from = Some("/first_id".into());
        p.reverse_param = Some("before_id".into());
        p.has_more = Some("/has_more".into());
        let (b, h) = run(
            f,
            &p,
            &[("limit", "2"), ("after_id", "t2")],
            json!({"object": "list"}),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"object": "list", "data": [{"id": "t3"}, {"id": "t4"}], "last_id": "t4", "first_id": "t3", "has_more": true})
        );
        assert!(h.is_empty());
        let (b, _) = run(f, &p, &[("limit", "2"), ("before_id", "t3")], json!({})).unwrap();
        assert_eq!(
            (ids(&b["data"]), &b["has_more"]),
            (vec!["t1", "t2"], &json!(false))
        );
        let both = run(f, &p, &[("before_id", "t3"), ("after_id", "t1")], json!({}));
        assert!(matches!(both, Err(Reply::Error { status: 400, .. })));
        let zero = run(f, &p, &[("limit", "0")], json!({}));
        assert!(matches!(zero, Err(Reply::Error { status: 400, .. })));
        // Without has_more, the cursor means "more": null on the last page.
        let mut p = paging(Style::Cursor, "/items");
        p.cursor_from = Some("/next".into());
        p.cursor_param = Some("cursor".into());
        let (b, _) = run(f, &p, &[("limit", "3"), ("cursor", "t3")], json!({})).unwrap();
        assert_eq!(
            (ids(&b["items"]), &b["next"]),
            (vec!["t4", "t5"], &Value::Null)
        );
        // A header cursor with the array at the root.
        let mut p = paging(Style::Cursor, "");
        p.cursor_header = Some("x-next".into());
        p.cursor_param = Some("after".into());
        let (b, h) = run(f, &p, &[("limit", "4")], json!({"ignored": true})).unwrap();
        assert_eq!(ids(&b), vec!["t1", "t2", "t3", "t4"]);
        assert_eq!(h, vec![("x-next".to_string(), "t4".to_string())]);
    }

    #[test]
    fn page_link_and_offset_styles() {
        let m = Manifest::from_yaml("t.yaml", M).unwrap();
        let f = &m.functions["list_things"];
        let mut p = paging(Style::Link, "");
        p.size_param = Some("per_page".into());
        // The size parameter's schema default (2) applies.
        let (b, h) = run(f, &p, &[("page", "2")], json!({})).unwrap();
        assert_eq!(ids(&b), vec!["t3", "t4"]);
        let link = &h[0].1;
        assert_eq!(h[0].0, "link");
        assert!(
            link.contains("<http://sim/v1/things?page=3>; rel=\"next\""),
            "{link}"
        );
        assert!(
            link.contains("<http://sim/v1/things?page=3>; rel=\"last\""),
            "{link}"
        );
        assert!(
            link.contains("<http://sim/v1/things?page=1>; rel=\"prev\""),
            "{link}"
        );
        let (_, h) = run(f, &p, &[("page", "3")], json!({})).unwrap();
        assert!(!h[0].1.contains("next"), "{h:?}");
        let mut p = paging(Style::Page, "/data");
        p.total = Some("/total_count".into());
        p.has_more = Some("/more".into());
        let (b, h) = run(f, &p, &[("page", "1"), ("limit", "4")], json!({})).unwrap();
        assert_eq!(
            (ids(&b["data"]), &b["total_count"], &b["more"]),
            (vec!["t1", "t2", "t3", "t4"], &json!(5), &json!(true))
        );
        assert!(h.is_empty());
        assert!(run(f, &p, &[("page", "0")], json!({})).is_err());
        let p = paging(Style::Offset, "/results");
        let (b, _) = run(f, &p, &[("offset", "3"), ("limit", "5")], json!({})).unwrap();
        assert_eq!(ids(&b["results"]), vec!["t4", "t5"]);
    }
}
