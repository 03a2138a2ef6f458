//! The examples run and say what they claim.
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[path = "../examples/telegram_bot.rs"]
mod telegram_bot;

#[path = "../examples/custom_transport.rs"]
mod custom_transport;

#[path = "../examples/lead_qualifier.rs"]
mod lead_qualifier;

#[path = "../examples/channel_broadcast.rs"]
mod channel_broadcast;

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

#[tokio::test]
async fn a_custom_transport_keeps_the_contract() {
    use mia::telegram::contract::transport_contract;
    transport_contract(&custom_transport::Harness(
        custom_transport::StagingTransport::default(),
    ))
    .await;
}

/// The contract can fail: a transport that posts a resent key again is caught.
#[tokio::test]
#[should_panic(expected = "a resend of the same key must return the first message")]
async fn the_contract_catches_a_transport_that_posts_twice() {
    use mia::telegram::contract::{ContractHarness, transport_contract};
    use mia::{OutboundMessage, Result, SendOutcome, Transport};
    struct Forgetful(custom_transport::Harness);
    #[async_trait::async_trait]
    impl Transport for Forgetful {
        fn name(&self) -> &str {
            "forgetful"
        }
        async fn send(&self, m: &OutboundMessage) -> Result<SendOutcome> {
            let mut m = m.clone();
            m.key = mia::IdempotencyKey::new(format!("{}:{}", m.key, rand::random::<u64>()));
            self.0.transport().send(&m).await
        }
    }
    struct H(Forgetful);
    #[async_trait::async_trait]
    impl ContractHarness for H {
        fn transport(&self) -> &dyn Transport {
            &self.0
        }
        async fn user_writes(&self, user: i64, text: &str) {
            self.0.0.user_writes(user, text).await;
        }
        async fn user_blocks(&self, user: i64) {
            self.0.0.user_blocks(user).await;
        }
        async fn rate_limit_next_send(&self, user: i64, secs: u64) {
            self.0.0.rate_limit_next_send(user, secs).await;
        }
        async fn advance(&self, by: std::time::Duration) {
            self.0.0.advance(by).await;
        }
        async fn posted_to(&self, user: i64) -> Vec<String> {
            self.0.0.posted_to(user).await
        }
        async fn user_replies(&self, user: i64, text: &str, reply_to: i64) {
            self.0.0.user_replies(user, text, reply_to).await;
        }
        async fn replies_posted_to(&self, user: i64) -> Vec<(i64, Option<i64>)> {
            self.0.0.replies_posted_to(user).await
        }
    }
    let inner = custom_transport::Harness(custom_transport::StagingTransport::default());
    transport_contract(&H(Forgetful(inner))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_qualifier_books_a_call_from_redacted_text_and_holds_the_injection() {
    let (fake, anthropic, bookings) = lead_qualifier::demo().await.unwrap();
    let texts = fake.texts_to(2001);
    assert_eq!(
        texts.len(),
        1,
        "one answer, none to the injection: {texts:?}"
    );
    assert!(texts[0].contains("Sales will call you"), "{}", texts[0]);
    let booked = bookings.lock().unwrap().clone();
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0].1["pairs"], 40);
    let asked = anthropic.received_requests().await.unwrap();
    assert_eq!(asked.len(), 2, "a tool round and the answer");
    let bodies: String = asked
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(bodies.contains("[EMAIL]"), "{bodies}");
    assert!(!bodies.contains("coach@club.example"), "{bodies}");
    assert!(
        !bodies.contains("90% discount"),
        "the injection never reached Claude"
    );
    assert!(bodies.contains("booked; sales will call"), "{bodies}");
}

#[tokio::test(start_paused = true)]
async fn channel_broadcast_guards_every_post_and_keeps_group_limits() {
    use mia::{Error, Posted};
    let demo = channel_broadcast::demo().await.unwrap();
    let outcome = |key: &str| {
        demo.outcomes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, o)| o.clone())
            .unwrap()
    };
    assert!(
        matches!(outcome("advent-1"), Posted::Sent { .. }),
        "{:?}",
        outcome("advent-1")
    );
    assert!(
        matches!(outcome("short"), Posted::Blocked { rule } if rule == "links"),
        "{:?}",
        outcome("short")
    );
    assert!(
        matches!(outcome("claim"), Posted::Held { rules } if rules.contains(&"risky_claims".to_owned())),
        "{:?}",
        outcome("claim")
    );
    assert!(
        matches!(outcome("late (deferred)"), Posted::Deferred { rule, .. } if rule == "quiet_hours"),
        "{:?}",
        outcome("late (deferred)")
    );
    assert!(matches!(outcome("late (retried)"), Posted::Sent { .. }));
    assert!(
        demo.burst_seconds >= 55,
        "25 posts to one group within {} s",
        demo.burst_seconds
    );
    assert!(
        matches!(demo.refused, Error::Refused(_)),
        "{}",
        demo.refused
    );
    let log = demo.telegram.sent_log();
    assert_eq!(log.len(), 2 + 25, "two channel posts and the burst");
    let group: Vec<_> = log.iter().filter(|m| m.peer.id == -100_888).collect();
    for window in group.windows(21) {
        let span = window[20].at.duration_since(window[0].at);
        assert!(
            span >= jiff::SignedDuration::from_mins(1),
            "21 posts within {span:#}"
        );
    }
}
