//! The examples run and say what they claim.
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[tokio::test(start_paused = true)]
async fn quickstart_sends_only_to_the_half_that_opted_in() {
    let report = quickstart::run(7).await.unwrap();
    assert_eq!(report.audience, 200);
    assert_eq!(report.skipped.get("no_consent"), Some(&100));
    assert!(report.sent > 90, "sent {}", report.sent);
    assert!(report.accounts_for_everyone());
    assert_eq!(report.variants.len(), 2);
}
