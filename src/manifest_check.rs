//! Manifest diagnostics: every problem of a manifest file, each with its file, line, column,
//! JSON pointer, message and rule, so `kosmo manifests:check` can list them all at once.
//!
//! The YAML is read twice: once into a JSON value (the document the schema and serde see) and
//! once as a stream of parser events, which gives every node's position. The second pass builds
//! a pointer → (line, column) index (so a schema or lint problem found at `/functions/x/class`
//! can say where that is in the file) and finds duplicate keys, which a JSON value cannot hold.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};
use serde::Serialize;
use serde_json::Value;

use crate::error::closest;

/// Stable rule ids, shown in `--json` output (`rule`).
pub mod rule {
    /// The file is not YAML (or not UTF-8, or nested too deep).
    pub const YAML: &str = "yaml_syntax";
    /// A key appears twice in one mapping.
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    /// A key the manifest format does not know.
    pub const UNKNOWN_KEY: &str = "unknown_key";
    /// Any other JSON Schema rule (`manifests/manifest.schema.json`).
    pub const SCHEMA: &str = "schema";
    /// The document has the right shape for the schema but not for kosmo's types.
    pub const TYPE: &str = "type";
    /// A semantic rule of the lint pass (`Manifest::lint`).
    pub const LINT: &str = "lint";
    /// A function's input schema does not compile.
    pub const INPUT_SCHEMA: &str = "input_schema";
    /// Two manifests declare one integration name.
    pub const DUPLICATE_NAME: &str = "duplicate_name";
    /// The file cannot be read.
    pub const IO: &str = "io";
    /// `manifests:test` could not run a manifest's examples (the simulator did not start).
    pub const SIMULATOR: &str = "simulator";
}

/// One problem of one manifest file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based; `None` when the problem has no place in the file (an unreadable file).
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    /// RFC 6901 JSON pointer of the node concerned; `""` is the whole document.
    pub pointer: String,
    pub message: String,
    pub rule: &'static str,
}

impl Problem {
    pub fn new(file: &str, pointer: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            file: file.into(),
            line: None,
            column: None,
            pointer: pointer.into(),
            message: message.into(),
            rule: rule::LINT,
        }
    }

    pub fn rule(mut self, rule: &'static str) -> Problem {
        self.rule = rule;
        self
    }

    pub fn at(mut self, pos: Option<Pos>) -> Problem {
        if let Some(p) = pos {
            self.line = Some(p.line);
            self.column = Some(p.column);
        }
        self
    }

    /// Where the problem is, as the text output shows it: `line 3 column 5: /functions/x`.
    pub fn location(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(l), Some(c)) = (self.line, self.column) {
            parts.push(format!("line {l} column {c}"));
        }
        if self.rule != rule::YAML {
            parts.push(crate::manifest::display_pointer(&self.pointer));
        }
        parts.join(": ")
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location();
        if loc.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {loc}: {}", self.file, self.message)
        }
    }
}

/// The problems of one file as one [`crate::Error::Manifest`]: the first names the location,
/// every further one follows on its own line, fully located.
pub fn into_error(file: &str, problems: &[Problem]) -> crate::Error {
    let Some(first) = problems.first() else {
        return crate::Error::Manifest {
            file: file.into(),
            location: "document".into(),
            message: "the manifest was refused".into(),
        };
    };
    let mut message = first.message.clone();
    for p in &problems[1..] {
        message.push('\n');
        message.push_str(&p.to_string());
    }
    crate::Error::Manifest {
        file: file.into(),
        location: match first.location() {
            l if l.is_empty() => "document".into(),
            l => l,
        },
        message,
    }
}

/// A position in a file, both parts 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Where the key naming this node is written (mapping entries only).
    key: Option<Pos>,
    /// Where the value starts.
    value: Pos,
    container: bool,
}

/// Every node's position by JSON pointer, and the duplicate keys found on the way.
#[derive(Debug, Default)]
pub struct PositionIndex {
    nodes: HashMap<String, Node>,
    /// (pointer of the repeated entry, key, where it is repeated, where it was first).
    pub duplicates: Vec<(String, String, Pos, Pos)>,
}

enum Frame {
    Map {
        ptr: String,
        /// The key read, waiting for its value: (text, position); `None` text for a key that
        /// is not a scalar.
        pending: Option<(Option<String>, Pos)>,
        seen: HashMap<String, Pos>,
    },
    Seq {
        ptr: String,
        next: usize,
    },
}

