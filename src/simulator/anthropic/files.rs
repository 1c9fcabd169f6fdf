//! Files: multipart upload, list (newest first), metadata, delete, and download only for files
//! the service marks downloadable (outputs of code execution); uploads never are.
//!
//! Three files are seeded: `file_011CNha8iCJcU1wXNR6q4V8w` (the API reference's uploaded PDF)
//! and `file_011example` (another uploaded PDF), which cannot be downloaded, and
//! `file_011downloadable` (a CSV a code-execution run produced). List pages carry both page
//! shapes the SDKs parse: the id cursor (`first_id` / `last_id` / `has_more`) and the opaque
//! cursor (`next_page`, accepted back as `page`).

use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::{pagination, store};
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::{self, Reply};

#[derive(Debug, Clone)]
pub struct StoredFile {
    id: String,
    filename: String,
    mime_type: String,
    created_at: String,
    downloadable: bool,
    expires_at: Option<String>,
    bytes: Vec<u8>,
}

impl StoredFile {
    fn json(&self) -> Value {
        let mut v = json!({
            "type": "file",
            "id": self.id,
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.bytes.len(),
            "created_at": self.created_at,
            "downloadable": self.downloadable,
        });
        if let Some(e) = &self.expires_at {
            v["expires_at"] = json!(e);
        }
        v
    }
}

#[derive(Debug, Default)]
pub struct Files {
    /// Oldest first; lists reverse it.
    by_id: IndexMap<String, StoredFile>,
}

impl Files {
    pub fn seeded() -> Self {
        let mut files = Files::default();
        let pdf = b"%PDF-1.4\n% kosmo simulator sample document\n%%EOF\n".to_vec();
        files.insert(StoredFile {
            id: "file_011CNha8iCJcU1wXNR6q4V8w".into(),
            filename: "document.pdf".into(),
            mime_type: "application/pdf".into(),
            created_at: "2025-04-15T18:37:24.100435Z".into(),
            downloadable: false,
            expires_at: None,
            bytes: pdf.clone(),
        });
        files.insert(StoredFile {
            id: "file_011example".into(),
            filename: "document.pdf".into(),
            mime_type: "application/pdf".into(),
            created_at: "2025-04-15T18:37:24.100435Z".into(),
            downloadable: false,
            expires_at: None,
            bytes: pdf,
        });
        files.insert(StoredFile {
            id: "file_011downloadable".into(),
            filename: "chart_data.csv".into(),
            mime_type: "text/csv".into(),
            created_at: "2025-04-16T09:12:03.512000Z".into(),
            downloadable: true,
            expires_at: None,
            bytes: b"month,requests\n2025-01,120\n2025-02,180\n2025-03,240\n".to_vec(),
        });
        files
    }

    fn insert(&mut self, f: StoredFile) {
        self.by_id.insert(f.id.clone(), f);
    }
}

fn missing(id: &str) -> Reply {
    Reply::not_found(format!("File not found: {id}"))
}

pub fn upload(sim: &Sim, call: &Call) -> Reply {
    let Some(up) = &call.upload else {
        return Reply::invalid("file: Field required");
    };
    let mime_type = up
        .content_type
        .clone()
        .filter(|c| !c.is_empty() && c != "application/octet-stream")
        .unwrap_or_else(|| {
            mime_guess::from_path(&up.filename)
                .first_or_octet_stream()
                .essence_str()
                .to_string()
        });
    let now = SystemTime::now();
    let expires_at = call
        .int_arg("expires_in_seconds")
        .map(|s| wire::rfc3339(now + wire::secs(s.max(0) as u64)));
    let file = StoredFile {
        id: wire::ordered_id("file_"),
        filename: up.filename.clone(),
        mime_type,
        created_at: wire::rfc3339(now),
        downloadable: false,
        expires_at,
        bytes: up.bytes.clone(),
    };
    let body = file.json();
    store(sim).files.insert(file);
    Reply::json(body)
}

pub fn list(sim: &Sim, call: &Call) -> Reply {
    let ids = super::admin::filter_values(call, &["ids"]);
    let all: Vec<Value> = store(sim)
        .files
        .by_id
        .values()
        .rev()
        .filter(|f| ids.is_empty() || ids.contains(&f.id))
        .map(StoredFile::json)
        .collect();
    match pagination::page(&all, call, "id") {
        Ok(mut page) => {
            let next = if page["has_more"] == json!(true) {
                page["last_id"].clone()
            } else {
                Value::Null
            };
            page["next_page"] = next;
            Reply::json(page)
        }
        Err(e) => e,
    }
}

pub fn get(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).files.by_id.get(id) {
        Some(f) => Reply::json(f.json()),
        None => missing(id),
    }
}

pub fn delete(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).files.by_id.shift_remove(id) {
        Some(_) => Reply::json(json!({"id": id, "type": "file_deleted"})),
        None => missing(id),
    }
}

pub fn download(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let store = store(sim);
    let Some(f) = store.files.by_id.get(id) else {
        return missing(id);
    };
    if !f.downloadable {
        return Reply::invalid(format!(
            "File {id} is not downloadable. Only files created by skills or the code execution tool can be downloaded."
        ));
    }
    Reply::Raw {
        status: 200,
        content_type: f.mime_type.clone(),
        body: f.bytes.clone(),
    }
}
