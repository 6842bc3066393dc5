//! The approval service's request bodies, read into the handlers' own types: the
//! gateway's create-or-find, redeem and decision-log batches, and a reviewer's
//! approve/deny.
#![no_main]
use airlock_approval_svc::api::fuzzing::{gateway, review_comment};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = gateway::create(data);
    let _ = gateway::redeem(data);
    let _ = review_comment(data);
    if let Ok(records) = gateway::decisions(data) {
        // A record stores as what it read: its stored form is a batch of its own that
        // reads back the same.
        let batch = serde_json::to_vec(&serde_json::json!({"records": records})).unwrap();
        let again = gateway::decisions(&batch).expect("a stored record reads back");
        assert_eq!(again, records);
        for r in &records {
            assert!(matches!(r, Value::Object(_)));
            let id = r["decision_id"].as_str().unwrap();
            assert!(!id.is_empty() && id.len() <= 256);
        }
    }
});
