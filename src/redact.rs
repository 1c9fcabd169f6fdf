//! Redaction of secrets in everything that leaves kosmo: error messages, response values given
//! to scripts, stream events, rows, logs, dry runs.
//!
//! Rules (docs/reliability.md, "Redaction"):
//! - A secret of [`MIN_SECRET`] characters or more is replaced wherever it appears whole.
//! - A secret of [`FRAGMENT_MIN_SECRET`] characters or more is also caught in fragments: any run
//!   of the text that shares [`FRAGMENT`] or more consecutive characters with the secret is
//!   replaced, extended as far as it keeps matching the secret (so the key minus its last four
//!   characters, or its second half, disappears whole). Runs inside the key's *type tag* alone
//!   (what comes before the last `-` or `_` among its first 16 characters, such as
//!   `sk-ant-api03-`) are public knowledge and not redacted on their own.
//! - Credentials in URLs ([`redact_url`]): `scheme://user:PASSWORD@host` keeps the user and
//!   hides the password; a lone `scheme://TOKEN@host` hides the token. Every form the URL parser
//!   accepts is covered: any number of slashes or backslashes after the scheme (`http:/u:p@h`),
//!   none at all for the special schemes (`http:u:p@h`), and passwords with spaces or quotes.
//!
//! The work per secret set is done once ([`Redactor::for_secrets`] keeps the automaton of the
//! last few sets per thread); a scan is one pass of an Aho-Corasick automaton over the text.

use std::cell::RefCell;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde_json::Value;

/// Shortest secret redacted at all.
pub const MIN_SECRET: usize = 4;
/// Shortest secret whose fragments are redacted too.
pub const FRAGMENT_MIN_SECRET: usize = 16;
/// Shortest fragment of such a secret that is redacted.
pub const FRAGMENT: usize = 8;

const REDACTED: &str = "[redacted]";

/// The precomputed matcher for one set of secrets.
#[derive(Debug)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
    /// Patterns: whole short secrets and the fragment windows of long ones.
    ac: Option<AhoCorasick>,
    /// For each pattern, where it occurs: (secret index, byte offset in that secret).
    places: Vec<Vec<(usize, usize)>>,
}

/// The length of a key's type tag: up to the last `-` or `_` among its first 16 characters,
/// when at least [`FRAGMENT`] characters follow it.
fn tag_len(secret: &[u8]) -> usize {
    let head = &secret[..secret.len().min(16)];
    match head.iter().rposition(|b| matches!(b, b'-' | b'_')) {
        Some(i) if secret.len() - (i + 1) >= FRAGMENT => i + 1,
        _ => 0,
    }
}

