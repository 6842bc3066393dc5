//! Signed webhooks with the REAL approval service (`airlock serve`) and local receivers
//! that verify every delivery as `docs/channels/webhook.md` tells receivers to: a created
//! approval arrives as a correctly signed `approval.requested`, a decision as
//! `approval.updated`; a receiver answering 500 is retried (same delivery id) while the
//! approval stays decidable; a 4xx is not retried; an `events` filter is honoured.
//!
//! Approvals are created through the service's signed gateway API. Needs
//! `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::service::{status_of, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::fakes::webhook::{Delivery, WebhookReceiver};

use crate::slack::create_approval;

const GROUP: &str = "data-owners";
const BOB: &str = "bob@hooks.e2e.example";
const ALICE: &str = "alice@hooks.e2e.example";
const SECRET: &str = "whsec-e2e-0123456789abcdef";
const FLAKY_SECRET: &str = "whsec-e2e-flaky-fedcba9876543210";
const API_URL: &str = "https://airlock.e2e.example";
/// Bound on waiting for deliveries (the outbox backs off 0.5 s, 1 s, 2 s, ...).
const SETTLE: Duration = Duration::from_secs(20);

struct Fixture {
    svc: AirlockService,
    /// Every event.
    main: WebhookReceiver,
    /// Answers what each case tells it to.
    flaky: WebhookReceiver,
    /// `events = ["approval.requested"]`.
    requested_only: WebhookReceiver,
}

