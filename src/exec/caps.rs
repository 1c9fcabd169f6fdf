//! Size caps on what a server sends: every buffered body, error body, stream, line, page walk and
//! download stops at its cap with a structured `response_too_large` error instead of growing
//! memory (or the disk) without bound.
//!
//! The caps are transport settings (`config.yaml`, `http:` section, see [`super::config`]); the
//! defaults serve the largest legitimate responses (see docs/reliability.md). JSONL rows read with
//! `rows()` (batch results) stream in constant memory: only their line length is capped.

use bytes::{Bytes, BytesMut};

use crate::error::Error;

const MIB: u64 = 1 << 20;

/// The size caps of the transport settings, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    /// A buffered success body (JSON, or a binary / JSONL body read whole without `save_to`).
    pub response: u64,
    /// A buffered error (non-2xx) body: error envelopes and gateway pages are small.
    pub error_body: u64,
    /// The bytes of one event stream (what its assembled result is built from).
    pub stream: u64,
    /// One line of an event stream (and one event's data), or one JSONL row.
    pub line: u64,
    /// The page bodies one `fetch_all` collects, added up.
    pub fetch_all: u64,
    /// A `save_to` download, written to disk as it arrives; `None`: no cap.
    pub download: Option<u64>,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            response: 64 * MIB,
            error_body: MIB,
            stream: 64 * MIB,
            line: 16 * MIB,
            fetch_all: 256 * MIB,
            download: None,
        }
    }
}

/// Which cap: its setting name and what it covers, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Response,
    ErrorBody,
    Stream,
    Line,
    FetchAll,
    Download,
}

impl Cap {
    /// The `http:` setting that raises this cap.
    pub fn key(self) -> &'static str {
        match self {
            Cap::Response => "max_response_bytes",
            Cap::ErrorBody => "max_error_body_bytes",
            Cap::Stream => "max_stream_bytes",
            Cap::Line => "max_line_bytes",
            Cap::FetchAll => "max_fetch_all_bytes",
            Cap::Download => "max_download_bytes",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Cap::Response => "the response body",
            Cap::ErrorBody => "the error response body",
            Cap::Stream => "the event stream",
            Cap::Line => "one line of the response",
            Cap::FetchAll => "the pages fetched by fetch_all",
            Cap::Download => "the download",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Cap::Response => "; a large file is better downloaded with save_to",
            Cap::FetchAll => "; or pass max_items / max_pages, or walk the list with pages()",
            _ => "",
        }
    }

    /// The cap's value in `caps` (`None`: uncapped).
    pub fn limit(self, caps: &Caps) -> Option<u64> {
        match self {
            Cap::Response => Some(caps.response),
            Cap::ErrorBody => Some(caps.error_body),
            Cap::Stream => Some(caps.stream),
            Cap::Line => Some(caps.line),
            Cap::FetchAll => Some(caps.fetch_all),
            Cap::Download => caps.download,
        }
    }

    /// The `response_too_large` error for going over `limit` bytes.
    pub fn exceeded(self, limit: u64, status: Option<u16>) -> Error {
        let http = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
        Error::ResponseTooLarge {
            cap: self.key().to_string(),
            limit_bytes: limit,
            status,
            message: format!(
                "{http}{} is larger than the cap of {limit} bytes (http.{key}); stopped reading. \
                 If the server is right to send this much, raise `http: {{{key}: N}}` in \
                 config.yaml{}",
                self.what(),
                self.hint(),
                key = self.key(),
            ),
        }
    }
}

/// Why a capped read stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The transport failed (classified by the caller, which may retry).
    Transport(reqwest::Error),
    /// The body went over its cap (never retried: the same server sends the same flood).
    TooLarge(Error),
}

/// Read a whole body, stopping as soon as it goes over `limit` bytes (a declared
/// `content-length` over the cap fails before reading anything).
pub async fn read_body(
    resp: &mut reqwest::Response,
    cap: Cap,
    limit: u64,
) -> std::result::Result<Bytes, ReadError> {
    let status = Some(resp.status().as_u16());
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(ReadError::TooLarge(cap.exceeded(limit, status)));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(ReadError::TooLarge(cap.exceeded(limit, status)));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A running count of bytes against one cap.
#[derive(Debug, Clone)]
pub struct Counter {
    cap: Cap,
    limit: Option<u64>,
    seen: u64,
    status: Option<u16>,
}

impl Counter {
    pub fn new(cap: Cap, caps: &Caps, status: Option<u16>) -> Self {
        Counter {
            cap,
            limit: cap.limit(caps),
            seen: 0,
            status,
        }
    }

    /// Count `n` more bytes; the error once the total goes over the cap.
    pub fn add(&mut self, n: usize) -> crate::error::Result<()> {
        self.seen = self.seen.saturating_add(n as u64);
        match self.limit {
            Some(limit) if self.seen > limit => Err(self.cap.exceeded(limit, self.status)),
            _ => Ok(()),
        }
    }

    pub fn total(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_cap_and_how_to_raise_it() {
        let e = Cap::Stream.exceeded(1024, Some(200));
        assert_eq!(e.code(), "response_too_large");
        assert_eq!(e.status(), Some(200));
        let j = e.to_json();
        assert_eq!(j["cap"], "max_stream_bytes");
        assert_eq!(j["limit_bytes"], 1024);
        let m = e.to_string();
        assert!(m.contains("http: {max_stream_bytes: N}"), "{m}");
        assert!(m.contains("1024 bytes"), "{m}");
    }

    #[test]
    fn counters_trip_past_the_cap_and_uncapped_ones_never() {
        let caps = Caps {
            stream: 10,
            ..Caps::default()
        };
        let mut c = Counter::new(Cap::Stream, &caps, None);
        assert!(c.add(10).is_ok());
        assert_eq!(
            c.add(1).unwrap_err().to_json()["cap"],
            serde_json::json!("max_stream_bytes")
        );
        let mut d = Counter::new(Cap::Download, &caps, None);
        assert!(d.add(usize::MAX).is_ok());
        assert!(d.add(usize::MAX).is_ok());
    }
}
