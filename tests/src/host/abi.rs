//! The proxy-wasm ABI 0.2.1 numbers and the map wire format, as the Rust SDK 0.2.5 and
//! Envoy (proxy-wasm-cpp-host) use them. Nothing here touches wasmtime.

/// `WasmResult` codes the host returns from every `proxy_*` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

/// Header map types (`proxy_*_header_map_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    GrpcInitialMetadata,
    GrpcTrailingMetadata,
    CallResponseHeaders,
    CallResponseTrailers,
}

impl MapType {
    pub(crate) fn from_raw(raw: i32) -> Option<MapType> {
        Some(match raw {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 => MapType::GrpcInitialMetadata,
            5 => MapType::GrpcTrailingMetadata,
            6 => MapType::CallResponseHeaders,
            7 => MapType::CallResponseTrailers,
            _ => return None,
        })
    }
}

/// Buffer types (`proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BufferType {
    RequestBody,
    ResponseBody,
    DownstreamData,
    UpstreamData,
    CallResponseBody,
    GrpcReceiveBuffer,
    VmConfiguration,
    PluginConfiguration,
    CallData,
}

impl BufferType {
    pub(crate) fn from_raw(raw: i32) -> Option<BufferType> {
        Some(match raw {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::CallResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// Stream types (`proxy_continue_stream` / `proxy_close_stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamType {
    Request,
    Response,
    Downstream,
    Upstream,
}

impl StreamType {
    pub(crate) fn from_raw(raw: i32) -> Option<StreamType> {
        Some(match raw {
            0 => StreamType::Request,
            1 => StreamType::Response,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// What a stream callback returned (`Action` in the SDK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Continue,
    Pause,
}

impl Action {
    /// Envoy treats every value other than 0 as a kind of "stop".
    pub(crate) fn from_raw(raw: i32) -> Action {
        if raw == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// Encodes pairs in the proxy-wasm map format: a u32 count, then a u32 key length and a
/// u32 value length per pair, then each key and value followed by a NUL byte. All
/// integers little-endian (this is what the SDK's `deserialize_map` reads).
pub(crate) fn encode_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let data: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Decodes the proxy-wasm map format the guest sends (`serialize_map` in the SDK).
/// Returns `None` when the bytes are malformed; the empty input is the empty map.
pub(crate) fn decode_pairs(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    // Each pair needs at least 8 size bytes and 2 NULs: reject absurd counts up front.
    if count > bytes.len() / 10 + 1 {
        return None;
    }
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(count);
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)? as usize;
        let value_len = read_u32(bytes, 8 + n * 8)? as usize;
        let key = bytes.get(data..data.checked_add(key_len)?)?.to_vec();
        data = data.checked_add(key_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?.to_vec();
        data = data.checked_add(value_len + 1)?;
        pairs.push((key, value));
    }
    if data > bytes.len() {
        return None;
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// Lengths inside a 32-bit guest always fit; saturate rather than panic if not.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The exact bytes the SDK's own unit test uses for its `deserialize_map`.
    #[rustfmt::skip]
    const SDK_SERIALIZED: &[u8] = &[
        4, 0, 0, 0,
        7, 0, 0, 0, 3, 0, 0, 0,
        5, 0, 0, 0, 8, 0, 0, 0,
        10, 0, 0, 0, 11, 0, 0, 0,
        10, 0, 0, 0, 10, 0, 0, 0,
        58, 109, 101, 116, 104, 111, 100, 0,
        71, 69, 84, 0,
        58, 112, 97, 116, 104, 0,
        47, 98, 121, 116, 101, 115, 47, 49, 0,
        58, 97, 117, 116, 104, 111, 114, 105, 116, 121, 0,
        104, 116, 116, 112, 98, 105, 110, 46, 111, 114, 103, 0,
        80, 111, 119, 101, 114, 101, 100, 45, 66, 121, 0,
        112, 114, 111, 120, 121, 45, 119, 97, 115, 109, 0,
    ];

    fn sample() -> Vec<(String, Vec<u8>)> {
        [(":method", "GET"), (":path", "/bytes/1"), (":authority", "httpbin.org"), ("Powered-By", "proxy-wasm")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn encodes_like_the_sdk() {
        assert_eq!(encode_pairs(&sample()), SDK_SERIALIZED);
        assert_eq!(encode_pairs(&[]), [0, 0, 0, 0]);
    }

    #[test]
    fn decodes_what_the_sdk_sends() {
        let decoded = decode_pairs(SDK_SERIALIZED).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = sample().into_iter().map(|(k, v)| (k.into_bytes(), v)).collect();
        assert_eq!(decoded, expected);
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
        assert_eq!(decode_pairs(&[0, 0, 0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn rejects_truncated_maps() {
        for cut in 1..SDK_SERIALIZED.len() {
            assert!(decode_pairs(&SDK_SERIALIZED[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode_pairs(&[255, 255, 255, 255]).is_none());
    }
}
