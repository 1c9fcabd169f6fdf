//! The generic stateful tier: functions whose `simulator.resource` names a resource share one
//! in-memory collection of it, and create / get / list / update / delete it, from the manifest
//! alone (no Rust per integration).
//!
//! - The action is `simulator.action`, else guessed from method and path: POST on a collection
//!   path creates, GET with the item's parameter last gets, GET on a collection lists,
//!   PATCH / PUT / POST on an item updates, DELETE deletes.
//! - The item is named by `simulator.id_param` (default: the last path parameter when the path
//!   ends with it); its id lives in `simulator.id_field` (default `id`). New ids are
//!   `<id_prefix><24 base62>`; without a prefix, an integer id in the example gives the next
//!   number, anything else a random base62 id.
//! - Items are scoped by the other path parameters (`/repos/{owner}/{repo}/issues`: one list per
//!   repository). The items of the list functions' examples (and a get example with a literal
//!   id) are seeded in every scope.
//! - create stores the request body merged over the `response` example (with `{name}`
//!   placeholders filled in); get returns the stored item over the example; update merges the
//!   body into it; delete removes it and answers the example, or `{<id_field>: id, deleted: true}`
//!   without one; list pages with the function's declared pagination. An unknown id is a 404 in
//!   the manifest's error envelope; in mock mode it is answered from the example instead.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::generic::{body_reply, fill};
use super::pagination::{self, Paging, id_text};
use super::request::Call;
use super::server::Sim;
use super::wire::{self, Reply};
use crate::manifest::{Function, Location, Method, SimAction};

/// One stored item.
#[derive(Debug, Clone)]
struct Item {
    /// The values of the scoping path parameters; `None`: visible in every scope (a seed).
    scope: Option<Vec<(String, String)>>,
    id: String,
    value: Value,
}

#[derive(Debug, Default)]
struct Collection {
    seeded: bool,
    items: Vec<Item>,
}

/// Every resource's collection.
#[derive(Debug, Default)]
pub struct Collections {
    by_resource: HashMap<String, Collection>,
}

/// Whether the function belongs to the stateful tier.
pub fn applies(f: &Function) -> bool {
    f.simulator
        .as_ref()
        .and_then(|s| s.resource.as_ref())
        .is_some()
}

/// The path parameter naming the item, if the function has one.
pub fn id_param(f: &Function) -> Option<String> {
    if let Some(p) = f.simulator.as_ref().and_then(|s| s.id_param.clone()) {
        return Some(p);
    }
    let path = f.path.as_deref()?;
    let placeholder = |segment: &str| {
        segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|n| n.trim_start_matches('+').to_string())
    };
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    if let Some(name) = placeholder(last) {
        return Some(name);
    }
    // `/batches/{id}/cancel`, `/files/{id}/content`: an action on an item, when the manifest
    // says so. (Without a declared item action, `/users/{user}/repos` is a list in a scope.)
    let declared = f.simulator.as_ref().and_then(|s| s.action);
    if matches!(
        declared,
        Some(SimAction::Get | SimAction::Update | SimAction::Delete)
    ) {
        return path.rsplit('/').find_map(placeholder);
    }
    None
}

/// The declared action, or the one method and path suggest.
pub fn action(f: &Function) -> SimAction {
    if let Some(a) = f.simulator.as_ref().and_then(|s| s.action) {
        return a;
    }
    let on_item = id_param(f).is_some();
    match f.method {
        Some(Method::Delete) => SimAction::Delete,
        Some(Method::Get) if on_item => SimAction::Get,
        Some(Method::Get) => SimAction::List,
        Some(Method::Post) if !on_item => SimAction::Create,
        _ if on_item => SimAction::Update,
        _ => SimAction::Create,
    }
}

fn id_field(f: &Function) -> &str {
    f.simulator
        .as_ref()
        .and_then(|s| s.id_field.as_deref())
        .unwrap_or("id")
}

fn example(f: &Function) -> Option<&Value> {
    f.simulator.as_ref().and_then(|s| s.response.as_ref())
}

fn is_placeholder(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with('{') && s.ends_with('}'))
}

/// The scope of a call: its path parameters except the item's.
fn scope(call: &Call) -> Vec<(String, String)> {
    let id = id_param(call.f);
    call.path
        .iter()
        .filter(|(n, _)| Some(n) != id.as_ref())
        .cloned()
        .collect()
}

