//! The examples run and say what they claim.
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[path = "../examples/telegram_bot.rs"]
mod telegram_bot;

#[tokio::test(start_paused = true)]
async fn quickstart_sends_only_to_the_half_that_opted_in() {
    let report = quickstart::run(7).await.unwrap();
    assert_eq!(report.audience, 200);
    assert_eq!(report.skipped.get("no_consent"), Some(&100));
    assert!(report.sent > 90, "sent {}", report.sent);
    assert!(report.accounts_for_everyone());
    assert_eq!(report.variants.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_bot_answers_only_people_who_wrote_first() {
    use mia::{ConsentStatus, ConsentStore, ContactStore, TelegramPeer};
    let (fake, store) = telegram_bot::demo().await.unwrap();
    let ana = fake.texts_to(1001);
    assert_eq!(ana.len(), 1, "{ana:?}");
    assert!(
        ana[0].contains("consent for marketing: given"),
        "{}",
        ana[0]
    );
    assert!(ana[0].contains("privacy@shop.example"), "{}", ana[0]);
    assert_eq!(fake.texts_to(1002).len(), 1, "one STOP confirmation");
    assert!(
        fake.texts_to(1003).is_empty(),
        "nothing to someone who did not opt in"
    );

    let ben = store
        .contact_by_peer(&TelegramPeer::user(1002))
        .await
        .unwrap()
        .unwrap();
    let history = store.consent_history(&ben.id).await.unwrap();
    assert_eq!(history.first().unwrap().purpose.as_str(), "spring_sale");
    assert_eq!(history.last().unwrap().status, ConsentStatus::Withdrawn);
    assert!(
        store
            .contact_by_peer(&TelegramPeer::user(1003))
            .await
            .unwrap()
            .is_none()
    );
}
