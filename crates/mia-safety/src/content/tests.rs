#![allow(clippy::unwrap_used)]

use mia_core::{ContentContext, ContentKind, ContentPolicy, Decision, Verdict};

use super::*;
use crate::{Redaction, TELEGRAM_MAX_LENGTH};

const CTX: ContentContext<'static> = ContentContext {
    campaign: None,
    language: "en",
    kind: ContentKind::Marketing,
};
const FOOTER: &str = " Reply STOP to opt out.";

fn guard() -> ContentGuard {
    ContentGuard::builder()
        .blacklist(["scam", "crypto giveaway"])
        .allow_domain("shop.example")
        .build()
        .unwrap()
}

fn rules_fired(v: &Verdict) -> Vec<&str> {
    v.trace.iter().map(|h| h.rule.as_str()).collect()
}

#[test]
fn the_recommended_guard_builds_and_passes_clean_copy() {
    let g = ContentGuard::recommended();
    let v = g.check("Our spring collection is here.", &CTX);
    // Without an opt-out notice it still goes to a human.
    assert_eq!(v.decision, Decision::Escalate);
    assert_eq!(rules_fired(&v), ["opt_out_notice"]);
    let v = g.check(&format!("Our spring collection is here.{FOOTER}"), &CTX);
    assert_eq!(v, Verdict::allow());
    let v = ContentGuard::default().check("New arrivals! /stop to unsubscribe", &CTX);
    assert!(v.is_allow(), "{v:?}");
}

#[test]
fn empty_and_overlong_text_is_denied() {
    let g = guard();
    for text in ["", "   \n", "\u{200B}\u{FEFF}"] {
        let v = g.check(text, &CTX);
        assert_eq!(v.decision, Decision::Deny, "{text:?}");
        assert_eq!(v.deciding_rule(), Some("length"));
    }
    let long = format!("{}{FOOTER}", "a".repeat(TELEGRAM_MAX_LENGTH));
    let v = g.check(&long, &CTX);
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.deciding_rule(), Some("length"));
    // Exactly at the limit is fine.
    let at_limit = format!("{}{FOOTER}", "a".repeat(TELEGRAM_MAX_LENGTH - FOOTER.len()));
    assert!(g.check(&at_limit, &CTX).is_allow());
    // Emoji outside the BMP count twice, as Telegram counts them.
    let emoji = format!("{}{FOOTER}", "🎉".repeat(2040));
    assert_eq!(g.check(&emoji, &CTX).decision, Decision::Deny);
}

#[test]
fn captions_can_have_a_lower_limit() {
    let g = ContentGuard::builder().max_length(1024).build().unwrap();
    let v = g.check(&format!("{}{FOOTER}", "a".repeat(1024)), &CTX);
    assert_eq!(v.deciding_rule(), Some("length"));
    assert!(ContentGuard::builder().max_length(0).build().is_err());
    assert!(ContentGuard::builder().max_length(4097).build().is_err());
}

#[test]
fn blacklisted_phrases_deny_even_when_disguised() {
    let g = guard();
    for text in [
        "This is no SCAM!",
        "this is no s\u{200B}cam",
        "this is no ｓｃａｍ",
        "Join our crypto\n  giveaway",
    ] {
        let v = g.check(&format!("{text}{FOOTER}"), &CTX);
        assert_eq!(v.decision, Decision::Deny, "{text}");
        assert_eq!(v.deciding_rule(), Some("blacklist"), "{text}");
        let detail = &v.trace.first().unwrap().detail;
        assert!(!detail.to_lowercase().contains("scam"), "{detail}");
    }
    let v = g.check(&format!("Fresh scampi tonight.{FOOTER}"), &CTX);
    assert!(v.is_allow(), "{v:?}");
}

#[test]
fn personal_data_escalates_without_quoting_it() {
    let g = guard();
    let v = g.check(&format!("Questions? Mail jane@doe.example.{FOOTER}"), &CTX);
    assert_eq!(v.decision, Decision::Escalate);
    assert_eq!(rules_fired(&v), ["pii"]);
    let detail = &v.trace.first().unwrap().detail;
    assert!(detail.contains("e-mail"), "{detail}");
    assert!(!detail.contains("jane"), "{detail}");

    let v = g.check(&format!("Call +49 30 1234567 today.{FOOTER}"), &CTX);
    assert_eq!(rules_fired(&v), ["pii"]);
    let v = g.check(&format!("Card 4111 1111 1111 1111 saved.{FOOTER}"), &CTX);
    assert_eq!(rules_fired(&v), ["pii"]);
}

