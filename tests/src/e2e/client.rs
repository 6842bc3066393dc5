//! A raw HTTP/1.1 client: the test writes the exact bytes (paths with `%2F`, `\`, duplicate
//! headers, odd hosts) that a client library would normalize or refuse. One request per
//! connection (`connection: close`), read to EOF, head parsed with `httparse`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// Default time a request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RESPONSE: usize = 16 << 20;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// First value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("body is not JSON: {}", self.text()))
    }

    /// The `type` of an `application/problem+json` body, if that is what it is.
    pub fn problem_type(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        if !ct.starts_with("application/problem+json") {
            return None;
        }
        self.json().ok()?.get("type")?.as_str().map(str::to_string)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request to build and send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
}

impl Request {
    /// `METHOD target` with no headers yet (a `host` is added unless one is set).
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            body: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// `POST target` with a JSON body.
    pub fn post_json(target: &str, body: &Value) -> Request {
        Request::new("POST", target).header("content-type", "application/json").body(body.to_string().into_bytes())
    }

    /// Adds a header (repeat the call for duplicates).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body (`content-length` is added).
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = Some(body);
        self
    }

    /// Sets how long to wait for the whole response.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        let has = |name: &str| self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !has("host") {
            head.push_str("host: e2e.test\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            if !has("content-length") && !has("transfer-encoding") {
                head.push_str(&format!("content-length: {}\r\n", body.len()));
            }
        }
        if !has("connection") {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        bytes
    }

    /// Sends it to `addr` and reads the response.
    pub fn send(&self, addr: SocketAddr) -> anyhow::Result<Response> {
        send_raw(addr, &self.to_bytes(), self.timeout)
    }
}

/// Writes `bytes` to a new connection to `addr`, reads to EOF, parses one response.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> anyhow::Result<Response> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(bytes).with_context(|| format!("writing to {addr}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no complete response from {addr} within {timeout:?} (got {} bytes)", buf.len());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    bail!("response from {addr} larger than {MAX_RESPONSE} bytes");
                }
                if response_complete(&buf) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A reset after a complete answer is still an answer.
            Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                bail!("no complete response from {addr} within {timeout:?} (got {} bytes)", buf.len());
            }
            Err(e) => return Err(anyhow!(e).context(format!("reading from {addr}"))),
        }
    }
    parse_response(&buf).with_context(|| format!("parsing the response from {addr}"))
}

/// Whether `buf` holds a whole response with a known length (so we need not wait for EOF).
fn response_complete(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            let len = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            matches!(len, Some(len) if buf.len() >= head_len + len)
        }
        _ => false,
    }
}

/// Parses one complete response.
pub fn parse_response(buf: &[u8]) -> anyhow::Result<Response> {
    if buf.is_empty() {
        bail!("connection closed without a response");
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => bail!("incomplete response head: {:?}", String::from_utf8_lossy(buf)),
    };
    let status = resp.code.ok_or_else(|| anyhow!("no status code"))?;
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let rest = &buf[head_len..];
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().context("bad content-length")?;
        if rest.len() < len {
            bail!("body cut short: {} of {len} bytes", rest.len());
        }
        rest[..len].to_vec()
    } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let line_end =
            rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("chunk size line not terminated"))?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            bail!("chunk cut short");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    bail!("too many chunks")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_lengths_and_chunks() {
        let r = parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nRetry-After: 7\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.header("retry-after"), r.body.as_slice()), (403, Some("7"), &b"{}"[..]));
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"").is_err());
    }

    #[test]
    fn writes_defaults_once() {
        let bytes = Request::get("/x").header("Host", "h").to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text, "GET /x HTTP/1.1\r\nHost: h\r\nconnection: close\r\n\r\n");
    }
}
