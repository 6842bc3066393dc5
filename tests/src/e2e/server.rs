//! A small HTTP/1.1 server on 127.0.0.1 (plain or TLS) that the local test servers run on.
//!
//! Each server owns a thread with a single-threaded tokio runtime. The handler gets the
//! whole request (body collected) and returns the whole answer. A server can be taken
//! *down* — its port closed and its open connections dropped, as if the process died — and
//! brought back on the same port.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method, as sent.
    pub method: String,
    /// Request target (path and query), exactly as sent.
    pub path: String,
    /// Headers in arrival order, names lower-case, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// SNI the client sent, for TLS connections.
    pub sni: Option<String>,
}

impl Received {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// Body to send.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Called as soon as a request's head has arrived, before its body (body empty here).
pub type HeadHook = Arc<dyn Fn(&Received) + Send + Sync>;

/// The future a handler returns.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
/// What a server does with each request.
pub type Handler = Arc<dyn Fn(Received) -> ReplyFuture + Send + Sync>;

/// A running server; stops when dropped.
pub struct Server {
    name: String,
    addr: SocketAddr,
    down: watch::Sender<bool>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on an ephemeral 127.0.0.1 port; `tls` makes it HTTPS.
    pub fn start(name: &str, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> anyhow::Result<Server> {
        Server::start_observed(name, tls, None, handler)
    }

    /// Like [`Server::start`], and `on_head` sees every request the moment its head
    /// arrives (a proxy that streams would have delivered that much already).
    pub fn start_observed(
        name: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        on_head: Option<HeadHook>,
        handler: Handler,
    ) -> anyhow::Result<Server> {
        let std_listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .with_context(|| format!("{name}: binding 127.0.0.1:0"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (down_tx, down_rx) = watch::channel(false);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("{name}: building a tokio runtime"))?;
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let thread_name = format!("e2e-{name}");
        let log_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => {
                            let app = App { handler, on_head };
                            accept_loop(listener, addr, acceptor, app, down_rx, shutdown_rx).await
                        }
                        Err(e) => eprintln!("{log_name}: cannot adopt listener: {e}"),
                    }
                });
            })
            .with_context(|| format!("{name}: spawning the server thread"))?;
        Ok(Server { name: name.to_string(), addr, down: down_tx, shutdown: Some(shutdown_tx), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its name (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Down: the port is closed and open connections are dropped. Up: it listens again
    /// on the same port. Returns once the change is in effect (bounded wait).
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
        // The accept loop reacts within one poll; give it a bounded moment, then check.
        for _ in 0..100 {
            let reachable = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok();
            if reachable != down {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{}: still {} after 2 s", self.name, if down { "reachable" } else { "unreachable" });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a connection needs from its server.
#[derive(Clone)]
struct App {
    handler: Handler,
    on_head: Option<HeadHook>,
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: App,
    mut down: watch::Receiver<bool>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut listener = Some(listener);
    loop {
        let is_down = *down.borrow_and_update();
        if is_down {
            listener = None;
        } else if listener.is_none() {
            listener = rebind(addr).await;
        }
        match &listener {
            Some(l) => {
                tokio::select! {
                    _ = &mut shutdown => return,
                    changed = down.changed() => if changed.is_err() { return },
                    accepted = l.accept() => {
                        if let Ok((stream, _)) = accepted {
                            tokio::spawn(connection(stream, acceptor.clone(), app.clone(), down.clone()));
                        }
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = &mut shutdown => return,
                    changed = down.changed() => if changed.is_err() { return },
                    // Could not rebind yet: try again shortly.
                    _ = tokio::time::sleep(Duration::from_millis(50)), if !is_down => {}
                }
            }
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    None
}

async fn connection(
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: App,
    mut down: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let work = async move {
        match acceptor {
            Some(acceptor) => {
                let Ok(tls_stream) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = tls_stream.get_ref().1.server_name().map(str::to_string);
                serve_http(TokioIo::new(tls_stream), app, true, sni).await;
            }
            None => serve_http(TokioIo::new(stream), app, false, None).await,
        }
    };
    tokio::select! {
        _ = work => {}
        _ = wait_until_down(&mut down) => {}
    }
}

async fn wait_until_down(down: &mut watch::Receiver<bool>) {
    loop {
        if *down.borrow_and_update() {
            return;
        }
        if down.changed().await.is_err() {
            return;
        }
    }
}

async fn serve_http<I>(io: TokioIo<I>, app: App, tls: bool, sni: Option<String>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        let sni = sni.clone();
        async move {
            let (parts, body) = req.into_parts();
            let mut received = Received {
                method: parts.method.as_str().to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map(|pq| pq.as_str().to_string())
                    .unwrap_or_else(|| parts.uri.to_string()),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect(),
                body: Vec::new(),
                tls,
                sni,
            };
            if let Some(on_head) = &app.on_head {
                on_head(&received);
            }
            received.body = match body.collect().await {
                Ok(collected) => collected.to_bytes().to_vec(),
                Err(_) => Vec::new(),
            };
            let reply = (app.handler)(received).await;
            Ok::<_, Infallible>(to_response(reply))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

fn to_response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(Bytes::from(reply.body))).unwrap_or_else(|e| {
        let mut fallback =
            hyper::Response::new(Full::new(Bytes::from(format!("test server could not build its answer: {e}"))));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