#[test]
fn everyday_marketing_numbers_pass() {
    let g = guard();
    let text = format!(
        "Watch promo.mp4, update to v2.3.1, sale ends 2026-11-26: now €19.99 \
         (SKU-12345, order #12345678) at https://shop.example/sale.{FOOTER}"
    );
    let v = g.check(&text, &CTX);
    assert!(v.is_allow(), "{v:?}");
}

#[test]
fn risky_claims_escalate_and_hosts_can_add_their_own() {
    let g = ContentGuard::builder()
        .risky_claims(["best price in town"])
        .build()
        .unwrap();
    for (text, claim) in [
        ("Results GUARANTEED", "guaranteed"),
        ("Results g\u{200B}uaranteed", "guaranteed"),
        ("ｒｉｓｋ－ｆｒｅｅ trial", "risk-free"),
        ("Act now, limited time only", "act now"),
        ("The best price in town", "best price in town"),
    ] {
        let v = g.check(&format!("{text}.{FOOTER}"), &CTX);
        assert_eq!(v.decision, Decision::Escalate, "{text}");
        assert_eq!(rules_fired(&v), ["risky_claims"], "{text}");
        assert_eq!(
            v.trace.first().unwrap().detail,
            format!("risky claim {claim:?}")
        );
    }
    // Word boundaries: "secure" is not "cure", "guaranteedly" is not a listed word.
    let v = g.check(&format!("Secure checkout.{FOOTER}"), &CTX);
    assert!(v.is_allow(), "{v:?}");
}

#[test]
fn default_claims_can_be_replaced() {
    let g = ContentGuard::builder()
        .default_risky_claims(false)
        .risky_claims(["unbeatable"])
        .build()
        .unwrap();
    assert!(g.check(&format!("Act now!{FOOTER}"), &CTX).is_allow());
    let v = g.check(&format!("Unbeatable!{FOOTER}"), &CTX);
    assert_eq!(v.deciding_rule(), Some("risky_claims"));
}

#[test]
fn links_follow_the_allow_list() {
    let g = guard();
    let ok = g.check(
        &format!("Shop at https://www.shop.example/x.{FOOTER}"),
        &CTX,
    );
    assert!(ok.is_allow(), "{ok:?}");
    let other = g.check(&format!("Shop at other.example.com.{FOOTER}"), &CTX);
    assert_eq!(other.decision, Decision::Escalate);
    assert_eq!(rules_fired(&other), ["links"]);
    let http = g.check(&format!("Shop at http://shop.example.{FOOTER}"), &CTX);
    assert_eq!(http.decision, Decision::Escalate);
    let short = g.check(&format!("Shop at ｂｉｔ．ｌｙ/x.{FOOTER}"), &CTX);
    assert_eq!(short.decision, Decision::Deny);
    assert_eq!(short.deciding_rule(), Some("links"));
}

#[test]
fn a_later_deny_beats_an_earlier_escalation_and_every_hit_is_traced() {
    let g = guard();
    let v = g.check("Guaranteed! Mail jane@doe.example or see bit.ly/x", &CTX);
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(
        rules_fired(&v),
        ["pii", "risky_claims", "links", "opt_out_notice"]
    );
    assert_eq!(v.deciding_rule(), Some("links"));
}

#[test]
fn the_opt_out_notice_is_configurable() {
    let g = guard();
    for text in ["Reply STOP to opt out", "unsubscribe: /stop", "Tap /stop"] {
        assert!(g.check(text, &CTX).is_allow(), "{text}");
    }
    // "nonstop" does not tell anyone how to stop.
    let v = g.check("Nonstop deals all week", &CTX);
    assert_eq!(v.deciding_rule(), Some("opt_out_notice"));

    let german = ContentGuard::builder()
        .opt_out_keywords(["abmelden"])
        .build()
        .unwrap();
    assert!(
        german
            .check("Neue Angebote! Abmelden mit einem Klick.", &CTX)
            .is_allow()
    );
    let off = ContentGuard::builder()
        .opt_out_notice(false)
        .build()
        .unwrap();
    assert!(off.check("New arrivals", &CTX).is_allow());
}

