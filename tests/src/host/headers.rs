//! An ordered header multimap with Envoy's semantics: names are lower-cased on the way
//! in, repeated names stay separate entries, values are bytes (HTTP/1 allows obs-text).

use super::abi::encode_pairs;

/// How `proxy_get_header_map_value` answers for a header that appears more than once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepeatedHeaderGet {
    /// What Envoy does (`getHeaderMapValue` returns `entry[0]`; its source carries a TODO
    /// calling this "a potential security issue"): only the first value. A filter that
    /// must notice duplicates has to read all pairs.
    #[default]
    FirstValue,
    /// The values joined with `,` (what an RFC 9110 recipient may do). Not Envoy.
    JoinedWithComma,
}

/// Ordered `(name, value)` entries; names lower-case.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

/// Values as text (lossy), so assertion failures are readable.
impl std::fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|(k, v)| (k, String::from_utf8_lossy(v)))).finish()
    }
}

impl HeaderMap {
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// Adds an entry at the end (Envoy `addCopy`).
    pub fn add(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.entries.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Removes every entry with this name, then adds one (Envoy `setCopy` with
    /// `http_set_copy_replace_all_headers`, the default since 1.2x).
    pub fn replace(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.add(name, value);
    }

    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != name);
    }

    /// Every value of `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_slice()).collect()
    }

    /// The value a guest sees through `proxy_get_header_map_value`.
    pub fn get_as_guest_sees(&self, name: &str, mode: RepeatedHeaderGet) -> Option<Vec<u8>> {
        let values = self.values(name);
        match (values.first(), mode) {
            (None, _) => None,
            (Some(first), RepeatedHeaderGet::FirstValue) => Some(first.to_vec()),
            (Some(_), RepeatedHeaderGet::JoinedWithComma) => Some(values.join(&b","[..])),
        }
    }

    /// All values of `name` joined with `,` as text (lossy), for test assertions.
    pub fn get(&self, name: &str) -> Option<String> {
        let values = self.values(name);
        if values.is_empty() {
            return None;
        }
        Some(String::from_utf8_lossy(&values.join(&b","[..])).into_owned())
    }

    pub fn contains(&self, name: &str) -> bool {
        !self.values(name).is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries as text (values decoded lossily), in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.entries.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect()
    }

    /// Entries with their raw values, in order.
    pub fn raw_pairs(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// Replaces every entry (Envoy `setHeaderMapPairs`: remove all, then add each).
    pub(crate) fn set_all(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        self.entries.clear();
        for (k, v) in pairs {
            self.add(&String::from_utf8_lossy(&k), v);
        }
    }

    /// The proxy-wasm map encoding of all entries.
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_pairs(&self.entries)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in iter {
            map.add(k.as_ref(), v.as_ref().to_vec());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_lower_cased_and_repeats_kept() {
        let mut map = HeaderMap::new();
        map.add("X-Agent", "a");
        map.add("x-agent", "b");
        assert_eq!(map.values("X-AGENT"), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(map.get_as_guest_sees("x-agent", RepeatedHeaderGet::FirstValue), Some(b"a".to_vec()));
        assert_eq!(map.get_as_guest_sees("x-agent", RepeatedHeaderGet::JoinedWithComma), Some(b"a,b".to_vec()));
        assert_eq!(map.get("x-agent").as_deref(), Some("a,b"));
    }

    #[test]
    fn replace_removes_every_copy() {
        let mut map: HeaderMap = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        map.replace("A", "9");
        assert_eq!(map.pairs(), vec![("b".into(), "2".into()), ("a".into(), "9".into())]);
    }
}
