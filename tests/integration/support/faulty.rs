//! A scripted faulty S3 endpoint on 127.0.0.1: each request takes the next step of a script
//! (answer with a status, reset the connection mid-body, stall, redirect, or accept the body).
//! Raw TCP, so faults that a well-behaved HTTP server never produces can be produced for real.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Read the request, answer `status` with `body`.
    Respond(u16, String),
    /// Read the headers and this many body bytes, then reset the connection.
    ResetAfter(usize),
    /// Read the headers and this many body bytes, then hold the connection silently.
    StallAfter(usize),
    /// Answer 307 with this `Location`.
    Redirect(String),
    /// Read the whole body, keep it, answer 200 with the body's MD5 as ETag.
    Accept,
}

#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Faulty {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

pub(crate) fn s3_error(code: &str, message: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>")
}

impl Faulty {
    /// Starts the endpoint; once the script is used up every request gets 500.
    pub(crate) async fn start(script: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recs = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let script = Arc::clone(&script);
                let recs = Arc::clone(&recs);
                tokio::spawn(async move {
                    let _ = serve(sock, script, recs).await;
                });
            }
        });
        Self { url, requests }
    }

    pub(crate) fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut sock: TcpStream,
    script: Arc<Mutex<VecDeque<Step>>>,
    recs: Arc<Mutex<Vec<Recorded>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf.split_off(head_end);
        buf.clear();
        let step = script.lock().unwrap().pop_front().unwrap_or(Step::Respond(
            500,
            s3_error("InternalError", "script exhausted"),
        ));
        let record = |body: Vec<u8>| {
            recs.lock().unwrap().push(Recorded {
                method: method.clone(),
                target: target.clone(),
                headers: headers.clone(),
                body,
            })
        };
        match step {
            Step::Respond(status, text) => {
                read_body(&mut sock, &mut body, len, len).await?;
                record(Vec::new());
                respond(&mut sock, status, &[], &text).await?;
            }
            Step::Accept => {
                read_body(&mut sock, &mut body, len, len).await?;
                body.truncate(len);
                let etag = format!("\"{}\"", md5::Md5::digest_hex(&body));
                record(body);
                respond(&mut sock, 200, &[("ETag", &etag)], "").await?;
            }
            Step::Redirect(location) => {
                read_body(&mut sock, &mut body, len, len).await?;
                record(Vec::new());
                respond(&mut sock, 307, &[("Location", &location)], "").await?;
            }
            Step::ResetAfter(n) => {
                read_body(&mut sock, &mut body, n, len).await?;
                record(Vec::new());
                sock.set_zero_linger()?;
                return Ok(()); // dropping with linger 0 sends RST
            }
            Step::StallAfter(n) => {
                read_body(&mut sock, &mut body, n, len).await?;
                record(Vec::new());
                tokio::time::sleep(Duration::from_secs(60)).await;
                return Ok(());
            }
        }
    }
}

/// Reads until `body` holds `want` bytes (at most the request's `len`) or the peer stops.
async fn read_body(
    sock: &mut TcpStream,
    body: &mut Vec<u8>,
    want: usize,
    len: usize,
) -> std::io::Result<()> {
    let want = want.min(len);
    while body.len() < want {
        let mut chunk = vec![0u8; 65536];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

async fn respond(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    sock.write_all(out.as_bytes()).await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Hex MD5 helper.
trait DigestHex {
    fn digest_hex(data: &[u8]) -> String;
}

impl DigestHex for md5::Md5 {
    fn digest_hex(data: &[u8]) -> String {
        use md5::Digest;
        Self::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
