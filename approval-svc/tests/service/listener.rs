//! The listener against slow clients, over real TCP: headers and bodies must arrive in
//! time, and connections are capped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use airlock_approval_svc::listener::{serve, HttpLimits};
use support::*;

const LIMITS: HttpLimits = HttpLimits {
    header_read_timeout: Duration::from_secs(1),
    body_read_timeout: Duration::from_secs(1),
    max_connections: 2,
};

async fn listening(s: &Service) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, s.router.clone(), LIMITS, std::future::pending()));
    addr
}

/// Writes `sent`, then reads until the server closes; how long that took and what came.
fn held_for(addr: SocketAddr, sent: &[u8]) -> (Duration, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let started = Instant::now();
    c.write_all(sent).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&got).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_headers_are_cut_off() {
    let s = service();
    let addr = listening(&s).await;
    let (took, _) =
        tokio::task::spawn_blocking(move || held_for(addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\n")).await.unwrap();
    assert!(took < Duration::from_secs(3), "incomplete headers held the connection for {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_from_an_authenticated_reviewer_is_cut_off() {
    let s = service();
    let addr = listening(&s).await;
    let head = "POST /v1/approvals/apr_x/approve HTTP/1.1\r\nhost: x\r\nauthorization: Bearer bob-key\r\n\
                content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"comm";
    let (took, answer) = tokio::task::spawn_blocking(move || held_for(addr, head.as_bytes())).await.unwrap();
    assert!(took < Duration::from_secs(3), "a slow body held the connection for {took:?}");
    assert!(answer.is_empty() || !answer.starts_with("HTTP/1.1 2"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped() {
    let s = service();
    let addr = listening(&s).await;
    // Two idle connections take both slots...
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a third is not served until they are cut off.
    let (took, answer) = tokio::task::spawn_blocking(move || {
        held_for(addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took >= Duration::from_millis(500), "served at once past the cap ({took:?})");
    drop(idle);
}
