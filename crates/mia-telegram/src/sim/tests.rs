#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use mia_core::{CampaignId, ContactId, SimClock};

fn start() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn sim(config: SimConfig) -> (SimTelegram, Arc<SimClock>) {
    let clock = Arc::new(SimClock::starting_at(start()));
    (SimTelegram::new(config, clock.clone()).unwrap(), clock)
}

fn quiet_config() -> SimConfig {
    SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(7)
    }
}

fn msg(contact: &str, peer: TelegramPeer) -> OutboundMessage {
    let campaign = CampaignId::new("c");
    OutboundMessage::new(
        IdempotencyKey::for_job(&campaign, &ContactId::new(contact), 0),
        ContactId::new(contact),
        peer,
        "Hello. Reply STOP to unsubscribe.",
    )
    .with_campaign(campaign)
    .with_variant(VariantId::new("A"))
}

#[tokio::test(start_paused = true)]
async fn a_resent_key_posts_nothing_new() {
    let (tg, _) = sim(quiet_config());
    let m = msg("u1", TelegramPeer::user(1));
    let first = tg.send(&m).await.unwrap();
    let again = tg.send(&m).await.unwrap();
    assert_eq!(
        first,
        SendOutcome::Sent {
            message_id: 1,
            duplicate: false
        }
    );
    assert_eq!(
        again,
        SendOutcome::Sent {
            message_id: 1,
            duplicate: true
        }
    );
    assert_eq!(tg.sent_log().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn global_limit_answers_retry_after_like_telegram() {
    let (tg, _) = sim(quiet_config());
    for i in 0..30 {
        let out = tg
            .send(&msg(&format!("u{i}"), TelegramPeer::user(i)))
            .await
            .unwrap();
        assert!(matches!(out, SendOutcome::Sent { .. }), "{i}: {out:?}");
    }
    let over = tg.send(&msg("u30", TelegramPeer::user(30))).await.unwrap();
    assert_eq!(
        over,
        SendOutcome::RetryAfter {
            after: Duration::from_secs(1),
            reason: "Too Many Requests: retry after".into()
        }
    );
    assert_eq!(tg.rate_limited_count(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(matches!(
        tg.send(&msg("u30", TelegramPeer::user(30))).await.unwrap(),
        SendOutcome::Sent { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn per_chat_and_group_limits() {
    let (tg, _) = sim(quiet_config());
    let peer = TelegramPeer::user(5);
    let mut a = msg("a", peer);
    assert!(matches!(
        tg.send(&a).await.unwrap(),
        SendOutcome::Sent { .. }
    ));
    a.key = IdempotencyKey::new("second");
    assert!(matches!(
        tg.send(&a).await.unwrap(),
        SendOutcome::RetryAfter { .. }
    ));

    let group = TelegramPeer::group(-100);
    for i in 0..20 {
        let mut g = msg("g", group);
        g.key = IdempotencyKey::new(format!("g{i}"));
        assert!(
            matches!(tg.send(&g).await.unwrap(), SendOutcome::Sent { .. }),
            "{i}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut g = msg("g", group);
    g.key = IdempotencyKey::new("g20");
    match tg.send(&g).await.unwrap() {
        // 20 sends over 2 s: the first leaves the window 58 s from now.
        SendOutcome::RetryAfter { after, .. } => assert_eq!(after, Duration::from_secs(58)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn reactions_arrive_in_virtual_time_and_are_reproducible() {
    let behaviour = Behaviour {
        read: 1.0,
        clicked: 1.0,
        converted: 1.0,
        stop: 0.0,
        block: 0.0,
        delivered: 1.0,
        ..Behaviour::default()
    };
    let config = SimConfig {
        behaviour,
        ..quiet_config()
    };
    let run = |config: SimConfig| async move {
        let (tg, _) = sim(config);
        for i in 0..5 {
            tg.send(&msg(&format!("u{i}"), TelegramPeer::user(i)))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut all = tg.receive().await.unwrap();
        assert!(
            all.iter()
                .all(|e| matches!(e.kind, InboundKind::Delivered { .. })),
            "only deliveries are due this soon"
        );
        while let Some(wait) = tg.next_inbound_in() {
            tokio::time::sleep(wait).await;
            all.extend(tg.receive().await.unwrap());
        }
        all
    };
    let a = run(config.clone()).await;
    let b = run(config).await;
    let kinds = |evs: &[InboundEvent], name: &str| {
        evs.iter()
            .filter(|e| format!("{:?}", e.kind).starts_with(name))
            .count()
    };
    for k in ["Delivered", "Read", "Clicked", "Converted"] {
        assert_eq!(kinds(&a, k), 5, "{k}");
    }
    assert!(
        a.windows(2).all(|w| w[0].at <= w[1].at),
        "events come in time order"
    );
    let strip = |v: &[InboundEvent]| {
        v.iter()
            .map(|e| (e.at, e.peer, e.kind.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b), "same seed, same world");
}

#[tokio::test(start_paused = true)]
async fn scripted_failures_and_chat_fates() {
    let (tg, _) = sim(quiet_config());
    let peer = TelegramPeer::user(9);
    tg.script(
        peer,
        [
            Scripted::Outage,
            Scripted::Outcome(SendOutcome::Failed(FailureReason::SpamLimited)),
        ],
    );
    let err = tg.send(&msg("u9", peer)).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        tg.send(&msg("u9", peer)).await.unwrap(),
        SendOutcome::Failed(FailureReason::SpamLimited)
    );
    assert!(matches!(
        tg.send(&msg("u9", peer)).await.unwrap(),
        SendOutcome::Sent { .. }
    ));

    let (all_gone, _) = sim(SimConfig {
        deactivated_share: 1.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(1)
    });
    assert_eq!(
        all_gone
            .send(&msg("x", TelegramPeer::user(3)))
            .await
            .unwrap(),
        SendOutcome::Failed(FailureReason::Deactivated)
    );
    assert!(all_gone.sent_log().is_empty());
}

#[tokio::test(start_paused = true)]
async fn chat_admin_edits_pins_and_deletes_its_own_messages() {
    let (tg, _) = sim(quiet_config());
    let peer = TelegramPeer::user(1);
    tg.send(&msg("u1", peer)).await.unwrap();
    tg.edit_message(peer, 1, "Edited").await.unwrap();
    tg.pin_message(peer, 1).await.unwrap();
    tg.delete_message(peer, 1).await.unwrap();
    let log = tg.sent_log();
    assert_eq!(
        (log[0].text.as_str(), log[0].pinned, log[0].deleted),
        ("Edited", true, true)
    );
    assert!(matches!(
        tg.edit_message(peer, 1, "x").await,
        Err(mia_core::Error::NotFound { .. })
    ));
    assert!(
        tg.pin_message(TelegramPeer::user(2), 1).await.is_err(),
        "another chat's id"
    );
}

#[test]
fn invalid_configs_are_rejected() {
    let clock = Arc::new(SimClock::starting_at(start()));
    let bad = SimConfig {
        behaviour: Behaviour {
            read: 1.5,
            ..Behaviour::default()
        },
        ..SimConfig::default()
    };
    assert!(
        SimTelegram::new(bad, clock.clone())
            .unwrap_err()
            .to_string()
            .contains("read")
    );
    let bad = SimConfig {
        deactivated_share: -0.1,
        ..SimConfig::default()
    };
    assert!(SimTelegram::new(bad, clock).is_err());
}

#[tokio::test(start_paused = true)]
async fn commands_are_parsed_from_user_text() {
    let (tg, _) = sim(quiet_config());
    tg.user_writes(TelegramPeer::user(4), "/start spring_sale");
    tg.user_writes(TelegramPeer::user(4), "STOP");
    let got = tg.receive().await.unwrap();
    assert_eq!(
        got[0].kind,
        InboundKind::Command {
            name: "start".into(),
            payload: "spring_sale".into()
        }
    );
    assert_eq!(
        got[1].kind,
        InboundKind::Text {
            text: "STOP".into(),
            reply_to: None
        }
    );
    assert_ne!(got[0].id, got[1].id);
}

#[tokio::test(start_paused = true)]
async fn a_journal_survives_the_process_and_a_torn_line_is_dropped() {
    let dir = std::env::temp_dir().join(format!("mia-sim-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("telegram.jsonl");
    let _ = std::fs::remove_file(&path);
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(start()));
    let first = SimTelegram::with_journal(quiet_config(), clock.clone(), &path).unwrap();
    let a = msg("a", TelegramPeer::user(1));
    let b = msg("b", TelegramPeer::user(2));
    first.send(&a).await.unwrap();
    first.send(&b).await.unwrap();
    drop(first);
    // A process died halfway through writing a third line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"message_id\":3,\"ke").unwrap();
    }
    let second = SimTelegram::with_journal(quiet_config(), clock.clone(), &path).unwrap();
    assert_eq!(second.sent_log().len(), 2);
    assert_eq!(
        second.send(&a).await.unwrap(),
        SendOutcome::Sent {
            message_id: 1,
            duplicate: true
        },
        "a resend after the restart is recognised"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = msg("c", TelegramPeer::user(3));
    assert_eq!(
        second.send(&c).await.unwrap(),
        SendOutcome::Sent {
            message_id: 3,
            duplicate: false
        }
    );
    drop(second);
    let third = SimTelegram::with_journal(quiet_config(), clock, &path).unwrap();
    let keys: Vec<_> = third.sent_log().into_iter().map(|m| m.message_id).collect();
    assert_eq!(keys, vec![1, 2, 3]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn retry_secs(outcome: &SendOutcome) -> u64 {
    match outcome {
        SendOutcome::RetryAfter { after, .. } => after.as_secs(),
        other => panic!("expected a retry-after, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_sender_that_does_not_wait_gets_longer_and_longer_waits() {
    let (tg, _) = sim(quiet_config());
    let alice = TelegramPeer::user(1);
    tg.send(&msg("a1", alice)).await.unwrap();
    // One per second per chat: the next one waits a second ...
    assert_eq!(retry_secs(&tg.send(&msg("a2", alice)).await.unwrap()), 1);
    // ... and pushing again before it ran out doubles the wait, each time.
    assert_eq!(retry_secs(&tg.send(&msg("a3", alice)).await.unwrap()), 2);
    assert_eq!(retry_secs(&tg.send(&msg("a4", alice)).await.unwrap()), 4);
    assert_eq!(tg.rate_limited_count(), 3);
    // Other chats are not affected.
    assert!(matches!(
        tg.send(&msg("b1", TelegramPeer::user(2))).await.unwrap(),
        SendOutcome::Sent { .. }
    ));
    // Waiting it out ends the escalation.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(matches!(
        tg.send(&msg("a5", alice)).await.unwrap(),
        SendOutcome::Sent { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn cold_messages_to_strangers_end_in_peer_flood() {
    let (tg, _) = sim(SimConfig {
        cold_message_limit: Some(3),
        ..quiet_config()
    });
    tg.wrote_first([TelegramPeer::user(100)]);
    tg.user_writes(TelegramPeer::user(101), "/start");
    for i in 1..=3 {
        let out = tg
            .send(&msg(&format!("s{i}"), TelegramPeer::user(i)))
            .await
            .unwrap();
        assert!(matches!(out, SendOutcome::Sent { .. }), "{out:?}");
    }
    assert!(!tg.spam_limited());
    let out = tg.send(&msg("s4", TelegramPeer::user(4))).await.unwrap();
    assert_eq!(out, SendOutcome::Failed(FailureReason::SpamLimited));
    assert!(tg.spam_limited());
    // People who wrote first can still be answered; strangers cannot.
    for (key, peer) in [("w1", 100), ("w2", 101)] {
        let out = tg.send(&msg(key, TelegramPeer::user(peer))).await.unwrap();
        assert!(matches!(out, SendOutcome::Sent { .. }), "{out:?}");
    }
    let out = tg.send(&msg("s5", TelegramPeer::user(5))).await.unwrap();
    assert_eq!(out, SendOutcome::Failed(FailureReason::SpamLimited));
}

#[tokio::test(start_paused = true)]
async fn privacy_settings_and_slow_mode() {
    let (tg, _) = sim(SimConfig {
        privacy_share: 1.0,
        ..quiet_config()
    });
    let out = tg.send(&msg("p", TelegramPeer::user(9))).await.unwrap();
    assert_eq!(out, SendOutcome::Failed(FailureReason::PrivacyRestricted));

    let group = TelegramPeer::group(-50);
    let (tg, _) = sim(SimConfig {
        slow_mode: [(-50, Duration::from_secs(10))].into_iter().collect(),
        ..quiet_config()
    });
    assert!(matches!(
        tg.send(&msg("g1", group)).await.unwrap(),
        SendOutcome::Sent { .. }
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(retry_secs(&tg.send(&msg("g2", group)).await.unwrap()), 7);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(matches!(
        tg.send(&msg("g2", group)).await.unwrap(),
        SendOutcome::Sent { .. }
    ));

    let bad = SimConfig {
        deactivated_share: 0.5,
        blocked_share: 0.3,
        privacy_share: 0.3,
        ..quiet_config()
    };
    assert!(bad.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn hidden_limits_answer_pushy_pinning_with_escalating_flood_waits() {
    let (tg, _) = sim(quiet_config());
    let limit = tg.hidden_limit(SimMethod::PinMessage);
    assert_eq!(
        limit,
        sim(quiet_config()).0.hidden_limit(SimMethod::PinMessage),
        "seeded"
    );
    let peer = TelegramPeer::user(1);
    let SendOutcome::Sent { message_id, .. } = tg.send(&msg("pin", peer)).await.unwrap() else {
        panic!("posted");
    };
    for _ in 0..limit.calls {
        tg.pin_message(peer, message_id).await.unwrap();
    }
    let err = tg.pin_message(peer, message_id).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("FLOOD_WAIT"), "{err}");
    let first = crate::retry_after(&err).expect("the wait is readable");
    assert!(first > Duration::ZERO && first <= limit.per, "{first:?}");
    let pushed = crate::retry_after(&tg.pin_message(peer, message_id).await.unwrap_err()).unwrap();
    assert_eq!(pushed, first * 2, "pushing on doubles the wait");
    // Other methods keep their own budgets.
    tg.edit_message(peer, message_id, "edited").await.unwrap();
    tokio::time::sleep(pushed).await;
    tg.pin_message(peer, message_id).await.unwrap();
    assert_eq!(tg.method_limited_count(), 2);

    let (relaxed, _) = sim(SimConfig {
        hidden_limits: false,
        ..quiet_config()
    });
    let SendOutcome::Sent { message_id, .. } = relaxed.send(&msg("pin", peer)).await.unwrap()
    else {
        panic!("posted");
    };
    for _ in 0..=limit.calls * 2 {
        relaxed.pin_message(peer, message_id).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn resolving_usernames_is_limited_per_day() {
    let (tg, _) = sim(quiet_config());
    tg.set_username("@Tea_Shop", TelegramPeer::channel(-1_000_000_000_777))
        .unwrap();
    assert_eq!(
        tg.resolve_username("https://t.me/tea_shop").await.unwrap(),
        Some(TelegramPeer::channel(-1_000_000_000_777))
    );
    assert_eq!(tg.resolve_username("nobody_here").await.unwrap(), None);
    let bad = tg.resolve_username("a b").await.unwrap_err();
    assert!(matches!(bad, mia_core::Error::InvalidInput(_)), "{bad}");
    let limit = tg.hidden_limit(SimMethod::ResolveUsername);
    assert_eq!(limit.per, Duration::from_secs(86_400));
    for _ in 2..limit.calls {
        tg.resolve_username("nobody_here").await.unwrap();
    }
    let wait = crate::retry_after(&tg.resolve_username("tea_shop").await.unwrap_err()).unwrap();
    assert!(
        wait > Duration::from_secs(86_000),
        "a day's budget: {wait:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn chats_are_created_linked_and_joined_by_people_who_asked() {
    use mia_core::{ChatKind, ConsentRecord, Contact, Evidence, Invitee, NewChat, Purpose};
    let (tg, clock) = sim(SimConfig {
        privacy_share: 0.3,
        ..quiet_config()
    });
    let now = clock.now();
    let channel = tg
        .create_chat(&NewChat::new(ChatKind::Channel, "Tea lovers").unwrap())
        .await
        .unwrap();
    assert_eq!(channel.kind, PeerKind::Channel);
    let group = tg
        .create_chat(&NewChat::new(ChatKind::Group, "Tastings").unwrap())
        .await
        .unwrap();
    assert_ne!(group, channel);
    let a = tg.export_invite_link(channel, Some(50)).await.unwrap();
    let b = tg.export_invite_link(channel, None).await.unwrap();
    assert!(a.starts_with("https://t.me/+") && a != b, "{a} {b}");
    assert!(
        tg.export_invite_link(TelegramPeer::channel(-9), None)
            .await
            .is_err(),
        "only chats the sender administers"
    );
    let purpose = Purpose::new("community");
    let invitees: Vec<Invitee> = (1..=20)
        .map(|i| {
            let contact = Contact::new(format!("c{i}"), TelegramPeer::user(i), "UTC", now).unwrap();
            let grant = ConsentRecord::grant(
                format!("c{i}"),
                purpose.clone(),
                Evidence::new("telegram_start", "payload=join"),
                "v1",
                now,
            );
            Invitee::with_consent(&contact, &purpose, &[grant], now).unwrap()
        })
        .collect();
    let report = tg.invite_members(channel, &invitees).await.unwrap();
    assert_eq!(
        report.invited.len() + report.not_invited.len(),
        20,
        "nobody lost"
    );
    assert!(
        !report.not_invited.is_empty() && !report.invited.is_empty(),
        "{report:?}"
    );
    assert!(
        report
            .not_invited
            .iter()
            .all(|(_, why)| *why == FailureReason::PrivacyRestricted)
    );
    let members = tg.members(channel).unwrap();
    let invited: Vec<i64> = report
        .invited
        .iter()
        .map(|c| c.as_str()[1..].parse().unwrap())
        .collect();
    assert_eq!(members, invited);
    // The same seed refuses the same people.
    let (again, _) = sim(SimConfig {
        privacy_share: 0.3,
        ..quiet_config()
    });
    let channel = again
        .create_chat(&NewChat::new(ChatKind::Channel, "Tea lovers").unwrap())
        .await
        .unwrap();
    assert_eq!(
        again.invite_members(channel, &invitees).await.unwrap(),
        report
    );
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_message_reaches_the_chat_and_its_reader_at_its_time() {
    let (tg, clock) = sim(SimConfig {
        behaviour: Behaviour {
            delivered: 1.0,
            ..Behaviour::default()
        },
        ..quiet_config()
    });
    let at = clock.now() + SignedDuration::from_hours(3);
    let m = msg("later", TelegramPeer::user(4)).with_send_at(at);
    let SendOutcome::Sent { message_id, .. } = tg.send(&m).await.unwrap() else {
        panic!("accepted");
    };
    assert!(tg.sent_log().is_empty());
    assert_eq!(tg.scheduled().len(), 1);
    assert_eq!(
        tg.send(&m).await.unwrap(),
        SendOutcome::Sent {
            message_id,
            duplicate: true
        }
    );
    let reply = msg("reply", TelegramPeer::user(4)).with_reply_to(message_id);
    assert!(
        matches!(
            tg.send(&reply).await.unwrap(),
            SendOutcome::Failed(FailureReason::InvalidMessage(_))
        ),
        "nobody can reply to a message not yet in the chat"
    );
    let until_due = tg.next_inbound_in().unwrap();
    assert!(
        until_due >= Duration::from_secs(3 * 3600),
        "delivery follows the schedule: {until_due:?}"
    );
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    assert_eq!(tg.sent_log().len(), 1);
    assert_eq!(tg.sent_log()[0].at, at);
    assert!(tg.scheduled().is_empty());
}