/// RFC 6901 escaping of one pointer segment.
pub fn escape_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl PositionIndex {
    /// Index the first document of `text`. A syntax error ends the index where it is (the JSON
    /// parse reports the error itself); what was read before it stays usable.
    pub fn build(text: &str) -> PositionIndex {
        let mut index = PositionIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        // Depth inside a complex (non-scalar) mapping key, which has no pointer.
        let mut skip = 0usize;
        let mut documents = 0usize;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = Pos::of(&span);
            if skip > 0 {
                match event {
                    Event::MappingStart(..) | Event::SequenceStart(..) => skip += 1,
                    Event::MappingEnd | Event::SequenceEnd => skip -= 1,
                    _ => {}
                }
                continue;
            }
            let opens = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        break;
                    }
                }
                Event::DocumentEnd | Event::StreamEnd => {}
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..) => {
                    // A key of a mapping?
                    if let Some(Frame::Map { ptr, pending, seen }) = stack.last_mut()
                        && pending.is_none()
                    {
                        let text = match &event {
                            Event::Scalar(v, ..) => Some(v.to_string()),
                            _ => None,
                        };
                        if let Some(k) = &text {
                            if let Some(first) = seen.get(k) {
                                index.duplicates.push((
                                    format!("{ptr}/{}", escape_segment(k)),
                                    k.clone(),
                                    pos,
                                    *first,
                                ));
                            } else {
                                seen.insert(k.clone(), pos);
                            }
                        }
                        *pending = Some((text, pos));
                        if opens {
                            skip = 1;
                        }
                        continue;
                    }
                    // A value: where does it live?
                    let (ptr, key) = match stack.last_mut() {
                        None => (String::new(), None),
                        Some(Frame::Seq { ptr, next }) => {
                            let p = format!("{ptr}/{next}");
                            *next += 1;
                            (p, None)
                        }
                        Some(Frame::Map { ptr, pending, .. }) => match pending.take() {
                            Some((Some(k), kpos)) => {
                                (format!("{ptr}/{}", escape_segment(&k)), Some(kpos))
                            }
                            // The value of a complex key: no pointer reaches it.
                            _ => {
                                if opens {
                                    skip = 1;
                                }
                                continue;
                            }
                        },
                    };
                    index.nodes.entry(ptr.clone()).or_insert(Node {
                        key,
                        value: pos,
                        container: opens,
                    });
                    match event {
                        Event::MappingStart(..) => stack.push(Frame::Map {
                            ptr,
                            pending: None,
                            seen: HashMap::new(),
                        }),
                        Event::SequenceStart(..) => stack.push(Frame::Seq { ptr, next: 0 }),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        index
    }

    /// Where the node at `pointer` is written: a scalar's value, a mapping or sequence's key
    /// (or its start when it has none). An unknown pointer falls back to its nearest ancestor.
    pub fn position(&self, pointer: &str) -> Option<Pos> {
        let mut p = pointer;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return Some(match (n.container, n.key) {
                    (true, Some(k)) => k,
                    _ => n.value,
                });
            }
            if p.is_empty() {
                return None;
            }
            p = match p.rfind('/') {
                Some(i) => &p[..i],
                None => "",
            };
        }
    }

    /// Where the key naming the node at `pointer` is written (falls back to [`Self::position`]).
    pub fn key_position(&self, pointer: &str) -> Option<Pos> {
        match self.nodes.get(pointer).and_then(|n| n.key) {
            Some(k) => Some(k),
            None => self.position(pointer),
        }
    }

    /// The pointer of the last node that starts at or before `pos` (for errors that only know
    /// a position).
    pub fn pointer_at(&self, pos: Pos) -> Option<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.key.unwrap_or(n.value) <= pos)
            .max_by(|(pa, a), (pb, b)| {
                (a.key.unwrap_or(a.value), pa.len()).cmp(&(b.key.unwrap_or(b.value), pb.len()))
            })
            .map(|(p, _)| p.clone())
    }
}

/// Remove the member a pointer names from its object (nothing when it names no member).
pub fn remove_pointer(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
        m.remove(&key);
    }
}