/// The request body's fields (body and form parameters, and fields no parameter declares).
fn body_fields(call: &Call) -> Map<String, Value> {
    let mut out = Map::new();
    let Value::Object(args) = &call.args else {
        return out;
    };
    for (k, v) in args {
        if v.is_null() && !call.f.params.iter().any(|p| &p.name == k) {
            continue;
        }
        match call.f.params.iter().find(|p| &p.name == k) {
            Some(p) if matches!(p.location, Location::Body | Location::Form) => {
                out.insert(p.wire().to_string(), v.clone());
            }
            Some(_) => {}
            None if call.path.iter().any(|(n, _)| n == k) => {}
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Seed a resource's collection from its functions' examples, once.
fn seed(sim: &Sim, resource: &str, col: &mut Collection) {
    if col.seeded {
        return;
    }
    col.seeded = true;
    for (_, f) in &sim.integration.manifest.functions {
        let Some(spec) = f.simulator.as_ref() else {
            continue;
        };
        if spec.resource.as_deref() != Some(resource) {
            continue;
        }
        let Some(ex) = example(f) else { continue };
        let key = id_field(f);
        let candidates: Vec<Value> = match action(f) {
            SimAction::List => {
                let at = Paging::of(f).map_or_else(|| list_pointer(ex), |p| p.items);
                match ex.pointer(&at) {
                    Some(Value::Array(items)) => items.clone(),
                    _ => vec![],
                }
            }
            SimAction::Get => vec![ex.clone()],
            _ => vec![],
        };
        for v in candidates {
            let Some(idv) = v.get(key) else { continue };
            if is_placeholder(idv) {
                continue;
            }
            let Some(id) = id_text(&v, key) else { continue };
            if col.items.iter().any(|i| i.id == id) {
                continue;
            }
            col.items.push(Item {
                scope: None,
                id,
                value: v,
            });
        }
    }
}

/// Where a list example without declared pagination keeps its items: the root when it is an
/// array, else its first array field.
fn list_pointer(ex: &Value) -> String {
    match ex {
        Value::Array(_) => String::new(),
        Value::Object(m) => m
            .iter()
            .find(|(_, v)| v.is_array())
            .map(|(k, _)| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
            .unwrap_or_else(|| "/data".into()),
        _ => String::new(),
    }
}

/// A fresh id: the prefix + random base62, or the next number when ids are numbers.
fn fresh_id(f: &Function, template: &Value, col: &Collection) -> Value {
    let spec = f.simulator.as_ref();
    let key = id_field(f);
    if let Some(prefix) = spec.and_then(|s| s.id_prefix.as_deref()) {
        return json!(wire::random_id(prefix));
    }
    let numeric = template.get(key).is_some_and(Value::is_number)
        || col
            .items
            .iter()
            .any(|i| i.value.get(key).is_some_and(Value::is_number));
    if numeric {
        let max = col
            .items
            .iter()
            .filter_map(|i| i.value.get(key).and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        return json!(max + 1);
    }
    json!(wire::random_id(""))
}

/// Objects: `top`'s fields over `base`'s (one level); anything else: `top`.
fn overlay(base: Value, top: &Value) -> Value {
    match (base, top) {
        (Value::Object(mut b), Value::Object(t)) => {
            for (k, v) in t {
                b.insert(k.clone(), v.clone());
            }
            Value::Object(b)
        }
        (_, t) => t.clone(),
    }
}

pub fn answer(sim: &Sim, call: &Call) -> Reply {
    let f = call.f;
    let Some(resource) = f.simulator.as_ref().and_then(|s| s.resource.clone()) else {
        return super::generic::answer(sim, call);
    };
    let status = f.simulator.as_ref().map_or(200, |s| s.status);
    let key = id_field(f).to_string();
    let template = fill(example(f).cloned().unwrap_or_else(|| json!({})), &call.args);
    let here = scope(call);
    let item_id = id_param(f).and_then(|p| call.text(&p));
    let mut all = sim.collections.lock().unwrap_or_else(|p| p.into_inner());
    let col = all.by_resource.entry(resource.clone()).or_default();
    seed(sim, &resource, col);
    let visible = |i: &Item| i.scope.as_ref().is_none_or(|s| *s == here);
    let position =
        |col: &Collection, id: &str| col.items.iter().position(|i| i.id == id && visible(i));
    let missing = |id: &str| Reply::not_found(format!("No {resource} with {key} '{id}'"));
    match action(f) {
        SimAction::Create => {
            let base = match &template {
                Value::Object(_) => template.clone(),
                _ => json!({}),
            };
            let mut value = overlay(base, &Value::Object(body_fields(call)));
            let id = fresh_id(f, &value, col);
            if let Value::Object(m) = &mut value {
                m.insert(key.clone(), id.clone());
            }
            let id = id_text(&value, &key).unwrap_or_default();
            col.items.push(Item {
                scope: Some(here),
                id,
                value: value.clone(),
            });
            body_reply(call, status, value, vec![])
        }
        SimAction::Get => {
            let id = item_id.unwrap_or_default();
            match position(col, &id) {
                Some(i) => body_reply(call, status, overlay(template, &col.items[i].value), vec![]),
                None if call.mock => body_reply(call, status, template, vec![]),
                None => missing(&id),
            }
        }
        SimAction::Update => {
            let id = item_id.unwrap_or_default();
            let changes = Value::Object(body_fields(call));
            match position(col, &id) {
                Some(i) => {
                    let item = &mut col.items[i];
                    item.value = overlay(item.value.clone(), &changes);
                    // A change seen in one scope stays in it: a seed becomes this scope's own.
                    if item.scope.is_none() {
                        item.scope = Some(here.clone());
                    }
                    body_reply(call, status, overlay(template, &item.value), vec![])
                }
                None if call.mock => body_reply(call, status, overlay(template, &changes), vec![]),
                None => missing(&id),
            }
        }
        SimAction::Delete => {
            let id = item_id.unwrap_or_default();
            let answer = match example(f) {
                Some(_) => template,
                None => {
                    let idv = col
                        .items
                        .iter()
                        .find(|i| i.id == id)
                        .and_then(|i| i.value.get(&key).cloned())
                        .unwrap_or_else(|| json!(id));
                    json!({key.as_str(): idv, "deleted": true})
                }
            };
            match position(col, &id) {
                Some(i) => {
                    col.items.remove(i);
                    body_reply(call, status, answer, vec![])
                }
                None if call.mock => body_reply(call, status, answer, vec![]),
                None => missing(&id),
            }
        }
        SimAction::List => {
            let items: Vec<Value> = col
                .items
                .iter()
                .filter(|i| visible(i))
                .map(|i| i.value.clone())
                .collect();
            drop(all);
            match Paging::of(f) {
                Some(p) => {
                    match pagination::page(&sim.base_url, &p, &items, call, template, &key) {
                        Ok((body, headers)) => body_reply(call, status, body, headers),
                        Err(e) => e,
                    }
                }
                None => {
                    let at = list_pointer(&template);
                    let mut body = template;
                    wire::set_pointer(&mut body, &at, Value::Array(items));
                    body_reply(call, status, body, vec![])
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
  create_thing:
    {group: g, class: write, summary: s, method: POST, path: "/v1/{org}/things", credential: k,
     params: [{name: org, in: path, required: true, type: string}], simulator: {resource: things}}
  get_thing:
    {group: g, class: read, summary: s, method: GET, path: "/v1/{org}/things/{thing_id}", credential: k,
     params: [{name: org, in: path, required: true, type: string}, {name: thing_id, in: path, required: true, type: string}],
     simulator: {resource: things}}
  list_things:
    {group: g, class: read, summary: s, method: GET, path: "/v1/{org}/things", credential: k,
     params: [{name: org, in: path, required: true, type: string}], simulator: {resource: things}}
  rename_thing:
    {group: g, class: write, summary: s, method: POST, path: "/v1/{org}/things/{thing_id}", credential: k,
     params: [{name: org, in: path, required: true, type: string}, {name: thing_id, in: path, required: true, type: string}],
     simulator: {resource: things}}
  drop_thing:
    {group: g, class: write, summary: s, method: DELETE, path: "/v1/{org}/things/{thing_id}", credential: k,
     params: [{name: org, in: path, required: true, type: string}, {name: thing_id, in: path, required: true, type: string}],
     simulator: {resource: things, action: delete, id_param: thing_id}}
  archive_thing:
    {group: g, class: write, summary: s, method: POST, path: "/v1/{org}/things/{thing_id}/archive", credential: k,
     params: [{name: org, in: path, required: true, type: string}, {name: thing_id, in: path, required: true, type: string}],
     simulator: {resource: things, action: update}}
  list_thing_parts:
    {group: g, class: read, summary: s, method: GET, path: "/v1/{org}/things/{thing_id}/parts", credential: k,
     params: [{name: org, in: path, required: true, type: string}, {name: thing_id, in: path, required: true, type: string}],
     simulator: {resource: parts}}
"#;

    #[test]
    fn actions_are_guessed_from_method_and_path() {
        let m = Manifest::from_yaml("t.yaml", M).unwrap();
        let a = |n: &str| action(&m.functions[n]);
        assert_eq!(a("create_thing"), SimAction::Create);
        assert_eq!(a("get_thing"), SimAction::Get);
        assert_eq!(a("list_things"), SimAction::List);
        assert_eq!(a("rename_thing"), SimAction::Update);
        assert_eq!(a("drop_thing"), SimAction::Delete);
        assert_eq!(
            id_param(&m.functions["get_thing"]).as_deref(),
            Some("thing_id")
        );
        assert_eq!(id_param(&m.functions["list_things"]), None);
        // An action on an item (`.../{thing_id}/archive`) names the item when declared; a
        // collection under an item (`.../{thing_id}/parts`) stays a scoped list.
        assert_eq!(
            id_param(&m.functions["archive_thing"]).as_deref(),
            Some("thing_id")
        );
        assert_eq!(a("list_thing_parts"), SimAction::List);
        assert_eq!(id_param(&m.functions["list_thing_parts"]), None);
    }

    #[test]
    fn list_examples_keep_items_at_the_root_or_their_array_field() {
        assert_eq!(list_pointer(&json!([1])), "");
        assert_eq!(list_pointer(&json!({"total": 1, "items": []})), "/items");
        assert_eq!(list_pointer(&json!({"total": 1})), "/data");
    }
}
