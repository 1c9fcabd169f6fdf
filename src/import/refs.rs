//! `$ref` resolution and schema conversion.
//!
//! Schemas are converted to the manifest's dialect (JSON Schema draft 2020-12) as they are
//! resolved: OpenAPI 3.0's `nullable`, boolean `exclusiveMinimum` / `exclusiveMaximum` and
//! `example` become `type` lists, numeric bounds and `examples`; keywords with no meaning for
//! validation (`discriminator`, `xml`, `externalDocs`, extensions) are left out and reported.
//!
//! A component schema used more than once becomes a shared node, which the writer emits once as
//! a YAML anchor and aliases afterwards. A reference back to a schema being expanded (a cycle:
//! a comment whose replies are comments) cannot be an alias (YAML cannot alias an ancestor into
//! a finite value), so it becomes an open schema with a description naming the shape, and is
//! reported; a schema whose expansion hit a cycle is not shared, since its expansion depends on
//! where it was met.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_json::{Map, Value};

use super::emit::{Entry, Node};
use super::openapi::{Spec, Version};
use super::report::Report;

/// Deepest schema nesting expanded; deeper parts become open schemas (reported).
const MAX_DEPTH: usize = 48;
/// Longest `$ref` chain followed for a non-schema object.
const MAX_CHAIN: usize = 32;

/// Keywords left out of converted schemas (no meaning for validation), with why.
const DROPPED: [(&str, &str); 8] = [
    (
        "discriminator",
        "`discriminator` is not kept: the alternatives (oneOf/anyOf) are, so validation still picks by shape",
    ),
    (
        "xml",
        "`xml` serialization hints are not kept: kosmo sends JSON, form or multipart bodies",
    ),
    (
        "externalDocs",
        "`externalDocs` links in schemas are not kept",
    ),
    (
        "$schema",
        "`$schema` inside a schema is not kept (the manifest's dialect is draft 2020-12)",
    ),
    ("$id", "`$id` inside a schema is not kept"),
    ("$anchor", "`$anchor` is not kept"),
    (
        "$dynamicRef",
        "`$dynamicRef` is not resolved; the place accepts any value",
    ),
    ("$dynamicAnchor", "`$dynamicAnchor` is not kept"),
];

pub struct Schemas<'a> {
    spec: &'a Spec,
    cache: HashMap<String, Rc<Node>>,
    anchors: HashMap<String, Rc<str>>,
    anchor_names: HashSet<String>,
    stack: Vec<String>,
    /// Cycles cut so far: a change while a reference is expanded makes it context-dependent.
    cuts: usize,
}

impl<'a> Schemas<'a> {
    pub fn new(spec: &'a Spec) -> Self {
        Schemas {
            spec,
            cache: HashMap::new(),
            anchors: HashMap::new(),
            anchor_names: HashSet::new(),
            stack: Vec::new(),
            cuts: 0,
        }
    }

