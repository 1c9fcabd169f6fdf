//! Writing the imported manifest as YAML a person wants to read: block mappings, short lists
//! and small objects in flow style, multi-line text as literal blocks, comments where the
//! importer has something to say, and shared definitions written once as YAML anchors
//! (`&name`) and aliased (`*name`) afterwards.
//!
//! The writer is ours rather than a serializer's because serializers write neither comments
//! nor anchors. Every scalar it cannot prove plain is written as a JSON string, which YAML
//! reads back as the same text.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::rc::Rc;

use serde_json::Value;

/// A YAML node of the manifest being written.
#[derive(Debug, Clone)]
pub enum Node {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// A definition that may occur more than once: written `&name` the first time and `*name`
    /// afterwards when it occurs twice or more, inline otherwise.
    Shared(Rc<str>, Rc<Node>),
}

/// One key of a mapping, with an optional comment written above it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: Node,
    pub comment: Option<String>,
}

impl Node {
    pub fn str(s: impl Into<String>) -> Node {
        Node::Scalar(Value::String(s.into()))
    }

    pub fn map() -> Node {
        Node::Map(Vec::new())
    }

    /// Append `key: value` to a mapping (a no-op on anything else).
    pub fn push(&mut self, key: impl Into<String>, value: Node) {
        if let Node::Map(entries) = self {
            entries.push(Entry {
                key: key.into(),
                value,
                comment: None,
            });
        }
    }

    /// Append `key: value` with a comment line above it.
    pub fn push_commented(
        &mut self,
        key: impl Into<String>,
        value: Node,
        comment: impl Into<String>,
    ) {
        if let Node::Map(entries) = self {
            entries.push(Entry {
                key: key.into(),
                value,
                comment: Some(comment.into()),
            });
        }
    }

    /// A JSON value as a node (no anchors).
    pub fn from_json(v: &Value) -> Node {
        match v {
            Value::Array(items) => Node::Seq(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| Entry {
                        key: k.clone(),
                        value: Node::from_json(v),
                        comment: None,
                    })
                    .collect(),
            ),
            other => Node::Scalar(other.clone()),
        }
    }

    /// The node as JSON, aliases expanded (what a YAML loader reads back).
    pub fn to_json(&self) -> Value {
        match self {
            Node::Scalar(v) => v.clone(),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
            Node::Shared(_, n) => n.to_json(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            Node::Shared(_, n) => n.get(key),
            _ => None,
        }
    }

    pub fn is_empty_collection(&self) -> bool {
        match self {
            Node::Seq(s) => s.is_empty(),
            Node::Map(m) => m.is_empty(),
            Node::Shared(_, n) => n.is_empty_collection(),
            Node::Scalar(_) => false,
        }
    }
}

/// Write a document: `header` comment lines, then the root mapping.
pub fn write_document(header: &[String], root: &Node) -> String {
    let mut uses = HashMap::new();
    count_shared(root, &mut uses, &mut HashSet::new());
    let mut w = Writer {
        out: String::new(),
        uses,
        written: HashSet::new(),
    };
    for line in header {
        comment_lines(&mut w.out, "", line);
    }
    if !header.is_empty() {
        w.out.push('\n');
    }
    match root {
        Node::Map(entries) => w.entries(entries, 0, true),
        other => {
            w.value_after_key(other, 0);
        }
    }
    w.out
}

/// How often each shared definition occurs (its content is counted once).
fn count_shared(node: &Node, uses: &mut HashMap<Rc<str>, usize>, seen: &mut HashSet<Rc<str>>) {
    match node {
        Node::Scalar(_) => {}
        Node::Seq(items) => items.iter().for_each(|n| count_shared(n, uses, seen)),
        Node::Map(entries) => entries
            .iter()
            .for_each(|e| count_shared(&e.value, uses, seen)),
        Node::Shared(name, inner) => {
            *uses.entry(name.clone()).or_insert(0) += 1;
            if seen.insert(name.clone()) {
                count_shared(inner, uses, seen);
            }
        }
    }
}

fn comment_lines(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}#");
        } else {
            let _ = writeln!(out, "{indent}# {line}");
        }
    }
}

struct Writer {
    out: String,
    uses: HashMap<Rc<str>, usize>,
    written: HashSet<Rc<str>>,
}

/// Longest flow collection written on one line.
const FLOW_WIDTH: usize = 72;

impl Writer {
    fn entries(&mut self, entries: &[Entry], indent: usize, blank_between_top: bool) {
        let pad = " ".repeat(indent);
        for (i, e) in entries.iter().enumerate() {
            if blank_between_top
                && i > 0
                && matches!(
                    e.key.as_str(),
                    "credentials" | "groups" | "functions" | "docs"
                )
            {
                self.out.push('\n');
            }
            if let Some(c) = &e.comment {
                comment_lines(&mut self.out, &pad, c);
            }
            let _ = write!(self.out, "{pad}{}:", key_text(&e.key));
            self.value_after_key(&e.value, indent);
        }
    }