#[test]
fn bad_configuration_is_rejected() {
    assert!(ContentGuard::builder().blacklist([" "]).build().is_err());
    assert!(ContentGuard::builder().risky_claims([""]).build().is_err());
    assert!(
        ContentGuard::builder()
            .allow_domains(["https://shop.example/"])
            .build()
            .is_err()
    );
    assert!(
        ContentGuard::builder()
            .allow_emails(["support"])
            .build()
            .is_err()
    );
}

#[test]
fn credential_requests_are_denied_in_every_disguise_and_language() {
    let g = guard();
    for text in [
        "Please send us the code from your SMS",
        "What is your password?",
        "Confirm with your p@ssw0rd",
        "Send me your c0de to claim the prize",
        "Bitte nenne uns den Code und dein Passwort",
        "Envíanos el código de verificación",
        "Пришлите код из СМС",
        "Doğrulama kodu nedir?",
        "Me envie o código, por favor",
        "Quel est votre mot de passe ?",
    ] {
        let v = g.check(&format!("{text}.{FOOTER}"), &CTX);
        assert_eq!(v.decision, Decision::Deny, "{text}");
        assert_eq!(v.deciding_rule(), Some("credentials"), "{text}");
    }
    // Coupon and promo codes are not credentials.
    for text in ["Use code SPRING20 at checkout", "Your promo code: SAVE10"] {
        assert!(
            g.check(&format!("{text}.{FOOTER}"), &CTX).is_allow(),
            "{text}"
        );
    }
    let off = ContentGuard::builder()
        .deny_credential_requests(false)
        .build()
        .unwrap();
    assert!(
        off.check(&format!("Reset your password.{FOOTER}"), &CTX)
            .is_allow()
    );
}

#[test]
fn look_alike_spellings_do_not_hide_blacklisted_phrases_or_claims() {
    let g = guard();
    for text in [
        "This is no $c4m",
        "This is no sсam",
        "This is no s.c.a.m",
        "free crypto g1veaway",
    ] {
        let v = g.check(&format!("{text}.{FOOTER}"), &CTX);
        assert_eq!(v.deciding_rule(), Some("blacklist"), "{text}");
    }
    let v = g.check(&format!("Results GUARANTΕΕD{FOOTER}"), &CTX);
    assert_eq!(v.deciding_rule(), Some("risky_claims"));
}

#[test]
fn more_kinds_of_personal_data_escalate_and_the_action_is_configurable() {
    let g = guard();
    for text in [
        "Pay to DE89 3704 0044 0532 0130 00",
        "Send BTC to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        "Your IP is 203.0.113.7",
        "mail jane [at] doe [dot] com",
    ] {
        let v = g.check(&format!("{text}.{FOOTER}"), &CTX);
        assert_eq!(rules_fired(&v), ["pii"], "{text}");
        assert_eq!(v.decision, Decision::Escalate, "{text}");
    }
    let deny = ContentGuard::builder()
        .pii_action(PiiAction::Deny)
        .build()
        .unwrap();
    let v = deny.check(&format!("Call +49 30 1234567.{FOOTER}"), &CTX);
    assert_eq!(v.decision, Decision::Deny);

    let redact = ContentGuard::builder()
        .pii_action(PiiAction::Redact(Redaction::Tag))
        .build()
        .unwrap();
    let text = format!("Call +49 30 1234567 or mail jane@doe.example.{FOOTER}");
    // `check` cannot change the text, so it escalates...
    assert_eq!(redact.check(&text, &CTX).decision, Decision::Escalate);
    // ...while `screen` redacts and passes the result.
    let screened = redact.screen(&text, &CTX);
    assert_eq!(
        screened.text,
        format!("Call <PHONE> or mail <EMAIL>.{FOOTER}")
    );
    assert_eq!(screened.verdict.decision, Decision::Allow, "{screened:?}");
    assert_eq!(
        screened.verdict.trace.first().map(|h| h.rule.as_str()),
        Some("pii")
    );
    assert_eq!(screened.findings.len(), 2);
    // Without personal data, screening is checking.
    let plain = format!("Spring sale!{FOOTER}");
    assert_eq!(
        redact.screen(&plain, &CTX).verdict,
        redact.check(&plain, &CTX)
    );
}

