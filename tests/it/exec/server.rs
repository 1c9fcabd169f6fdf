//! A scripted HTTP/1.1 server on 127.0.0.1 for the fault matrix: each request gets the next
//! action of a script (answer, reset, stall, truncate, stream events slowly), and every request
//! is recorded, so tests can count exactly what reached the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    /// A complete response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection with a TCP reset after reading the request.
    Reset,
    /// Send the headers and part of the body, then hang.
    Stall {
        content_length: usize,
        partial: Vec<u8>,
    },
    /// Send the headers and part of the body, then close (Content-Length is larger).
    Truncate {
        content_length: usize,
        partial: Vec<u8>,
    },
    /// An event stream that starts, then dies with a TCP reset.
    StreamThenReset { pieces: Vec<Vec<u8>> },
    /// A close-delimited body written in pieces, with a pause before each piece.
    Chunks {
        status: u16,
        content_type: String,
        pieces: Vec<(Duration, Vec<u8>)>,
        /// Keep the connection open (hang) after the last piece instead of closing.
        hang: bool,
    },
}

impl Action {
    pub fn json(status: u16, body: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("request-id".into(), format!("req_{status}")),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Action {
        if let Action::Respond { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }

    pub fn error(status: u16, kind: &str) -> Action {
        Action::json(
            status,
            &format!(
                r#"{{"type":"error","error":{{"type":"{kind}","message":"{kind} happened"}}}}"#
            ),
        )
    }

    pub fn sse(events: &[&str], hang: bool) -> Action {
        Action::Chunks {
            status: 200,
            content_type: "text/event-stream".into(),
            pieces: events
                .iter()
                .map(|e| (Duration::from_millis(5), e.as_bytes().to_vec()))
                .collect(),
            hang,
        }
    }
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Scripted {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Start a server that plays `script` in order; after the script, it repeats the last action.
pub async fn start(script: Vec<Action>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let _ = serve(sock, seen, script).await;
            });
        }
    });
    Scripted { url, seen }
}

async fn read_request(sock: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

async fn serve(
    mut sock: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Vec<Action>>,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut sock).await else {
        return Ok(());
    };
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(req);
        s.len() - 1
    };
    let action = script.get(index).or(script.last()).cloned().unwrap();
    let head = |status: u16, headers: &[(String, String)], len: Option<usize>| {
        let mut h = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(len) = len {
            h.push_str(&format!("content-length: {len}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    match action {
        Action::Respond {
            status,
            headers,
            body,
        } => {
            sock.write_all(&head(status, &headers, Some(body.len())))
                .await?;
            sock.write_all(&body).await?;
            sock.shutdown().await?;
        }
        Action::Reset => {
            sock.set_zero_linger()?;
            drop(sock);
        }
        Action::Stall {
            content_length,
            partial,
        } => {
            let h = vec![("content-type".to_string(), "application/json".to_string())];
            sock.write_all(&head(200, &h, Some(content_length))).await?;
            sock.write_all(&partial).await?;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Action::Truncate {
            content_length,
            partial,
        } => {
            let h = vec![("content-type".to_string(), "application/json".to_string())];
            sock.write_all(&head(200, &h, Some(content_length))).await?;
            sock.write_all(&partial).await?;
            sock.shutdown().await?;
        }
        Action::StreamThenReset { pieces } => {
            let h = vec![("content-type".to_string(), "text/event-stream".to_string())];
            sock.write_all(&head(200, &h, None)).await?;
            for piece in pieces {
                sock.write_all(&piece).await?;
                sock.flush().await?;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sock.set_zero_linger()?;
            drop(sock);
        }
        Action::Chunks {
            status,
            content_type,
            pieces,
            hang,
        } => {
            let h = vec![
                ("content-type".to_string(), content_type),
                ("request-id".to_string(), "req_stream".to_string()),
            ];
            sock.write_all(&head(status, &h, None)).await?;
            for (pause, piece) in pieces {
                tokio::time::sleep(pause).await;
                sock.write_all(&piece).await?;
                sock.flush().await?;
            }
            if hang {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            sock.shutdown().await?;
        }
    }
    Ok(())
}