    /// The anchor to write before a shared node, or the alias that replaces it.
    fn shared_prefix(&mut self, name: &Rc<str>) -> Option<String> {
        if self.uses.get(name).copied().unwrap_or(0) < 2 {
            return Some(String::new());
        }
        if self.written.contains(name) {
            return None;
        }
        self.written.insert(name.clone());
        Some(format!("&{name}"))
    }

    /// A value after `key:` (or at the root), the mapping's keys at `indent`.
    fn value_after_key(&mut self, node: &Node, indent: usize) {
        let (anchor, node) = match node {
            Node::Shared(name, inner) => match self.shared_prefix(name) {
                None => {
                    let _ = writeln!(self.out, " *{name}");
                    return;
                }
                Some(a) => (a, inner.as_ref()),
            },
            other => (String::new(), other),
        };
        let sep = if anchor.is_empty() {
            String::new()
        } else {
            format!(" {anchor}")
        };
        match node {
            Node::Scalar(Value::String(s)) if is_block_text(s) => {
                let _ = writeln!(self.out, "{sep} {}", block_header(s));
                self.block_text(s, indent + 2);
            }
            Node::Scalar(v) => {
                let _ = writeln!(self.out, "{sep} {}", block_scalar_text(v));
            }
            Node::Shared(..) => {
                // A shared node directly inside a shared node: write it at the same place.
                self.out.push_str(&sep);
                self.value_after_key(node, indent);
            }
            _ => {
                if let Some(flow) = self.flow(node, FLOW_WIDTH.saturating_sub(indent)) {
                    let _ = writeln!(self.out, "{sep} {flow}");
                    return;
                }
                let _ = writeln!(self.out, "{sep}");
                match node {
                    Node::Map(entries) => self.entries(entries, indent + 2, false),
                    Node::Seq(items) => self.seq(items, indent + 2),
                    _ => {}
                }
            }
        }
    }

