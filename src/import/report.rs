//! What an import could not map: every feature of the spec the manifest format cannot express,
//! collected by kind so a 1,000-operation spec gives a readable list rather than 10,000 lines.

use indexmap::IndexMap;
use serde_json::{Value, json};

/// At most this many places are listed per note (the count is always complete).
const MAX_PLACES: usize = 20;

/// One kind of unmapped feature, with where it occurs.
#[derive(Debug, Clone)]
pub struct Note {
    /// Stable machine code (`cookie_parameter`, `oauth2_as_bearer`, ...).
    pub code: &'static str,
    /// What was not mapped and what the manifest does instead.
    pub message: String,
    /// Where (operation ids, JSON pointers into the spec), first [`MAX_PLACES`].
    pub places: Vec<String>,
    /// How many places in all.
    pub count: usize,
}

/// Every note of one import, in the order they were first met.
#[derive(Debug, Clone, Default)]
pub struct Report {
    notes: IndexMap<(&'static str, String), Note>,
}

impl Report {
    /// Record `code` / `message` at `place` (notes with the same code and message merge).
    pub fn note(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        place: impl Into<String>,
    ) {
        let message = message.into();
        let place = place.into();
        let note = self
            .notes
            .entry((code, message.clone()))
            .or_insert_with(|| Note {
                code,
                message,
                places: Vec::new(),
                count: 0,
            });
        note.count += 1;
        if note.places.len() < MAX_PLACES && !place.is_empty() && !note.places.contains(&place) {
            note.places.push(place);
        }
    }

    pub fn notes(&self) -> impl Iterator<Item = &Note> {
        self.notes.values()
    }

    pub fn len(&self) -> usize {
        self.notes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.notes.is_empty()
    }

    /// Whether a note with this code was recorded.
    pub fn has(&self, code: &str) -> bool {
        self.notes.keys().any(|(c, _)| *c == code)
    }

    /// One line per note: `note: CODE: MESSAGE (at A, B and 3 more)`.
    pub fn lines(&self) -> Vec<String> {
        self.notes
            .values()
            .map(|n| {
                let mut line = format!("note: {}: {}", n.code, n.message);
                if !n.places.is_empty() {
                    line.push_str(&format!(" (at {}", n.places.join(", ")));
                    if n.count > n.places.len() {
                        line.push_str(&format!(" and {} more", n.count - n.places.len()));
                    }
                    line.push(')');
                }
                line
            })
            .collect()
    }

    /// `[{code, message, count, places}]` for `--json`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.notes
                .values()
                .map(|n| {
                    json!({"code": n.code, "message": n.message, "count": n.count, "places": n.places})
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_merge_by_code_and_message_and_cap_places() {
        let mut r = Report::default();
        for i in 0..30 {
            r.note(
                "cookie_parameter",
                "cookie parameters are not sent",
                format!("op{i}"),
            );
        }
        r.note("xml", "xml ignored", "");
        assert_eq!(r.len(), 2);
        let first = r.notes().next().unwrap();
        assert_eq!(first.count, 30);
        assert_eq!(first.places.len(), MAX_PLACES);
        assert!(r.lines()[0].ends_with("and 10 more)"), "{}", r.lines()[0]);
        assert_eq!(r.lines()[1], "note: xml: xml ignored");
        assert!(r.has("xml"));
    }
}