impl Redactor {
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Redactor {
        let mut list: Vec<Vec<u8>> = secrets
            .iter()
            .map(|s| s.as_ref().as_bytes().to_vec())
            .filter(|s| s.len() >= MIN_SECRET)
            .collect();
        list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        list.dedup();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut places: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut add = |pat: &[u8], k: usize, o: usize| {
            let i = *index.entry(pat.to_vec()).or_insert_with(|| {
                patterns.push(pat.to_vec());
                places.push(Vec::new());
                patterns.len() - 1
            });
            places[i].push((k, o));
        };
        for (k, s) in list.iter().enumerate() {
            if s.len() < FRAGMENT_MIN_SECRET {
                add(s, k, 0);
                continue;
            }
            let tag = tag_len(s);
            for o in 0..=s.len() - FRAGMENT {
                if o + FRAGMENT > tag {
                    add(&s[o..o + FRAGMENT], k, o);
                }
            }
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&patterns)
                .ok()
        };
        Redactor {
            secrets: list,
            ac,
            places,
        }
    }

    /// The redactor of `secrets`, built once per thread for the last few sets seen.
    pub fn for_secrets(secrets: &[String]) -> Arc<Redactor> {
        thread_local! {
            static CACHE: RefCell<Vec<(Vec<String>, Arc<Redactor>)>> = const { RefCell::new(Vec::new()) };
        }
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = c.iter().position(|(k, _)| k.as_slice() == secrets) {
                let hit = c.remove(i);
                let r = hit.1.clone();
                c.insert(0, hit);
                return r;
            }
            let r = Arc::new(Redactor::new(secrets));
            c.insert(0, (secrets.to_vec(), r.clone()));
            c.truncate(8);
            r
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ac.is_none()
    }

    /// The byte spans of `text` to hide, sorted and merged.
    fn spans(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut from = 0;
        while from < text.len() {
            let Some(m) = ac.find(aho_corasick::Input::new(text).span(from..text.len())) else {
                break;
            };
            let mut best = (m.start(), m.end());
            for &(k, o) in &self.places[m.pattern().as_usize()] {
                let s = &self.secrets[k];
                let (mut i, mut si) = (m.start(), o);
                while i > 0 && si > 0 && text[i - 1] == s[si - 1] {
                    i -= 1;
                    si -= 1;
                }
                let (mut j, mut sj) = (m.end(), o + m.len());
                while j < text.len() && sj < s.len() && text[j] == s[sj] {
                    j += 1;
                    sj += 1;
                }
                best = (best.0.min(i), best.1.max(j));
            }
            spans.push(best);
            // The run was followed as far as it matches: look again after it.
            from = best.1.max(m.start() + 1);
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }

    /// `text` with every secret, fragment and URL credential replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let text = redact_url(text);
        self.redact_secrets(&text).unwrap_or(text)
    }

    /// `None` when `text` holds no secret (URL credentials are not looked at).
    fn redact_secrets(&self, text: &str) -> Option<String> {
        let spans = self.spans(text.as_bytes());
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (mut s, mut e) in spans {
            // A fragment of a non-ASCII secret may end inside a character: hide all of it.
            while !text.is_char_boundary(s) {
                s -= 1;
            }
            while !text.is_char_boundary(e) {
                e += 1;
            }
            if s < at {
                s = at;
            }
            out.push_str(&text[at..s]);
            if e > s {
                out.push_str(REDACTED);
            }
            at = at.max(e);
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// Scrub every string of a JSON value (keys included) in place; returns whether anything
    /// changed. Strings with nothing to hide are not copied.
    pub fn redact_value_in_place(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => match self.scrub(s) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Value::Array(a) => {
                let mut changed = false;
                for x in a {
                    changed |= self.redact_value_in_place(x);
                }
                changed
            }
            Value::Object(m) => {
                let mut changed = false;
                let keys_dirty = m.keys().any(|k| self.scrub(k).is_some());
                if keys_dirty {
                    let old = std::mem::take(m);
                    for (k, x) in old {
                        let k = self.scrub(&k).unwrap_or(k);
                        m.insert(k, x);
                    }
                    changed = true;
                }
                for x in m.values_mut() {
                    changed |= self.redact_value_in_place(x);
                }
                changed
            }
            _ => false,
        }
    }

    /// The scrubbed text, or `None` when nothing in it is secret.
    fn scrub(&self, s: &str) -> Option<String> {
        let url = has_url_credentials(s).then(|| redact_url(s));
        let base = url.as_deref().unwrap_or(s);
        match self.redact_secrets(base) {
            Some(out) => Some(out),
            None => url.filter(|u| u != s),
        }
    }
}

/// Cheap test: could `text` hold a URL with credentials (a `:` and an `@`)?
fn has_url_credentials(text: &str) -> bool {
    text.contains('@') && text.contains(':')
}

/// Schemes the URL parser treats as special: it accepts them with no slash at all after the
/// colon (`http:user:pw@host`).
const SPECIAL: &[&str] = &["http", "https", "ws", "wss", "ftp"];

