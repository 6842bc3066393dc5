//! Properties (`proxy_get_property` / `proxy_set_property`). Paths arrive as their parts
//! joined with NUL, e.g. `connection\0uri_san_peer_certificate`. Lookup order: what the
//! test set on this request, what it set on the host, then the `request.*` attributes
//! Envoy derives from the request headers.

use anyhow::Result;
use wasmtime::Caller;

use super::{hostcall, Registrar};
use crate::host::abi::Status;
use crate::host::headers::HeaderMap;
use crate::host::memory::{copy_out, read};
use crate::host::state::HostState;

pub(super) fn define(reg: &mut Registrar<'_>) -> Result<()> {
    reg.func("env", "proxy_get_property", |mut c: Caller<'_, HostState>, pp: i32, ps: i32, rp: i32, rs: i32| {
        hostcall(&mut c, "proxy_get_property", |c| {
            let path = read(c, pp, ps)?;
            let value = lookup(c.data(), &path).ok_or(Status::NotFound)?;
            // An empty value reaches the SDK as a null pointer, i.e. `None`.
            copy_out(c, &value, rp, rs)
        })
    })?;
    reg.func("env", "proxy_set_property", |mut c: Caller<'_, HostState>, pp: i32, ps: i32, vp: i32, vs: i32| {
        hostcall(&mut c, "proxy_set_property", |c| {
            let path = read(c, pp, ps)?;
            let value = read(c, vp, vs)?;
            let state = c.data_mut();
            match state.active_stream() {
                Some(stream) => {
                    stream.borrow_mut().properties.insert(path, value);
                }
                None => {
                    state.properties.insert(path, value);
                }
            }
            Ok(())
        })
    })
}

fn lookup(state: &HostState, path: &[u8]) -> Option<Vec<u8>> {
    let stream = state.active_stream();
    if let Some(stream) = &stream {
        if let Some(v) = stream.borrow().properties.get(path) {
            return Some(v.clone());
        }
    }
    if let Some(v) = state.properties.get(path) {
        return Some(v.clone());
    }
    let stream = stream?;
    let s = stream.borrow();
    request_attribute(&s.request_headers, path)
}

/// The `request.*` attributes Envoy computes from the request headers.
fn request_attribute(headers: &HeaderMap, path: &[u8]) -> Option<Vec<u8>> {
    let name = path.strip_prefix(b"request\0")?;
    let first = |h: &str| headers.values(h).first().map(|v| v.to_vec());
    let full_path = first(":path");
    let split = |want_query: bool| {
        full_path.as_ref().map(|p| {
            let at = p.iter().position(|b| *b == b'?').unwrap_or(p.len());
            if want_query {
                p.get(at + 1..).unwrap_or_default().to_vec()
            } else {
                p[..at].to_vec()
            }
        })
    };
    match name {
        b"path" => full_path.clone(),
        b"url_path" => split(false),
        b"query" => split(true),
        b"host" => first(":authority"),
        b"scheme" => first(":scheme"),
        b"method" => first(":method"),
        b"id" => first("x-request-id"),
        b"useragent" => first("user-agent"),
        b"referer" => first("referer"),
        _ => None,
    }
}
