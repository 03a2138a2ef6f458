//! A seeded, realistic audience: contacts across many time zones, about 70% with marketing
//! consent, some withdrawn, some expired, the rest never asked.

use jiff::{SignedDuration, Timestamp};
use mia::{ConsentRecord, Contact, Evidence, Purpose, TelegramPeer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Time zones with rough audience weights and a matching locale.
const ZONES: &[(&str, &str, u32)] = &[
    ("Europe/Berlin", "de-DE", 14),
    ("Europe/London", "en-GB", 10),
    ("Europe/Madrid", "es-ES", 8),
    ("Europe/Moscow", "ru-RU", 9),
    ("Europe/Kyiv", "uk-UA", 6),
    ("Europe/Istanbul", "tr-TR", 5),
    ("America/New_York", "en-US", 9),
    ("America/Los_Angeles", "en-US", 5),
    ("America/Sao_Paulo", "pt-BR", 7),
    ("America/Mexico_City", "es-MX", 4),
    ("Asia/Dubai", "ar-AE", 3),
    ("Asia/Kolkata", "en-IN", 7),
    ("Asia/Jakarta", "id-ID", 5),
    ("Asia/Tokyo", "ja-JP", 3),
    ("Australia/Sydney", "en-AU", 2),
    ("Asia/Tashkent", "uz-UZ", 3),
];

/// The audience and its consent ledger.
pub(crate) struct Audience {
    pub(crate) contacts: Vec<Contact>,
    pub(crate) consents: Vec<ConsentRecord>,
}

/// How a generated contact stands with marketing consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Granted,
    Withdrawn,
    Expired,
    Never,
}

pub(crate) fn standing(u: f64) -> Standing {
    match u {
        u if u < 0.70 => Standing::Granted,
        u if u < 0.78 => Standing::Withdrawn,
        u if u < 0.80 => Standing::Expired,
        _ => Standing::Never,
    }
}

pub(crate) fn generate(n: u32, seed: u64, now: Timestamp) -> mia::Result<Audience> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xa11d_1e2c_e000_0001);
    let total: u32 = ZONES.iter().map(|z| z.2).sum();
    let mut contacts = Vec::with_capacity(n as usize);
    let mut consents = Vec::new();
    for i in 0..n {
        let mut pick = rng.random_range(0..total);
        let (zone, locale, _) = ZONES
            .iter()
            .find(|z| {
                if pick < z.2 {
                    true
                } else {
                    pick -= z.2;
                    false
                }
            })
            .copied()
            .unwrap_or(ZONES[0]);
        let joined = now - SignedDuration::from_hours(rng.random_range(24..24 * 365));
        let id = format!("c{i:07}");
        let contact = Contact::new(
            id.clone(),
            TelegramPeer::user(10_000_000 + i64::from(i)),
            zone,
            joined,
        )?
        .with_locale(locale)
        .with_attribute(
            "plan",
            serde_json::json!(if rng.random_bool(0.2) { "pro" } else { "free" }),
        );
        contacts.push(contact);
        let granted_at = joined + SignedDuration::from_mins(rng.random_range(1..60));
        let evidence = Evidence::new(
            "telegram_start",
            format!("payload=marketing;sim_update={i}"),
        );
        let grant = ConsentRecord::grant(
            id.as_str(),
            Purpose::marketing(),
            evidence,
            "2026-09",
            granted_at,
        );
        match standing(rng.random()) {
            Standing::Granted => consents.push(grant),
            Standing::Withdrawn => {
                let at = granted_at + SignedDuration::from_hours(rng.random_range(1..2_000));
                let stop = Evidence::new("stop_keyword", format!("sim_update={i}-stop"));
                consents.push(grant);
                consents.push(ConsentRecord::withdraw(
                    id.as_str(),
                    Purpose::marketing(),
                    stop,
                    at.min(now),
                ));
            }
            Standing::Expired => {
                let mut g = grant;
                let lapsed = now - SignedDuration::from_hours(rng.random_range(1..500));
                g.expires_at = Some(lapsed.max(granted_at + SignedDuration::from_hours(1)));
                consents.push(g);
            }
            Standing::Never => {}
        }
    }
    Ok(Audience { contacts, consents })
}