/// Replace the password of every `scheme://user:password@host` in `text` with `[redacted]`
/// (`user:[redacted]@host`), and a lone user name, which is how tokens travel in URLs, with
/// `[redacted]@host`. A user name beside a password stays, to say which login was used. Works
/// on free text, so it can scrub a message that merely contains a URL; every spelling the URL
/// parser accepts is covered (see the module documentation).
pub fn redact_url(text: &str) -> String {
    if !has_url_credentials(text) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b':' {
            i += 1;
            continue;
        }
        // The scheme: letters, digits, `+`, `-`, `.` before the colon, starting with a letter.
        let mut s = i;
        while s > 0
            && (bytes[s - 1].is_ascii_alphanumeric() || matches!(bytes[s - 1], b'+' | b'-' | b'.'))
        {
            s -= 1;
        }
        while s < i && !bytes[s].is_ascii_alphabetic() {
            s += 1;
        }
        let scheme = &text[s..i];
        let mut a = i + 1;
        while a < bytes.len() && matches!(bytes[a], b'/' | b'\\') {
            a += 1;
        }
        let slashes = a - (i + 1);
        let special = SPECIAL.iter().any(|x| scheme.eq_ignore_ascii_case(x));
        if scheme.is_empty() || (slashes == 0 && !special) {
            i += 1;
            continue;
        }
        let tail = &text[a..];
        let Some((user_end, at, end)) = userinfo(tail) else {
            i = a.max(i + 1);
            continue;
        };
        out.push_str(&text[copied..a]);
        match user_end {
            Some(u) => {
                out.push_str(&tail[..u]);
                out.push_str(":[redacted]");
            }
            None => out.push_str(REDACTED),
        }
        out.push_str(&tail[at..end]);
        copied = a + end;
        i = copied;
    }
    out.push_str(&text[copied..]);
    out
}

