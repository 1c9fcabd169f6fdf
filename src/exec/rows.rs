//! JSONL rows read as they arrive, in constant memory: only the current line is buffered.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::error::{Error, Result, TransportKind};

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Rows of a JSONL response, read as they arrive, in constant memory.
pub struct RowStream {
    inner: Inner,
    request_id: Option<String>,
    status: Option<u16>,
}

enum Inner {
    Once(Option<Value>),
    /// The dry run's row, handed out by `next_line` as text.
    Text(Vec<u8>),
    Lines(LineReader<ByteStream>),
}

/// One JSONL line as it came, for a caller that decodes it itself ([`RowStream::next_line`]).
pub struct Line<'a> {
    /// The row's text, with any secret (or a long fragment of one) it echoes redacted.
    pub bytes: std::borrow::Cow<'a, [u8]>,
    /// 1-based line number in the response.
    pub number: u64,
    secrets: &'a [String],
}

impl Line<'_> {
    /// The error for a line that is not JSON: the same one [`RowStream::next`] reports.
    pub fn invalid(&self, reason: &str) -> Error {
        invalid_line(&self.bytes, self.number, reason, self.secrets)
    }
}

fn invalid_line(line: &[u8], number: u64, reason: &str, secrets: &[String]) -> Error {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    Error::BadResponse {
        status: 200,
        message: super::response::redact(
            &format!("JSONL line {number} is not valid JSON ({reason}): {text}"),
            secrets,
        ),
        request_id: None,
    }
}

impl RowStream {
    pub(crate) fn once(value: Value) -> Self {
        RowStream {
            inner: Inner::Once(Some(value)),
            request_id: None,
            status: None,
        }
    }

    pub(crate) fn live(
        resp: reqwest::Response,
        request_id: Option<String>,
        idle: Duration,
        max_line: u64,
        secrets: Vec<String>,
    ) -> Self {
        let status = Some(resp.status().as_u16());
        RowStream {
            inner: Inner::Lines(
                LineReader::new(Box::pin(resp.bytes_stream()) as ByteStream, idle, secrets)
                    .with_max_line(max_line),
            ),
            request_id,
            status,
        }
    }

    /// The next row; `None` at the end. A line that is not JSON is an error naming its line
    /// number; the stream goes on with the next line. A transport failure ends the stream.
    pub async fn next(&mut self) -> Option<Result<Value>> {
        match &mut self.inner {
            Inner::Once(v) => v.take().map(Ok),
            Inner::Text(_) => None,
            Inner::Lines(r) => r.next().await,
        }
    }

    /// The next non-blank line, undecoded, for a caller that builds its own values from the
    /// text (no JSON tree in between); `None` at the end. Decode errors are the caller's to
    /// report, with [`Line::invalid`]. A dry run's single row comes as its JSON text.
    pub async fn next_line(&mut self) -> Option<Result<Line<'_>>> {
        let mut fresh = false;
        if let Inner::Once(v) = &mut self.inner {
            let text = v.take().and_then(|v| serde_json::to_vec(&v).ok())?;
            self.inner = Inner::Text(text);
            fresh = true;
        }
        match &mut self.inner {
            Inner::Text(t) if fresh => Some(Ok(Line {
                bytes: std::borrow::Cow::Borrowed(t.as_slice()),
                number: 1,
                secrets: &[],
            })),
            Inner::Once(_) | Inner::Text(_) => None,
            Inner::Lines(r) => r.next_line().await,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn http_status(&self) -> Option<u16> {
        self.status
    }
}

/// Splits a byte stream into JSON lines; `\n` or `\r\n`, a last line without `\n`, blank lines
/// skipped, lines split across chunks anywhere.
pub struct LineReader<S> {
    stream: S,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    line: u64,
    idle: Duration,
    eof: bool,
    secrets: Vec<String>,
    /// Built once for the stream (not per row): `None` when there is no secret to hide.
    redactor: Option<std::sync::Arc<crate::redact::Redactor>>,
    /// The longest row accepted (`http.max_line_bytes`): a row that never ends cannot grow
    /// memory without bound.
    max_line: u64,
}

impl<S> LineReader<S>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    pub fn new(stream: S, idle: Duration, secrets: Vec<String>) -> Self {
        LineReader {
            stream,
            buf: Vec::new(),
            pos: 0,
            line: 0,
            idle,
            eof: false,
            redactor: (!secrets.is_empty()).then(|| crate::redact::Redactor::for_secrets(&secrets)),
            secrets,
            max_line: super::caps::Caps::default().line,
        }
    }

    /// Cap the length of one row (`response_too_large` past it; the stream ends there).
    pub fn with_max_line(mut self, bytes: u64) -> Self {
        self.max_line = bytes;
        self
    }

    pub async fn next(&mut self) -> Option<Result<Value>> {
        let line = match self.next_line().await? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        Some(serde_json::from_slice(&line.bytes).map_err(|e| line.invalid(&e.to_string())))
    }

