//! A dry run: the exact request, secrets redacted, not sent.

use serde_json::{Map, Value, json};

use super::request::{Body, FileSource, FormPart, Prepared};
use crate::manifest::CredentialKind;

/// `{dry_run: true, method, url, query, headers, body}`. The credential header shows
/// `[redacted]` (or `[not configured]`); file parts show their name, type and source.
pub fn render(p: &Prepared) -> Value {
    let mut query = Map::new();
    for (k, v) in &p.query {
        match query.get_mut(k) {
            Some(Value::Array(list)) => list.push(json!(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = json!([first, v]);
            }
            None => {
                query.insert(k.clone(), json!(v));
            }
        }
    }
    let mut headers = Map::new();
    for (k, v) in &p.headers {
        headers.insert(k.clone(), json!(v));
    }
    if let Some(a) = &p.auth {
        let shown = if a.secret.is_some() {
            "[redacted]"
        } else {
            "[not configured]"
        };
        match (a.kind, &a.query_param) {
            (CredentialKind::Query, Some(param)) => {
                query.insert(param.clone(), json!(shown));
            }
            _ => {
                headers.insert(a.header.clone(), json!(shown));
            }
        }
    }
    let body = match &p.body {
        Body::None => Value::Null,
        Body::Json(v) => v.clone(),
        Body::Form(pairs) => {
            let fields: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
            json!({"form": fields})
        }
        Body::Raw {
            content_type,
            bytes,
        } => match std::str::from_utf8(bytes) {
            Ok(text) => json!({"raw": text, "content_type": content_type}),
            Err(_) => {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                json!({"raw_base64": b64, "content_type": content_type})
            }
        },
        Body::Multipart(parts) => {
            let parts: Vec<Value> = parts
                .iter()
                .map(|part| match part {
                    FormPart::Text { name, value } => json!({"name": name, "value": value}),
                    FormPart::File {
                        name,
                        filename,
                        content_type,
                        source,
                    } => {
                        let mut v = json!({"name": name, "filename": filename, "content_type": content_type});
                        match source {
                            FileSource::Path(path) => v["path"] = json!(path.display().to_string()),
                            FileSource::Bytes(b) => v["size_bytes"] = json!(b.len()),
                        }
                        v
                    }
                })
                .collect();
            json!({"multipart": parts})
        }
    };
    json!({
        "dry_run": true,
        "method": p.method.as_str(),
        "url": p.display_url(),
        "query": query,
        "headers": headers,
        "body": body,
    })
}