#[test]
fn the_language_decides_how_phone_numbers_are_read() {
    let g = guard();
    let de = ContentContext {
        campaign: None,
        language: "de",
        kind: ContentKind::Marketing,
    };
    let v = g.check(&format!("Ruf an: 030 1234567.{FOOTER}"), &de);
    assert_eq!(rules_fired(&v), ["pii"]);
    assert!(
        g.check(&format!("Bestellung 0301234567 ist da.{FOOTER}"), &de)
            .is_allow()
    );
}

#[test]
fn sender_identity_is_required_once_configured() {
    let g = ContentGuard::builder()
        .sender_identity(["Mia Shop", "@mia_shop"])
        .build()
        .unwrap();
    let v = g.check(&format!("Spring sale!{FOOTER}"), &CTX);
    assert_eq!(v.decision, Decision::Escalate);
    assert_eq!(rules_fired(&v), ["sender_identity"]);
    for text in [
        "MIA SHOP: spring sale!",
        "Spring sale from @mia_shop",
        "Mia\u{200B} Shop sale",
    ] {
        assert!(
            g.check(&format!("{text}{FOOTER}"), &CTX).is_allow(),
            "{text}"
        );
    }
    assert!(
        ContentGuard::builder()
            .sender_identity([" "])
            .build()
            .is_err()
    );
}

#[test]
fn localized_opt_out_hints_count() {
    let g = ContentGuard::recommended();
    for text in [
        "Neue Angebote! Zum Abmelden hier tippen.",
        "Ofertas nuevas. Para darte de baja responde BAJA.",
        "Новые скидки! Чтобы отписаться, ответьте СТОП.",
        "Novidades! Para sair da lista responda SAIR.",
        "Yeni fırsatlar! Listeden çıkmak için yazın.",
        "Nouveautés ! Pour vous désabonner, répondez.",
    ] {
        assert!(g.check(text, &CTX).is_allow(), "{text}");
    }
}

#[test]
fn links_to_look_alike_domains_escalate() {
    let g = ContentGuard::builder()
        .allow_domain("apple.com")
        .build()
        .unwrap();
    let v = g.check(&format!("See https://аррӏе.com/offer{FOOTER}"), &CTX);
    assert_eq!(v.decision, Decision::Escalate);
    assert!(
        v.trace.iter().any(|h| h.detail.contains("look-alike")),
        "{v:?}"
    );
}

#[test]
fn copy_from_the_offline_template_provider_passes() {
    let g = guard();
    for text in [
        "green tea: 20% off this week. Details: https://shop.example/tea\n\nReply STOP to unsubscribe.",
        "Hi! We saved something for you: 20% off this week on green tea. Details: https://shop.example/sale\n\nReply STOP to unsubscribe.",
        "We are pleased to offer you 20% off on tea. Details: https://shop.example/t\n\nReply STOP to unsubscribe.",
    ] {
        assert!(g.check(text, &CTX).is_allow(), "{text}");
    }
}

#[test]
fn answers_and_chat_posts_skip_marketing_only_rules_but_keep_every_other_rule() {
    let g = ContentGuard::builder()
        .sender_identity(["Acme"])
        .build()
        .unwrap();
    let answer = ContentContext {
        kind: ContentKind::Answer,
        ..CTX
    };
    let text = "We open at 9:00 tomorrow.";
    assert_eq!(
        rules_fired(&g.check(text, &CTX)),
        ["sender_identity", "opt_out_notice"]
    );
    assert!(g.check(text, &answer).is_allow());
    let post = ContentContext {
        kind: ContentKind::ChatPost,
        ..CTX
    };
    assert_eq!(rules_fired(&g.check(text, &post)), ["sender_identity"]);
    let phishing = g.check("Please send me your password to check the order.", &answer);
    assert_eq!(phishing.decision, Decision::Deny);
    assert_eq!(rules_fired(&phishing), ["credentials"]);
}
