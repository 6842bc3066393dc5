//! What the core needs from the host about the current request.
//!
//! The proxy-wasm glue implements this over hostcalls, reading one value per call so
//! the request path copies only what the policy and digest need; native tests
//! implement it over plain maps.

/// Read access to the request as the gateway holds it.
pub trait RequestSource {
    /// One request header by lower-case name. Repeated headers must come back joined
    /// with `,` so a repeat is visible to the caller (Envoy's own single-value read
    /// would hide it).
    fn header(&self, name: &str) -> Option<String>;
    /// Every request header, lower-case names, in order.
    fn headers(&self) -> &[(String, String)];
    /// A host property such as `["connection", "uri_san_peer_certificate"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// All values of header `name` joined with `,` (how repeats become visible).
pub fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for (n, v) in headers {
        if n == name {
            match &mut out {
                Some(s) => {
                    s.push(',');
                    s.push_str(v);
                }
                None => out = Some(v.clone()),
            }
        }
    }
    out
}

#[cfg(test)]
pub mod fake {
    //! A map-backed request for native tests.
    use super::RequestSource;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Clone)]
    pub struct FakeRequest {
        pub headers: Vec<(String, String)>,
        pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    }

    impl FakeRequest {
        pub fn new(method: &str, authority: &str, path: &str) -> Self {
            FakeRequest::default()
                .with(":method", method)
                .with(":authority", authority)
                .with(":path", path)
                .with(":scheme", "http")
        }

        pub fn with(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_string(), value.to_string()));
            self
        }

        pub fn with_property(mut self, path: &[&str], value: &[u8]) -> Self {
            self.properties.insert(path.iter().map(|s| s.to_string()).collect(), value.to_vec());
            self
        }
    }

    impl RequestSource for FakeRequest {
        fn header(&self, name: &str) -> Option<String> {
            super::joined(&self.headers, name)
        }
        fn headers(&self) -> &[(String, String)] {
            &self.headers
        }
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            self.properties.get(&key).cloned()
        }
    }
}