    /// The next non-blank line (without its `\r\n`), or the transport error that ended the
    /// stream.
    pub async fn next_line(&mut self) -> Option<Result<Line<'_>>> {
        let (start, end) = match self.next_span().await? {
            Ok(span) => span,
            Err(e) => return Some(Err(e)),
        };
        let raw = &self.buf[start..end];
        // A row may echo a secret like any response body. Secrets and their fragments are
        // plain text inside JSON strings, so redacting the text keeps the row valid JSON.
        let bytes = match (&self.redactor, std::str::from_utf8(raw)) {
            (Some(redactor), Ok(text)) => {
                let redacted = redactor.redact(text);
                if redacted == text {
                    std::borrow::Cow::Borrowed(raw)
                } else {
                    std::borrow::Cow::Owned(redacted.into_bytes())
                }
            }
            _ => std::borrow::Cow::Borrowed(raw),
        };
        Some(Ok(Line {
            bytes,
            number: self.line,
            secrets: &self.secrets,
        }))
    }

    async fn next_span(&mut self) -> Option<Result<(usize, usize)>> {
        loop {
            if let Some(nl) = self.buf[self.pos..].iter().position(|b| *b == b'\n') {
                if nl as u64 > self.max_line {
                    return Some(Err(self.too_long()));
                }
                let start = self.pos;
                self.pos += nl + 1;
                self.line += 1;
                if let Some(span) = self.content(start, start + nl) {
                    return Some(Ok(span));
                }
                continue;
            }
            if (self.buf.len() - self.pos) as u64 > self.max_line {
                return Some(Err(self.too_long()));
            }
            if self.eof {
                if self.pos < self.buf.len() {
                    let (start, end) = (self.pos, self.buf.len());
                    self.pos = end;
                    self.line += 1;
                    if let Some(span) = self.content(start, end) {
                        return Some(Ok(span));
                    }
                }
                return None;
            }
            // Keep only the partial line before reading more.
            self.buf.drain(..self.pos);
            self.pos = 0;
            match tokio::time::timeout(self.idle, self.stream.next()).await {
                Err(_) => {
                    self.eof = true;
                    self.buf.clear();
                    return Some(Err(Error::Transport {
                        kind: TransportKind::Timeout,
                        message: format!(
                            "the JSONL stream stalled after line {} (nothing for {}s)",
                            self.line,
                            self.idle.as_secs_f64()
                        ),
                    }));
                }
                Ok(None) => self.eof = true,
                Ok(Some(Err(e))) => {
                    self.eof = true;
                    self.buf.clear();
                    let (err, _) = super::response::transport_error(
                        &e,
                        &format!("reading JSONL after line {}", self.line),
                    );
                    return Some(Err(Error::Transport {
                        kind: TransportKind::Stream,
                        message: err.to_string(),
                    }));
                }
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }

    /// The row after line `self.line` is over the cap: the stream ends here.
    fn too_long(&mut self) -> Error {
        self.eof = true;
        self.buf = Vec::new();
        self.pos = 0;
        super::caps::Cap::Line.exceeded(self.max_line, Some(200))
    }

    /// The line's content without a `\r`; `None` for a blank line.
    fn content(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let line = &self.buf[start..end];
        let end = if line.ends_with(b"\r") { end - 1 } else { end };
        if self.buf[start..end].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(
        chunks: &[&'static str],
    ) -> LineReader<impl Stream<Item = reqwest::Result<Bytes>> + Unpin> {
        let items: Vec<reqwest::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        LineReader::new(futures::stream::iter(items), Duration::from_secs(5), vec![])
    }

    async fn collect(chunks: &[&'static str]) -> Vec<std::result::Result<Value, String>> {
        let mut r = reader(chunks);
        let mut out = Vec::new();
        while let Some(x) = r.next().await {
            out.push(x.map_err(|e| e.to_string()));
        }
        out
    }

    #[tokio::test]
    async fn splits_crlf_and_final_line() {
        let rows = collect(&["{\"a\":1}\r\n{\"b\"", ":2}\n\n", "{\"c\":", "3}"]).await;
        assert_eq!(
            rows,
            vec![
                Ok(serde_json::json!({"a":1})),
                Ok(serde_json::json!({"b":2})),
                Ok(serde_json::json!({"c":3}))
            ]
        );
    }

    #[tokio::test]
    async fn a_row_longer_than_the_cap_ends_the_stream_with_response_too_large() {
        let items: Vec<reqwest::Result<Bytes>> =
            ["{\"a\":1}\n{\"b\":\"", "xxxxxxxxxxxx", "xxxxxxxx"]
                .iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                .collect();
        let mut r = LineReader::new(futures::stream::iter(items), Duration::from_secs(5), vec![])
            .with_max_line(16);
        assert_eq!(r.next().await.unwrap().unwrap(), serde_json::json!({"a":1}));
        let e = r.next().await.unwrap().unwrap_err();
        assert_eq!(e.code(), "response_too_large");
        assert_eq!(e.to_json()["cap"], "max_line_bytes");
        assert!(r.next().await.is_none());
    }

    #[tokio::test]
    async fn bad_line_reports_its_number_and_continues() {
        let rows = collect(&["{\"a\":1}\n{oops}\n{\"c\":3}\n"]).await;
        assert_eq!(rows.len(), 3);
        assert!(
            rows[1].as_ref().unwrap_err().contains("line 2"),
            "{:?}",
            rows[1]
        );
        assert_eq!(rows[2], Ok(serde_json::json!({"c":3})));
    }
}