    /// Follow `$ref`s of a non-schema object (parameter, request body, response, example,
    /// security scheme) to the object itself, with the last component name on the way.
    pub fn deref(
        &self,
        v: &'a Value,
        place: &str,
        report: &mut Report,
    ) -> Option<(&'a Value, Option<String>)> {
        let mut cur = v;
        let mut name = None;
        for _ in 0..MAX_CHAIN {
            let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
                return Some((cur, name));
            };
            if !r.starts_with('#') {
                report.note(
                    "external_ref",
                    format!("reference to another document (`{r}`) is not followed; the part is left out"),
                    place,
                );
                return None;
            }
            match self.spec.pointer(r) {
                Some(next) => {
                    name = r.rsplit('/').next().map(str::to_string);
                    cur = next;
                }
                None => {
                    report.note(
                        "unresolved_ref",
                        format!("`{r}` points at nothing in the spec; the part is left out"),
                        place,
                    );
                    return None;
                }
            }
        }
        report.note(
            "unresolved_ref",
            "a `$ref` chain longer than 32 links (or a loop of references); the part is left out",
            place,
        );
        None
    }

    /// The schema converted, references resolved.
    pub fn convert(&mut self, schema: &'a Value, place: &str, report: &mut Report) -> Node {
        self.convert_at(schema, place, report, 0)
    }

    /// The YAML anchor name of a reference (unique per reference, readable).
    pub fn anchor_for(&mut self, reference: &str) -> Rc<str> {
        let base = reference.rsplit('/').next().unwrap_or("schema").to_string();
        self.anchor_named(reference, &base)
    }

    /// The YAML anchor for `key`, made from `base` (deduplicated across the document).
    pub fn anchor_named(&mut self, key: &str, base: &str) -> Rc<str> {
        if let Some(a) = self.anchors.get(key) {
            return a.clone();
        }
        let base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() {
            "schema".to_string()
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 2;
        while !self.anchor_names.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        let rc: Rc<str> = name.into();
        self.anchors.insert(key.to_string(), rc.clone());
        rc
    }

    fn convert_at(
        &mut self,
        schema: &'a Value,
        place: &str,
        report: &mut Report,
        depth: usize,
    ) -> Node {
        if depth > MAX_DEPTH {
            report.note(
                "schema_too_deep",
                format!("schemas nested deeper than {MAX_DEPTH} levels accept any value below that depth"),
                place,
            );
            return Node::map();
        }
        let obj = match schema {
            Value::Bool(b) => return Node::Scalar(Value::Bool(*b)),
            Value::Object(o) => o,
            _ => {
                report.note(
                    "invalid_schema",
                    "a schema that is not an object accepts any value",
                    place,
                );
                return Node::map();
            }
        };
        if let Some(r) = obj.get("$ref") {
            return self.reference(obj, r, place, report, depth);
        }
        let mut out: Vec<Entry> = Vec::new();
        let v30 = self.spec.version == Version::V30;
        let nullable = v30 && obj.get("nullable") == Some(&Value::Bool(true));
        for (k, v) in obj {
            let node = match k.as_str() {
                "nullable" if v30 => continue,
                "type" if !(v.is_string() || v.is_array()) => {
                    report.note(
                        "invalid_schema",
                        format!("`type: {v}` is not a JSON Schema type; the keyword is left out"),
                        place,
                    );
                    continue;
                }
                "exclusiveMinimum" | "exclusiveMaximum" if v.is_boolean() => continue,
                "minimum" | "maximum" if v30 => {
                    let excl = if k == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    };
                    if obj.get(excl) == Some(&Value::Bool(true)) {
                        out.push(entry(excl, Node::Scalar(v.clone())));
                        continue;
                    }
                    Node::Scalar(v.clone())
                }
                "example" => {
                    if obj.contains_key("examples") {
                        continue;
                    }
                    out.push(entry("examples", Node::Seq(vec![Node::from_json(v)])));
                    continue;
                }
                "properties" | "patternProperties" | "dependentSchemas" => match v {
                    Value::Object(props) => Node::Map(
                        props
                            .iter()
                            .map(|(pk, pv)| {
                                entry(pk, self.convert_at(pv, place, report, depth + 1))
                            })
                            .collect(),
                    ),
                    _ => Node::from_json(v),
                },
                "items"
                | "additionalProperties"
                | "not"
                | "contains"
                | "propertyNames"
                | "if"
                | "then"
                | "else"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "additionalItems" => match v {
                    Value::Object(_) => self.convert_at(v, place, report, depth + 1),
                    Value::Array(items) if k == "items" => {
                        // 2019 tuple form: the first item schema covers the rest approximately.
                        report.note(
                            "tuple_items",
                            "`items` as a list (tuple validation) is written as `prefixItems`",
                            place,
                        );
                        out.push(entry(
                            "prefixItems",
                            Node::Seq(
                                items
                                    .iter()
                                    .map(|i| self.convert_at(i, place, report, depth + 1))
                                    .collect(),
                            ),
                        ));
                        continue;
                    }
                    _ => Node::from_json(v),
                },
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => match v {
                    Value::Array(items) => Node::Seq(
                        items
                            .iter()
                            .map(|i| self.convert_at(i, place, report, depth + 1))
                            .collect(),
                    ),
                    _ => Node::from_json(v),
                },
                "$defs" | "definitions" => {
                    report.note(
                        "schema_defs",
                        "`$defs` inside a schema are not kept; references into them are resolved where used",
                        place,
                    );
                    continue;
                }
                key if key.starts_with("x-") => {
                    report.note(
                        "extension",
                        format!("schema extension `{key}` is not kept"),
                        place,
                    );
                    continue;
                }
                key => {
                    if let Some((_, why)) = DROPPED.iter().find(|(d, _)| *d == key) {
                        report.note("schema_keyword", *why, place);
                        continue;
                    }
                    Node::from_json(v)
                }
            };
            out.push(entry(k, node));
        }
        if nullable {
            make_nullable(&mut out);
        }
        Node::Map(out)
    }

    fn reference(
        &mut self,
        obj: &'a Map<String, Value>,
        r: &'a Value,
        place: &str,
        report: &mut Report,
        depth: usize,
    ) -> Node {
        let Some(r) = r.as_str() else {
            report.note(
                "invalid_schema",
                "a `$ref` that is not a string accepts any value",
                place,
            );
            return Node::map();
        };
        if self.spec.version == Version::V31
            && obj
                .keys()
                .any(|k| k != "$ref" && k != "description" && k != "summary")
        {
            report.note(
                "ref_siblings",
                "keywords next to a `$ref` are not merged into the referenced schema",
                place,
            );
        }
        if !r.starts_with('#') {
            report.note(
                "external_ref",
                format!("reference to another document (`{r}`) is not followed; the place accepts any value"),
                place,
            );
            return Node::map();
        }
        if self.stack.iter().any(|s| s == r) {
            self.cuts += 1;
            let name = r.rsplit('/').next().unwrap_or(r);
            report.note(
                "recursive_schema",
                "a schema that contains itself is expanded once; the inner occurrence accepts any value of that shape (described, not checked)",
                format!("{place} ({name})"),
            );
            let mut m = Node::map();
            m.push(
                "description",
                Node::str(format!(
                    "Recursive: the same shape as {name} (not expanded)."
                )),
            );
            return m;
        }
        if let Some(done) = self.cache.get(r).cloned() {
            let anchor = self.anchor_for(r);
            return Node::Shared(anchor, done);
        }
        let Some(target) = self.spec.pointer(r) else {
            report.note(
                "unresolved_ref",
                format!("`{r}` points at nothing in the spec; the place accepts any value"),
                place,
            );
            return Node::map();
        };
        self.stack.push(r.to_string());
        let before = self.cuts;
        let node = self.convert_at(target, place, report, depth + 1);
        self.stack.pop();
        if self.cuts != before || matches!(node, Node::Shared(..)) {
            return node;
        }
        let rc = Rc::new(node);
        self.cache.insert(r.to_string(), rc.clone());
        Node::Shared(self.anchor_for(r), rc)
    }
}

