//! Reading an OpenAPI description (3.0 or 3.1, JSON or YAML) into a thin typed view over
//! `serde_json::Value`.
//!
//! Why not a typed OpenAPI crate: `openapiv3` reads 3.0 only and `oas3` reads 3.1 only, and the
//! two versions differ exactly where the import cares (`nullable` versus type lists, boolean
//! versus numeric `exclusiveMinimum`, `example` versus `examples`). A typed model also drops
//! what it does not know (extensions, keywords of the other version), and the import must
//! report every such feature rather than lose it. So the document stays a JSON value and this
//! module gives the few typed accessors the mapping needs; nothing here can panic on a
//! malformed document: a missing or mistyped field reads as absent, and what makes an import
//! impossible (not an object, no `paths`, a version that is not 3.x) is an `import_error`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The OpenAPI version family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V30,
    V31,
}

/// A parsed description.
#[derive(Debug)]
pub struct Spec {
    pub doc: Value,
    pub version: Version,
    pub version_text: String,
}

/// The HTTP methods an OpenAPI path item may hold, in the order the import lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation with its place.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    pub path: &'a str,
    pub method: &'a str,
    pub op: &'a Map<String, Value>,
    pub item: &'a Map<String, Value>,
}

impl Operation<'_> {
    /// `#/paths/~1pets/get`, for reports.
    pub fn pointer(&self) -> String {
        format!("#/paths/{}/{}", escape(self.path), self.method)
    }

    pub fn operation_id(&self) -> Option<&str> {
        self.op.get("operationId").and_then(Value::as_str)
    }

    /// `METHOD /path (operationId)`, for reports.
    pub fn label(&self) -> String {
        match self.operation_id() {
            Some(id) => id.to_string(),
            None => format!("{} {}", self.method.to_ascii_uppercase(), self.path),
        }
    }

    pub fn tags(&self) -> Vec<&str> {
        self.op
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.op.get(key).and_then(Value::as_str)
    }
}

/// JSON pointer escaping of one segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Read a description from text: JSON when it parses as JSON, else YAML.
pub fn parse(text: &str) -> Result<Spec> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let doc: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)
            .map_err(|e| import_error(format!("the spec is not valid JSON: {e}")))?
    } else {
        serde_yaml::from_str(trimmed)
            .map_err(|e| import_error(format!("the spec is neither JSON nor valid YAML: {e}")))?
    };
    let Some(obj) = doc.as_object() else {
        return Err(import_error(
            "the spec is not an object (expected `openapi`, `info`, `paths`)",
        ));
    };
    let version_text = match obj.get("openapi") {
        Some(Value::String(v)) => v.clone(),
        Some(_) => {
            return Err(import_error(
                "`openapi` must be a version string such as \"3.1.0\"",
            ));
        }
        None if obj.contains_key("swagger") => {
            return Err(import_error(
                "this is a Swagger 2.0 description; convert it to OpenAPI 3 first (for example with swagger2openapi)",
            ));
        }
        None => {
            return Err(import_error(
                "not an OpenAPI description: there is no `openapi` version field",
            ));
        }
    };
    let version = if version_text.starts_with("3.0") {
        Version::V30
    } else if version_text.starts_with("3.1") || version_text.starts_with("3.2") {
        Version::V31
    } else {
        return Err(import_error(format!(
            "OpenAPI {version_text} is not supported: the import reads 3.0 and 3.1"
        )));
    };
    match obj.get("paths") {
        Some(Value::Object(_)) => {}
        None if obj.contains_key("webhooks") => {
            return Err(import_error(
                "the spec has webhooks but no `paths`: there is nothing to call",
            ));
        }
        _ => {
            return Err(import_error(
                "the spec has no `paths` object: there is nothing to call",
            ));
        }
    }
    Ok(Spec {
        doc,
        version,
        version_text,
    })
}

pub fn import_error(message: impl Into<String>) -> Error {
    Error::Import {
        message: message.into(),
    }
}

impl Spec {
    pub fn root(&self) -> &Map<String, Value> {
        // `parse` checked it is an object.
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.doc
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    pub fn info(&self, key: &str) -> Option<&str> {
        self.root().get("info")?.get(key)?.as_str()
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> Vec<Operation<'_>> {
        let mut out = Vec::new();
        let Some(paths) = self.root().get("paths").and_then(Value::as_object) else {
            return out;
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for method in METHODS {
                if let Some(Value::Object(op)) = item.get(method) {
                    out.push(Operation {
                        path,
                        method,
                        op,
                        item,
                    });
                }
            }
        }
        out
    }

    /// A component section (`schemas`, `parameters`, `securitySchemes`, ...).
    pub fn components(&self, section: &str) -> Option<&Map<String, Value>> {
        self.root().get("components")?.get(section)?.as_object()
    }

    /// The value a local reference (`#/components/schemas/Pet`) points at.
    pub fn pointer(&self, reference: &str) -> Option<&Value> {
        let p = reference.strip_prefix('#')?;
        let p = percent_decode(p);
        self.doc.pointer(&p)
    }

    pub fn tag_description(&self, tag: &str) -> Option<&str> {
        self.root()
            .get("tags")?
            .as_array()?
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(tag))?
            .get("description")?
            .as_str()
    }
}

/// `%7B` in a reference fragment (allowed by RFC 3986) back to `{`.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_specs_are_errors_not_panics() {
        for text in [
            "",
            "[]",
            "null",
            "{",
            "openapi: [",
            "{\"openapi\": 3}",
            "{\"swagger\": \"2.0\"}",
            "{\"openapi\": \"2.9\", \"paths\": {}}",
            "{\"openapi\": \"3.0.0\"}",
            "{\"openapi\": \"3.0.0\", \"paths\": []}",
            "openapi: 3.1.0\npaths: 7\n",
        ] {
            let e = parse(text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(e.code(), "import_error", "{text:?}: {e}");
        }
    }

    #[test]
    fn json_and_yaml_read_alike() {
        let j = parse(r#"{"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/a": {"get": {"operationId": "a"}, "parameters": []}}}"#).unwrap();
        let y =
            parse("openapi: 3.0.3\ninfo: {title: T}\npaths:\n  /a:\n    get: {operationId: a}\n")
                .unwrap();
        assert_eq!(j.version, Version::V31);
        assert_eq!(y.version, Version::V30);
        assert_eq!(j.operations().len(), 1);
        assert_eq!(y.operations()[0].label(), "a");
        assert_eq!(j.operations()[0].pointer(), "#/paths/~1a/get");
    }
}
