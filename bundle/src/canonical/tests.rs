#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

const BOM_JSON: &[u8] = b"\xEF\xBB\xBF{\"b\": 1, \"a\": [true, false, null]}";

/// (file name, bytes, OPA's hash). The hashes come from tests/opa/bundle_hash.py
/// (`--vectors`), a step-by-step Python rendering of OPA's Go code (util.Unmarshal,
/// bundle/hash.go, encoding/json): the PyPI OPA library has no bundle API to ask.
const OPA_VECTORS: &[(&str, &[u8], &str)] = &[
    (
        "data.json",
        br#"{"price": 1.50, "rate": 0.10, "zero": -0, "big": 1E3, "exp": 1e+3, "neg": -2.50e-3}"#,
        "fe5da0a8d105d42711b6bb22441f8035b845d19ba2d2a18aa32f73d864a916f7",
    ),
    (
        "data.json",
        b"[1, 1.0, 1.00, 100, 1e2, 12345678901234567890123456789, 0.1000000000000000055511151231257827]",
        "06e1ec27f906a2f0457b778d7f7ff3781be1ce78d3bcedf9597b0219af9a3589",
    ),
    ("data.json", BOM_JSON, "087e44ed138472a81a4a0f8ae84e8f358d0d957d27f51123952aa88c007b1f9f"),
    (
        "data.json",
        br#"{"b": 1, "a": [true, false, null]}"#,
        "087e44ed138472a81a4a0f8ae84e8f358d0d957d27f51123952aa88c007b1f9f",
    ),
    (
        "x/data.json",
        br#"{"s": "<&> \u00e9 \/ \b\f\n\r\t \u0001 \u007f \u2028\u2029 \ud83d\ude00"}"#,
        "52f89ae4d87a84c8850dad5c71bc5b2e60966b6d9b5d5a08e266d74e59090fab",
    ),
    (
        "x/data.json",
        br#"{"lone": "\ud800", "low": "\udc00x", "hi-then-other": "\ud800\u0041"}"#,
        "98e56d7477e0c82f33843e80f486af05d359e7454fc4d74244961510df935807",
    ),
    (
        "x/data.json",
        b"{\"bad\": \"a\xffb\xe2\x82c\xed\xa0\x80\"}",
        "8d57bf69b2adbe274115250fa2662a69e52c63f054ab051bb37e524b201f985b",
    ),
    (
        "x/data.json",
        b"{\"k\": 1, \"k\": 2, \"\xc3\xa9\": 0, \"z\": 0, \"Z\": 0}",
        "338c262cafe54f19254ae862cde3cae8c882530092d76da64b185a94581bc370",
    ),
    (
        ".manifest",
        br#"{"revision": "r1", "roots": ["airlock"], "metadata": {"n": 2.0}}"#,
        "75d7a8e2f58971e3b6cd58cad9b92e9fb44f6117b1af09cbee25a144e2d8935c",
    ),
    (
        "airlock/policy.rego",
        b"\xEF\xBB\xBFpackage airlock\n",
        "36da9baf296cea59674c08a3e11deff43b9360db51e3ac6b2416b1523b528dbe",
    ),
];

#[test]
fn hashes_match_opa_vectors() {
    for (name, bytes, want) in OPA_VECTORS {
        assert_eq!(file_hash(name, bytes).unwrap(), *want, "{name}: {}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn numbers_are_hashed_as_written() {
    // OPA decodes with json.Number: `1.50` and `1.5` are different files to sign.
    let spelled = |n: &str| file_hash("data.json", format!(r#"{{"n": {n}}}"#).as_bytes()).unwrap();
    for n in ["1.50", "0.10", "-0", "1E3", "1e+3", "100000000000000000000000000000001"] {
        assert_eq!(spelled(n), hex::encode(Sha256::digest(format!(r#"{{"n":{n}}}"#))), "{n}");
    }
    assert_ne!(spelled("1.50"), spelled("1.5"));
    assert_ne!(spelled("-0"), spelled("0"));
}

#[test]
fn a_leading_bom_is_not_hashed_in_json_documents_only() {
    assert_eq!(file_hash("data.json", BOM_JSON).unwrap(), file_hash("data.json", &BOM_JSON[3..]).unwrap());
    assert_eq!(file_hash(".manifest", BOM_JSON).unwrap(), file_hash(".manifest", &BOM_JSON[3..]).unwrap());
    assert_ne!(file_hash("p.rego", BOM_JSON).unwrap(), file_hash("p.rego", &BOM_JSON[3..]).unwrap());
    // Only one, only leading.
    assert!(file_hash("data.json", b"\xEF\xBB\xBF\xEF\xBB\xBF{}").is_err());
    assert!(file_hash("data.json", b"{}\xEF\xBB\xBF").is_err());
}

#[test]
fn structured_files_hash_their_canonical_form() {
    let a = file_hash("x/data.json", br#"{"b": [1, "<&>"], "a": {"d": null, "c": true}}"#).unwrap();
    let b = file_hash("x/data.json", b"{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"<&>\"]}").unwrap();
    assert_eq!(a, b, "whitespace and key order do not matter");
    let canonical = br#"{"a":{"c":true,"d":null},"b":[1,"<&>"]}"#;
    assert_eq!(a, hex::encode(Sha256::digest(canonical)));
    // Other files: the bytes.
    assert_eq!(file_hash("p.rego", b"x").unwrap(), hex::encode(Sha256::digest(b"x")));
    assert!(matches!(file_hash(".manifest", b"{"), Err(BundleError::BadFile { .. })));
}

#[test]
fn what_json_valid_refuses_is_refused() {
    let bad: &[&[u8]] = &[
        b"",
        b" ",
        b"{} {}",
        b"[1,]",
        b"{\"a\":1,}",
        b"{a: 1}",
        b"01",
        b"1.",
        b".5",
        b"1e",
        b"+1",
        b"-",
        b"NaN",
        b"Infinity",
        b"tru",
        b"nulll",
        b"'x'",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\\ud800\\u12G4\"",
        b"\"tab\there\"",
        b"\"unterminated",
        b"[1] // comment",
    ];
    for doc in bad {
        let got = file_hash("data.json", doc);
        assert!(matches!(got, Err(BundleError::BadFile { .. })), "{:?} must be refused", String::from_utf8_lossy(doc));
    }
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(file_hash("data.json", deep.as_bytes()).is_err());
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(file_hash("data.json", ok.as_bytes()).is_ok());
}

#[test]
fn strings_escape_as_go_does() {
    let mut h = Sha256::new();
    string("a\"\\\n\u{1}\u{2028}é", &mut h);
    assert_eq!(h.finalize().as_slice(), Sha256::digest("\"a\\\"\\\\\\n\\u0001\\u2028é\"".as_bytes()).as_slice());
}