/// Did-you-mean text for a name among candidates: "; did you mean `x`?" or "".
pub fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let found = closest(wanted, candidates);
    match found.as_slice() {
        [] => String::new(),
        [one] => format!(": did you mean `{one}`?"),
        many => format!(
            ": did you mean one of {}?",
            many.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The problems of a schema validation, located and explained. `schema` is the manifest JSON
/// Schema (to list the keys allowed where an unknown one was found).
pub fn schema_problems(
    file: &str,
    schema: &Value,
    validator: &jsonschema::Validator,
    raw: &Value,
    index: &PositionIndex,
) -> Vec<Problem> {
    use jsonschema::error::ValidationErrorKind as K;
    let mut out = Vec::new();
    for e in validator.iter_errors(raw) {
        let ptr = e.instance_path().to_string();
        let keyword_at = e.schema_path().to_string();
        // The schema object that holds the failing keyword.
        let holder = keyword_at
            .rfind('/')
            .and_then(|i| schema.pointer(&keyword_at[..i]));
        match e.kind() {
            K::AdditionalProperties { unexpected } => {
                let allowed: Vec<&str> = holder
                    .and_then(|h| h.get("properties"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for key in unexpected {
                    let at = format!("{ptr}/{}", escape_segment(key));
                    let hint = did_you_mean(key, allowed.iter().copied());
                    let message = if hint.is_empty() && !allowed.is_empty() {
                        format!("unknown key `{key}` (allowed here: {})", allowed.join(", "))
                    } else {
                        format!("unknown key `{key}`{hint}")
                    };
                    out.push(
                        Problem::new(file, at.clone(), message)
                            .rule(rule::UNKNOWN_KEY)
                            .at(index.key_position(&at)),
                    );
                }
            }
            K::Enum { options } => {
                let hint = match (e.instance().as_ref(), options.as_ref()) {
                    (Value::String(s), Value::Array(opts)) => {
                        did_you_mean(s, opts.iter().filter_map(Value::as_str))
                    }
                    _ => String::new(),
                };
                out.push(
                    Problem::new(file, ptr.clone(), format!("{e}{hint}"))
                        .rule(rule::SCHEMA)
                        .at(index.position(&ptr)),
                );
            }
            K::OneOfNotValid { context } | K::AnyOf { context } => {
                // `type: strng` fails every branch; the enum branches know the right words.
                let mut words: Vec<&str> = Vec::new();
                for branch in context {
                    for inner in branch {
                        if let K::Enum { options } = inner.kind()
                            && let Value::Array(opts) = options.as_ref()
                        {
                            words.extend(opts.iter().filter_map(Value::as_str));
                        }
                    }
                }
                let hint = match e.instance().as_ref() {
                    Value::String(s) => did_you_mean(s, words),
                    _ => String::new(),
                };
                out.push(
                    Problem::new(file, ptr.clone(), format!("{e}{hint}"))
                        .rule(rule::SCHEMA)
                        .at(index.position(&ptr)),
                );
            }
            _ => out.push(
                Problem::new(file, ptr.clone(), e.to_string())
                    .rule(rule::SCHEMA)
                    .at(index.position(&ptr)),
            ),
        }
    }
    out
}

/// Drop the problems that only repeat an earlier pass's: a lint or input-schema complaint about
/// a node the schema (or the YAML) already found wrong inside, and a function's input schema
/// failing to compile when one of its parameters already has a problem (or it was said once).
pub fn drop_cascades(problems: &mut Vec<Problem>) {
    let primary: Vec<String> = problems
        .iter()
        .filter(|p| !matches!(p.rule, rule::LINT | rule::INPUT_SCHEMA))
        .map(|p| p.pointer.clone())
        .collect();
    let within =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    // "/functions/<name>" of a pointer inside a function.
    let function_of = |p: &str| -> Option<String> {
        let mut parts = p.splitn(4, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(""), Some("functions"), Some(name)) => Some(format!("/functions/{name}")),
            _ => None,
        }
    };
    let compile_failure = |p: &Problem| {
        p.rule == rule::INPUT_SCHEMA
            || (p.rule == rule::LINT && p.message.starts_with("input schema does not compile"))
    };
    let mut keep = vec![true; problems.len()];
    for (i, p) in problems.iter().enumerate() {
        if !matches!(p.rule, rule::LINT | rule::INPUT_SCHEMA) {
            continue;
        }
        let depth = p.pointer.matches('/').count();
        if depth > 2 && primary.iter().any(|q| within(&p.pointer, q)) {
            keep[i] = false;
            continue;
        }
        if compile_failure(p)
            && let Some(f) = function_of(&p.pointer)
        {
            // The input schema is made of the parameters: a problem there explains it, and
            // so does the same failure said once already.
            let params = format!("{f}/params");
            let earlier_or_other = problems.iter().enumerate().any(|(j, q)| {
                j != i
                    && keep[j]
                    && if compile_failure(q) {
                        j < i && within(&f, &q.pointer)
                    } else {
                        within(&params, &q.pointer)
                    }
            });
            if earlier_or_other {
                keep[i] = false;
            }
        }
    }
    let mut it = keep.into_iter();
    problems.retain(|_| it.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\nfunctions:\n  f:\n    class: read\n    params:\n      - {name: id, in: path}\n      - name: q\n        in: query\n";

    #[test]
    fn positions_by_pointer() {
        let idx = PositionIndex::build(DOC);
        assert_eq!(idx.position("/name"), Some(Pos { line: 1, column: 7 }));
        assert_eq!(
            idx.position("/functions/f"),
            Some(Pos { line: 3, column: 3 })
        );
        assert_eq!(
            idx.position("/functions/f/class"),
            Some(Pos {
                line: 4,
                column: 12
            })
        );
        assert_eq!(
            idx.position("/functions/f/params/0/in"),
            Some(Pos {
                line: 6,
                column: 24
            })
        );
        assert_eq!(
            idx.position("/functions/f/params/1/in"),
            Some(Pos {
                line: 8,
                column: 13
            })
        );
        assert_eq!(
            idx.key_position("/functions/f/class"),
            Some(Pos { line: 4, column: 5 })
        );
        // Unknown pointers fall back to the nearest ancestor.
        assert_eq!(
            idx.position("/functions/f/nope/deeper"),
            Some(Pos { line: 3, column: 3 })
        );
        assert!(idx.duplicates.is_empty());
        assert_eq!(
            idx.pointer_at(Pos {
                line: 8,
                column: 14
            })
            .as_deref(),
            Some("/functions/f/params/1/in")
        );
    }

    #[test]
    fn duplicate_keys_are_found_with_both_places() {
        let idx = PositionIndex::build("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
        assert_eq!(
            idx.duplicates,
            vec![
                (
                    "/b/c".to_string(),
                    "c".to_string(),
                    Pos { line: 4, column: 3 },
                    Pos { line: 3, column: 3 }
                ),
                (
                    "/a".to_string(),
                    "a".to_string(),
                    Pos { line: 5, column: 1 },
                    Pos { line: 1, column: 1 }
                ),
            ]
        );
    }

    #[test]
    fn complex_keys_and_escapes_do_not_confuse_the_index() {
        let idx = PositionIndex::build("? [a, b]\n: {x: 1}\n\"a/b\": 2\nc~d: 3\n");
        assert_eq!(idx.position("/a~1b"), Some(Pos { line: 3, column: 8 }));
        assert_eq!(idx.position("/c~0d"), Some(Pos { line: 4, column: 6 }));
    }

    #[test]
    fn cascades_of_one_mistake_are_dropped_and_independent_problems_kept() {
        let p =
            |ptr: &str, msg: &str, rule: &'static str| Problem::new("x.yaml", ptr, msg).rule(rule);
        let mut problems = vec![
            p("/functions/f/params/0/type", "bad type", rule::SCHEMA),
            p(
                "/functions/f/params/0",
                "invalid JSON Schema for 'id'",
                rule::LINT,
            ),
            p(
                "/functions/f",
                "input schema does not compile: x",
                rule::LINT,
            ),
            p(
                "/functions/f",
                "input schema does not compile: y",
                rule::INPUT_SCHEMA,
            ),
            p(
                "/functions/f/class",
                "a GET function cannot be class 'write'",
                rule::LINT,
            ),
            p(
                "/functions/g",
                "input schema does not compile: z",
                rule::INPUT_SCHEMA,
            ),
            p(
                "/functions/g",
                "input schema does not compile: z again",
                rule::INPUT_SCHEMA,
            ),
        ];
        drop_cascades(&mut problems);
        let left: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            left,
            vec![
                "bad type",
                "a GET function cannot be class 'write'",
                "input schema does not compile: z"
            ]
        );
    }

    #[test]
    fn did_you_mean_names_the_closest() {
        assert_eq!(
            did_you_mean("pagnation", ["pagination", "params", "path"]),
            ": did you mean `pagination`?"
        );
        assert_eq!(did_you_mean("zzzzzz", ["pagination"]), "");
    }
}