    fn seq(&mut self, items: &[Node], indent: usize) {
        let pad = " ".repeat(indent);
        for item in items {
            let (anchor, node) = match item {
                Node::Shared(name, inner) => match self.shared_prefix(name) {
                    None => {
                        let _ = writeln!(self.out, "{pad}- *{name}");
                        continue;
                    }
                    Some(a) => (a, inner.as_ref()),
                },
                other => (String::new(), other),
            };
            match node {
                Node::Scalar(Value::String(s)) if is_block_text(s) => {
                    let a = if anchor.is_empty() {
                        String::new()
                    } else {
                        format!("{anchor} ")
                    };
                    let _ = writeln!(self.out, "{pad}- {a}{}", block_header(s));
                    self.block_text(s, indent + 2);
                }
                Node::Scalar(v) => {
                    let a = if anchor.is_empty() {
                        String::new()
                    } else {
                        format!("{anchor} ")
                    };
                    let _ = writeln!(self.out, "{pad}- {a}{}", block_scalar_text(v));
                }
                _ => {
                    let a = if anchor.is_empty() {
                        String::new()
                    } else {
                        format!("{anchor} ")
                    };
                    if let Some(flow) = self.flow(node, FLOW_WIDTH.saturating_sub(indent + 2)) {
                        let _ = writeln!(self.out, "{pad}- {a}{flow}");
                        continue;
                    }
                    match node {
                        Node::Map(entries) if anchor.is_empty() && !entries.is_empty() => {
                            // `- key: value` with the following keys aligned under the first.
                            let mut first = String::new();
                            std::mem::swap(&mut first, &mut self.out);
                            self.entries(entries, indent + 2, false);
                            let body = std::mem::replace(&mut self.out, first);
                            let body = body.strip_prefix(&" ".repeat(indent + 2)).unwrap_or(&body);
                            let _ = write!(self.out, "{pad}- {body}");
                        }
                        Node::Map(entries) => {
                            let _ = writeln!(self.out, "{pad}- {}", a.trim_end());
                            self.entries(entries, indent + 2, false);
                        }
                        Node::Seq(inner) => {
                            let _ = writeln!(self.out, "{pad}- {}", a.trim_end());
                            self.seq(inner, indent + 2);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The node in flow style when it is small and holds no multi-line text, anchors or
    /// comments.
    fn flow(&mut self, node: &Node, width: usize) -> Option<String> {
        let text = match node {
            Node::Seq(items) if items.is_empty() => "[]".to_string(),
            Node::Map(entries) if entries.is_empty() => "{}".to_string(),
            Node::Seq(items) => {
                let parts: Option<Vec<String>> = items.iter().map(flow_scalar).collect();
                format!("[{}]", parts?.join(", "))
            }
            Node::Map(entries) => {
                if entries.iter().any(|e| e.comment.is_some()) {
                    return None;
                }
                let parts: Option<Vec<String>> = entries
                    .iter()
                    .map(|e| flow_scalar(&e.value).map(|v| format!("{}: {v}", key_text(&e.key))))
                    .collect();
                format!("{{{}}}", parts?.join(", "))
            }
            _ => return None,
        };
        (text.len() <= width.max(24)).then_some(text)
    }

    fn block_text(&mut self, s: &str, indent: usize) {
        let pad = " ".repeat(indent);
        let body = s.trim_end_matches('\n');
        for line in body.split('\n') {
            if line.is_empty() {
                self.out.push('\n');
            } else {
                let _ = writeln!(self.out, "{pad}{line}");
            }
        }
        // `|+` keeps every trailing line break: write the extra ones as empty lines.
        let trailing = s.len() - body.len();
        for _ in 1..trailing {
            self.out.push('\n');
        }
    }
}

fn flow_scalar(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(Value::String(s)) if s.contains('\n') => None,
        Node::Scalar(v) => Some(scalar_text(v)),
        Node::Seq(items) if items.is_empty() => Some("[]".into()),
        Node::Map(entries) if entries.is_empty() => Some("{}".into()),
        _ => None,
    }
}

/// Whether a string is written as a literal block (`|`): several lines, nothing a block cannot
/// carry exactly.
fn is_block_text(s: &str) -> bool {
    let body = s.trim_end_matches('\n');
    if !body.contains('\n') {
        return false;
    }
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    !first.starts_with([' ', '\t'])
        && !body.starts_with('\n')
        && body.chars().all(|c| {
            c == '\n'
                || (!c.is_control()
                    && c != '\u{feff}'
                    && c != '\u{2028}'
                    && c != '\u{2029}'
                    && c != '\u{85}')
        })
        && body.lines().all(|l| !l.ends_with([' ', '\t']))
        && body.lines().all(|l| l.is_empty() || !l.trim().is_empty())
}

fn block_header(s: &str) -> &'static str {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    }
}

/// A mapping key: plain when safe, else a JSON string.
fn key_text(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        json_string(k)
    }
}

/// A scalar in block context: flow indicators (`{`, `,`) may appear after the first character.
fn block_scalar_text(v: &Value) -> String {
    match v {
        Value::String(s)
            if plain_ok(&s.replace([',', '[', ']', '{', '}'], "x"))
                && !s.starts_with(['[', '{']) =>
        {
            s.clone()
        }
        other => scalar_text(other),
    }
}

/// A scalar: plain when YAML reads it back as the same string, else a JSON string.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => json_string(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Whether `s` can be written as a plain scalar, in block and flow context alike, and be read
/// back as this string (not a number, boolean, null, date, alias, comment, ...).
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.len() > 200 || s != s.trim() {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`.+~<=".contains(first) || first.is_ascii_digit() {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars().any(|c| {
        c.is_control()
            || ",[]{}".contains(c)
            || c == '\u{feff}'
            || !(c.is_ascii() || c.is_alphanumeric())
    }) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Value) -> Value {
        let text = write_document(&[], &Node::from_json(v));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn awkward_scalars_read_back_unchanged() {
        let v = json!({
            "a": "yes", "b": "1.0", "c": "-x", "d": "a: b", "e": "x #y", "f": "", "g": " lead",
            "h": "line1\nline2\n", "i": "two\n\n", "j": "no newline\nat end", "k": "tab\there",
            "l": "  indented\nblock", "m": "null", "n": "2024-01-01", "o": "*alias", "p": "é ü",
            "q": "[x]", "r": {"nested": ["a,b", "c", 1, true, null, 2.5]},
            "s": "trailing space \nline", "t": "\u{2028}", "u": "<<", "v": "0x1F", "w": "~",
            "keys with spaces": 1, "1": "numeric key", "y": [], "z": {},
            "long": "word ".repeat(40), "path": "/repos/{owner}/{repo}", "list": "a, b, [c]", "fl": ["/x/{y}", "{z}"], "deep": [[1, 2], {"a": [1]}], "ml": ["one\ntwo", "x"]
        });
        assert_eq!(roundtrip(&v), v);
    }

    #[test]
    fn shared_nodes_are_anchored_once_and_aliased() {
        let shared = Rc::new(Node::from_json(
            &json!({"type": "string", "minLength": 1, "description": "the owner of the repository, a login"}),
        ));
        let mut root = Node::map();
        let mut list = Vec::new();
        for _ in 0..3 {
            list.push(Node::Shared("owner".into(), shared.clone()));
        }
        root.push("params", Node::Seq(list));
        root.push(
            "single",
            Node::Shared("once".into(), Rc::new(Node::str("x"))),
        );
        let text = write_document(&["header".into()], &root);
        assert!(text.starts_with("# header\n"), "{text}");
        assert_eq!(text.matches("&owner").count(), 1, "{text}");
        assert_eq!(text.matches("*owner").count(), 2, "{text}");
        assert!(!text.contains("&once"), "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back["params"][2]["minLength"], json!(1));
        assert_eq!(back, root.to_json());
    }

    #[test]
    fn comments_are_written_above_their_key() {
        let mut root = Node::map();
        root.push_commented(
            "pagination_guess",
            Node::str("x"),
            "not recognised:\nsee docs",
        );
        let text = write_document(&[], &root);
        assert_eq!(text, "# not recognised:\n# see docs\npagination_guess: x\n");
    }
}
