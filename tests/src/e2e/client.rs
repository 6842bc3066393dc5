//! A raw HTTP/1.1 client: the test writes the exact bytes (paths with `%2F`, `\`, duplicate
//! headers, odd hosts) that a client library would normalize or refuse. One request per
//! connection (`connection: close`), read to EOF, head parsed with `httparse`.
//!
//! And [`H2Request`]: one HTTP/2 request over cleartext with prior knowledge (h2c, which
//! the listeners' `codec_type: AUTO` accepts), through hyper's client, whose body goes out
//! as DATA frames none of which ends the stream and whose stream the trailers end, the
//! way gRPC and other streaming clients send it (HTTP/1 request trailers reach no filter
//! unless the codec enables them, so this is how a request carries trailers to one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
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

/// One HTTP/2 request over h2c (prior knowledge): headers, then the body as DATA frames
/// that never end the stream, then trailers that do (with no trailers, an empty DATA
/// frame ends it: the same request without trailers). No `content-length` is sent.
#[derive(Debug, Clone)]
pub struct H2Request {
    method: String,
    target: String,
    authority: String,
    headers: Vec<(String, String)>,
    chunks: Vec<Vec<u8>>,
    trailers: Vec<(String, String)>,
    pause: Duration,
    timeout: Duration,
}

impl H2Request {
    /// `METHOD target` (path and query) for `:authority` `e2e.test`, no body, no trailers.
    pub fn new(method: &str, target: &str) -> H2Request {
        H2Request {
            method: method.to_string(),
            target: target.to_string(),
            authority: "e2e.test".to_string(),
            headers: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
            pause: Duration::from_millis(20),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets `:authority` (HTTP/2's Host).
    pub fn authority(mut self, authority: &str) -> H2Request {
        self.authority = authority.to_string();
        self
    }

    /// Adds a header (names are sent lower-case, as HTTP/2 requires).
    pub fn header(mut self, name: &str, value: &str) -> H2Request {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Appends one DATA frame's worth of body (each chunk is its own frame).
    pub fn data(mut self, chunk: &[u8]) -> H2Request {
        self.chunks.push(chunk.to_vec());
        self
    }

    /// Adds a trailer; any trailer makes a trailers HEADERS frame end the stream.
    pub fn trailer(mut self, name: &str, value: &str) -> H2Request {
        self.trailers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the pause before each DATA frame and before the trailers (default 20 ms), so
    /// Envoy sees every frame as its own event rather than all at once.
    pub fn pause(mut self, pause: Duration) -> H2Request {
        self.pause = pause;
        self
    }

    /// Sets how long the whole exchange may take.
    pub fn timeout(mut self, timeout: Duration) -> H2Request {
        self.timeout = timeout;
        self
    }

    /// Connects to `addr` (h2c), sends the request, reads the whole response. A
    /// current-thread runtime of its own; the whole exchange is bounded by the timeout.
    pub fn send(&self, addr: SocketAddr) -> anyhow::Result<Response> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a tokio runtime for the HTTP/2 client")?;
        runtime.block_on(async {
            match tokio::time::timeout(self.timeout, self.exchange(addr)).await {
                Ok(outcome) => outcome,
                Err(_) => bail!("no complete HTTP/2 response from {addr} within {:?}", self.timeout),
            }
        })
    }

    async fn exchange(&self, addr: SocketAddr) -> anyhow::Result<Response> {
        let tcp = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .with_context(|| format!("HTTP/2 handshake with {addr}"))?;
        // The connection is driven by its own task; it ends when the runtime does.
        tokio::spawn(async move {
            let _ = conn.await;
        });

        let mut trailers = hyper::HeaderMap::new();
        for (name, value) in &self.trailers {
            trailers.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes())
                    .with_context(|| format!("trailer name {name:?}"))?,
                hyper::header::HeaderValue::from_str(value).with_context(|| format!("trailer value {value:?}"))?,
            );
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Frame<Bytes>>(self.chunks.len() + 1);
        let chunks = self.chunks.clone();
        let pause = self.pause;
        tokio::spawn(async move {
            for chunk in chunks {
                tokio::time::sleep(pause).await;
                if tx.send(Frame::data(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
            if !trailers.is_empty() {
                tokio::time::sleep(pause).await;
                let _ = tx.send(Frame::trailers(trailers)).await;
            }
            // Dropping `tx` ends the body: after trailers, the stream has ended already;
            // without them, hyper ends it with an empty DATA frame.
        });

        let uri = format!("http://{}{}", self.authority, self.target);
        let mut builder = hyper::Request::builder().method(self.method.as_str()).uri(uri.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(StreamBody::new(Frames(rx))).with_context(|| format!("building {uri}"))?;
        let response =
            sender.send_request(request).await.with_context(|| format!("HTTP/2 request {} {uri}", self.method))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = response.into_body().collect().await.context("reading the HTTP/2 response body")?.to_bytes();
        if body.len() > MAX_RESPONSE {
            bail!("response from {addr} larger than {MAX_RESPONSE} bytes");
        }
        Ok(Response { status, headers, body: body.to_vec() })
    }
}

/// The request body's frames, as the `Stream` [`StreamBody`] wants.
struct Frames(tokio::sync::mpsc::Receiver<Frame<Bytes>>);

impl futures_core::Stream for Frames {
    type Item = Result<Frame<Bytes>, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
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