/// In the text after `scheme:` (and its slashes): the end of the user name when a `:` password
/// follows (`None`: a lone user name), the position of the `@` that ends the userinfo, and the
/// end of the authority. `None` when there is no userinfo.
fn userinfo(tail: &str) -> Option<(Option<usize>, usize, usize)> {
    let stop = |c: char| {
        matches!(
            c,
            '/' | '\\' | '?' | '#' | ')' | '"' | '\'' | '<' | '>' | '`'
        ) || c.is_whitespace()
    };
    let end = tail.find(stop).unwrap_or(tail.len());
    let authority = &tail[..end];
    if let Some(at) = authority.rfind('@') {
        let user_end = authority[..at].find(':');
        return Some((user_end, at, end));
    }
    // `user:pa ss@host` or `user:pa"ss@host`: a password with a space or a quote. Only when
    // what follows the `:` is not a port, and an `@` comes before the path on the same line.
    let (user, rest) = authority.split_once(':')?;
    if user.is_empty() || (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let line_end = tail
        .find(['\n', '\r', '/', '\\', '?', '#'])
        .unwrap_or(tail.len());
    let at = tail[..line_end].rfind('@').filter(|at| *at > end)?;
    let host_end = tail[at..].find(stop).map_or(tail.len(), |e| at + e);
    Some((Some(user.len()), at, host_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "sk-ant-api03-Zq8xW2vN5mK7pL1rT4yU6iO9aS3dF0gHjKlQwErTyUiOp";

    #[test]
    fn whole_secrets_and_long_fragments_are_hidden() {
        let r = Redactor::new(&[KEY]);
        let minus4 = &KEY[..KEY.len() - 4];
        assert_eq!(r.redact(&format!("echo {minus4}!")), "echo [redacted]!");
        assert_eq!(r.redact(&format!("key={KEY};")), "key=[redacted];");
        let tail = &KEY[30..];
        assert_eq!(r.redact(&format!("x {tail} y")), "x [redacted] y");
        // Eight characters of the random part are enough.
        let eight = &KEY[20..28];
        assert_eq!(r.redact(&format!("[{eight}]")), "[[redacted]]");
        // Seven are not, and the public type tag alone is not either.
        let seven = &KEY[20..27];
        assert_eq!(r.redact(&format!("[{seven}]")), format!("[{seven}]"));
        assert_eq!(
            r.redact("keys look like sk-ant-api03-..."),
            "keys look like sk-ant-api03-..."
        );
        // A fragment straddling the tag is hidden with the tag.
        let straddle = &KEY[5..20];
        assert_eq!(r.redact(&format!("<{straddle}>")), "<[redacted]>");
        // Two fragments with other text between them.
        let text = format!("a {} b {} c", &KEY[13..25], &KEY[40..]);
        assert_eq!(r.redact(&text), "a [redacted] b [redacted] c");
    }

    #[test]
    fn short_secrets_are_matched_whole_only() {
        let r = Redactor::new(&["hunter2pass", "abc"]);
        assert_eq!(r.redact("pw hunter2pass."), "pw [redacted].");
        assert_eq!(r.redact("hunter2 and abc"), "hunter2 and abc");
    }

    #[test]
    fn values_are_scrubbed_in_place_keys_included() {
        let r = Redactor::new(&[KEY]);
        let mut v = json!({"headers": {"x-api-key": KEY}, KEY: 1, "n": 2, "list": [&KEY[..40]]});
        assert!(r.redact_value_in_place(&mut v));
        assert_eq!(
            v,
            json!({"headers": {"x-api-key": "[redacted]"}, "[redacted]": 1, "n": 2, "list": ["[redacted]"]})
        );
        let mut clean = json!({"a": "nothing here", "b": [1, 2]});
        assert!(!r.redact_value_in_place(&mut clean));
    }

    #[test]
    fn url_credentials_in_every_spelling_the_parser_accepts() {
        let cases = [
            (
                "GET http://user:PASS@host:8/v1/x?a=b failed",
                "GET http://user:[redacted]@host:8/v1/x?a=b failed",
            ),
            (
                "(https://u:p%40ss:w@h) and http://plain/x and ftp://only-user@h",
                "(https://u:[redacted]@h) and http://plain/x and ftp://[redacted]@h",
            ),
            ("http:/user:PW@host/x", "http:/user:[redacted]@host/x"),
            ("http:user:PW@host", "http:user:[redacted]@host"),
            ("https:///user:PW@host", "https:///user:[redacted]@host"),
            (
                "http:\\\\user:PW@host\\x",
                "http:\\\\user:[redacted]@host\\x",
            ),
            (
                "url http://user:pa ss word@host/x",
                "url http://user:[redacted]@host/x",
            ),
            (
                "url \"http://user:pa\"ss@host/x\"",
                "url \"http://user:[redacted]@host/x\"",
            ),
            ("HTTP://TOKEN123@host", "HTTP://[redacted]@host"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_url(text), want, "{text}");
        }
        // Not URLs with credentials: left alone.
        for text in [
            "no url here",
            "tail://",
            "error: write to me@example.com",
            "see http://example.com and mail me@x.com",
            "http://host:8080 is down, mail admin@x.com",
            "note:me@x",
        ] {
            assert_eq!(redact_url(text), text);
        }
    }

    /// Throughput on a large response (run by hand: `cargo test --lib redact -- --ignored
    /// --nocapture`; numbers in docs/reliability.md).
    #[test]
    #[ignore]
    fn measure() {
        let secrets = vec![
            KEY.to_string(),
            "http-password-1234567".into(),
            "short1".into(),
        ];
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(Redactor::new(&secrets));
        }
        println!("build: {:?} per secret set", t.elapsed() / 1000);
        let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(20_000);
        let mut v = json!({"content": [{"type": "text", "text": text}], "items": (0..20_000).map(|i| json!({"id": format!("item_{i}"), "name": "abc"})).collect::<Vec<_>>()});
        let bytes = v.to_string().len();
        let r = Redactor::for_secrets(&secrets);
        let t = std::time::Instant::now();
        for _ in 0..10 {
            r.redact_value_in_place(&mut v);
        }
        let per = t.elapsed() / 10;
        println!(
            "scan: {bytes} bytes of JSON in {per:?} ({:.0} MB/s)",
            bytes as f64 / per.as_secs_f64() / 1e6
        );
    }

    #[test]
    fn the_cache_hands_back_the_same_automaton() {
        let s = vec![KEY.to_string()];
        let a = Redactor::for_secrets(&s);
        let b = Redactor::for_secrets(&s);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Redactor::for_secrets(&[]).is_empty());
    }
}