#[test]
fn webhook() {
    let started = Instant::now();
    let main = WebhookReceiver::start(SECRET.as_bytes()).unwrap();
    let flaky = WebhookReceiver::start(FLAKY_SECRET.as_bytes()).unwrap();
    let requested_only = WebhookReceiver::start(SECRET.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flaky_secret_file = dir.path().join("flaky.secret");
    std::fs::write(&flaky_secret_file, format!("{FLAKY_SECRET}\n")).unwrap();
    let extra_toml = format!(
        "\n[[webhooks]]\nname = \"main\"\nurl = {:?}\nsecret_env = \"AIRLOCK_E2E_WEBHOOK_SECRET\"\napi_url = {API_URL:?}\n\
         \n[[webhooks]]\nname = \"flaky\"\nurl = {:?}\nsecret_file = {:?}\ntimeout = \"3s\"\n\
         \n[[webhooks]]\nname = \"requested-only\"\nurl = {:?}\nsecret_env = \"AIRLOCK_E2E_WEBHOOK_SECRET\"\nevents = [\"approval.requested\"]\n",
        main.url(),
        flaky.url(),
        flaky_secret_file.display().to_string(),
        requested_only.url(),
    );
    let opts = ServiceOptions {
        reviewers: vec![Reviewer::new(BOB, &[GROUP]), Reviewer::new(ALICE, &[GROUP])],
        extra_toml,
        extra_env: vec![("AIRLOCK_E2E_WEBHOOK_SECRET".into(), SECRET.into())],
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("webhook", &opts).unwrap();
    eprintln!("[e2e_webhook] setup {:.1?}", started.elapsed());
    let fx = Fixture { svc, main, flaky, requested_only };
    let all: &[Case<Fixture>] = &[
        ("requested_then_updated_signed", requested_then_updated_signed),
        ("server_error_is_retried_and_approval_unaffected", server_error_is_retried_and_approval_unaffected),
        ("client_error_is_not_retried", client_error_is_not_retried),
    ];
    let outcome = cases::run("e2e_webhook", &fx, all, |_| {});
    eprintln!("[e2e_webhook] total {:.1?}", started.elapsed());
    drop(dir);
    outcome.unwrap();
}

fn bob(svc: &AirlockService) -> String {
    svc.reviewer(BOB).unwrap().api_key.clone()
}

fn events(got: &[Delivery]) -> Vec<&str> {
    got.iter().filter_map(|d| d.event.as_deref()).collect()
}

fn requested_then_updated_signed(fx: &Fixture) {
    let id = create_approval(&fx.svc, "hook-flow", ALICE);
    let got = fx.main.wait_for(&id, SETTLE, |d| !d.is_empty());
    let first = got.first().unwrap_or_else(|| panic!("no delivery for {id}"));
    assert!(first.verified, "signature and timestamp verify: {first:?}");
    assert_eq!(first.answered, 200);
    assert_eq!(first.event.as_deref(), Some("approval.requested"));
    assert_eq!(first.body["event"], "approval.requested");
    assert_eq!(first.body["delivery_id"].as_str(), first.delivery_id.as_deref());
    let a = &first.body["approval"];
    assert_eq!(a["status"], "pending");
    assert_eq!(a["owner"], ALICE);
    assert_eq!(a["request"]["host"], "api.e2e.test");
    assert_eq!(a["request"]["path"], "/v1/exports");
    assert_eq!(a["request"]["body"]["customer"]["ssn"], "[REDACTED]", "the body as the gateway redacted it");
    assert_eq!(a["quorum"], 1);
    assert_eq!(first.body["links"]["approval"], format!("{API_URL}/v1/approvals/{id}"));
    assert_eq!(first.body["links"]["approve"], format!("{API_URL}/v1/approvals/{id}/approve"));

    // Decisions come back through the reviewer API; the receiver hears about them.
    let resp = fx.svc.approve(&id, &bob(&fx.svc)).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = fx.main.wait_for(&id, SETTLE, |d| events(d).contains(&"approval.updated"));
    let updated = got.iter().find(|d| d.event.as_deref() == Some("approval.updated")).expect("approval.updated");
    assert!(updated.verified, "{updated:?}");
    assert_eq!(updated.body["approval"]["status"], "approved");
    let reviews = updated.body["approval"]["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["reviewer"], BOB);
    assert_eq!(reviews[0]["vote"], "approve");
    assert_eq!(reviews[0]["channel"], "api");
    assert_ne!(updated.delivery_id, first.delivery_id, "one delivery id per event");

    // The secret-file webhook got the same events; the filtered one only the request.
    let flaky = fx.flaky.wait_for(&id, SETTLE, |d| events(d).contains(&"approval.updated"));
    assert!(flaky.iter().all(|d| d.verified), "{flaky:?}");
    assert_eq!(events(&flaky), ["approval.requested", "approval.updated"]);
    // The update went to every webhook in the same outbox pass as the ones seen above.
    let filtered = fx.requested_only.wait_for(&id, SETTLE, |d| !d.is_empty());
    assert_eq!(events(&filtered), ["approval.requested"], "events filter honoured");
}

fn server_error_is_retried_and_approval_unaffected(fx: &Fixture) {
    fx.flaky.answer_next(&[500, 500]);
    let id = create_approval(&fx.svc, "hook-retry", ALICE);
    let got = fx.flaky.wait_for(&id, SETTLE, |d| d.iter().any(|d| d.answered == 200));
    assert_eq!(got.iter().map(|d| d.answered).collect::<Vec<_>>(), [500, 500, 200], "retried until accepted");
    assert!(got.iter().all(|d| d.verified && d.event.as_deref() == Some("approval.requested")), "{got:?}");
    let ids: Vec<_> = got.iter().map(|d| d.delivery_id.clone()).collect();
    assert!(ids.iter().all(|i| i.is_some() && *i == ids[0]), "retries share the delivery id: {ids:?}");
    let shown = fx.svc.show(&id, &bob(&fx.svc)).unwrap();
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    let resp = fx.svc.approve(&id, &bob(&fx.svc)).unwrap();
    assert_eq!(resp.status, 200, "still decidable: {}", resp.text());
}

fn client_error_is_not_retried(fx: &Fixture) {
    // Let earlier events to the flaky receiver settle before arming it.
    std::thread::sleep(Duration::from_secs(2));
    fx.flaky.answer_next(&[404]);
    let id = create_approval(&fx.svc, "hook-404", ALICE);
    let got = fx.flaky.wait_for(&id, SETTLE, |d| !d.is_empty());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].answered, 404);
    // Longer than the first two backoff steps: a retry would have come by now.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fx.flaky.deliveries_for(&id).len(), 1, "a 4xx is permanent");
    assert!(fx.main.wait_for(&id, SETTLE, |d| !d.is_empty()).iter().all(|d| d.verified));
    let shown = fx.svc.show(&id, &bob(&fx.svc)).unwrap();
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
}