fn entry(k: &str, value: Node) -> Entry {
    Entry {
        key: k.to_string(),
        value,
        comment: None,
    }
}

/// OpenAPI 3.0 `nullable: true`: `null` joins the type (and the enum, when there is one).
fn make_nullable(out: &mut [Entry]) {
    let null = Value::String("null".into());
    for e in out.iter_mut() {
        match (e.key.as_str(), &mut e.value) {
            ("type", Node::Scalar(Value::String(t))) if t != "null" => {
                let t = Value::String(t.clone());
                e.value = Node::Seq(vec![Node::Scalar(t), Node::Scalar(null.clone())]);
            }
            ("type", Node::Seq(items))
                if !items
                    .iter()
                    .any(|i| matches!(i, Node::Scalar(v) if *v == null)) =>
            {
                items.push(Node::Scalar(null.clone()));
            }
            ("enum", Node::Seq(items))
                if !items.iter().any(|i| matches!(i, Node::Scalar(Value::Null))) =>
            {
                items.push(Node::Scalar(Value::Null));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::openapi::parse;
    use serde_json::json;

    fn spec(components: Value, version: &str) -> Spec {
        parse(
            &json!({"openapi": version, "paths": {}, "components": {"schemas": components}})
                .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn openapi_30_keywords_become_2020_12() {
        let s = spec(json!({}), "3.0.3");
        let schema = json!({"type": "integer", "nullable": true, "minimum": 0, "exclusiveMinimum": true, "example": 3, "xml": {"name": "n"}, "x-go": 1});
        let leaked: &'static Value = Box::leak(Box::new(schema));
        let mut r = Report::default();
        let out = Schemas::new(&s).convert(leaked, "p", &mut r).to_json();
        assert_eq!(
            out,
            json!({"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3]})
        );
        assert!(r.has("schema_keyword") && r.has("extension"));
    }

    #[test]
    fn shared_schemas_are_shared_and_cycles_cut() {
        let s = spec(
            json!({
                "Tag": {"type": "string"},
                "Node": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}
            }),
            "3.1.0",
        );
        let leaked: &'static Value =
            Box::leak(Box::new(json!({"$ref": "#/components/schemas/Node"})));
        let mut r = Report::default();
        let mut sch = Schemas::new(&s);
        let node = sch.convert(leaked, "p", &mut r);
        assert!(
            !matches!(node, Node::Shared(..)),
            "a cut schema is not shared"
        );
        let v = node.to_json();
        assert_eq!(v["properties"]["tag"], json!({"type": "string"}));
        assert!(
            v["properties"]["children"]["items"]["description"]
                .as_str()
                .unwrap()
                .contains("Node")
        );
        assert!(r.has("recursive_schema"));
        let tag: &'static Value = Box::leak(Box::new(json!({"$ref": "#/components/schemas/Tag"})));
        assert!(matches!(sch.convert(tag, "q", &mut r), Node::Shared(ref n, _) if &**n == "Tag"));
    }
}
