//! [`MarketingRestrictions`]: the send-policy rules of privacy law that consent alone does not
//! cover — an objection to direct marketing is absolute, a restriction of processing stops
//! marketing while it lasts, children get no marketing, and a "do not sell or share" request
//! (or a Global Privacy Control signal) is honoured.

use std::collections::BTreeSet;

use jiff::civil::Date;
use mia_core::{Contact, SendContext, SendKind, SendPolicy, Verdict};

/// Rule name: the contact's processing is restricted (GDPR art. 18) (Deny). The agent's
/// built-in consent rule denies under this name too, so a restriction holds without this policy.
pub const RESTRICTED: &str = mia_core::RESTRICTED_RULE;

// The restriction markers are defined in `mia_core`, whose built-in consent rule enforces them.
pub use mia_core::{
    RESTRICTION_LIFTED_METHOD, RESTRICTION_METHOD, RESTRICTION_PURPOSE, restricted_since,
};

/// Rule name: the contact objected to direct marketing (Deny). The agent's built-in consent
/// rule denies under this name too, with the default lifting methods.
pub const OBJECTION: &str = mia_core::OBJECTION_RULE;
/// Rule name: the contact is below the minimum age for marketing, or their age is unknown
/// where it must be known (Deny).
pub const MINIMUM_AGE: &str = "minimum_age";
/// Rule name: the contact opted out of the sale or sharing of their data, or sent a Global
/// Privacy Control signal (Deny).
pub const DO_NOT_SELL: &str = "do_not_sell";

/// Campaign-send rules from privacy law, as a [`SendPolicy`] to put beside
/// [`SendGuard`](crate::SendGuard). Service replies are never restricted.
///
/// | rule | fires when |
/// |---|---|
/// | `restricted` | the contact's processing is restricted (GDPR art. 18, [`SubjectRights::restrict`](super::SubjectRights::restrict)) until the restriction is lifted ([`restricted_since`]) |
/// | `objection` | the consent history holds an objection (a withdrawal with evidence method `dsr_objection`, written by `SubjectRights::object`) and no grant for the purpose since then came from the person themselves (by default `telegram_start`, `web_form`, `double_opt_in`): a later import or CRM sync never lifts it |
/// | `minimum_age` | the contact's `birth_date` attribute (`YYYY-MM-DD`, judged on their own calendar) or `age` attribute is below the minimum (16 by default); with [`require_known_age`](Self::require_known_age), also when neither is there |
/// | `do_not_sell` | the contact's `do_not_sell` or `gpc` attribute is true and the purpose is one of the sale/sharing purposes ([`sale_purpose`](Self::sale_purpose)), or for every purpose with [`gpc_blocks_all_marketing`](Self::gpc_blocks_all_marketing) |
///
/// ```
/// use mia_safety::compliance::MarketingRestrictions;
/// let rules = MarketingRestrictions::new()
///     .minimum_age(18)
///     .sale_purpose("partner_offers");
/// # let _ = rules;
/// ```
#[derive(Clone, Debug)]
pub struct MarketingRestrictions {
    minimum_age: Option<u8>,
    require_known_age: bool,
    sale_purposes: BTreeSet<String>,
    gpc_blocks_all: bool,
    lifting_methods: BTreeSet<String>,
}

impl Default for MarketingRestrictions {
    fn default() -> Self {
        Self::new()
    }
}

impl MarketingRestrictions {
    /// The defaults: minimum age 16, unknown ages allowed, no sale purposes, objections
    /// lifted only by `telegram_start`, `web_form` or `double_opt_in` grants.
    pub fn new() -> Self {
        Self {
            minimum_age: Some(16),
            require_known_age: false,
            sale_purposes: BTreeSet::new(),
            gpc_blocks_all: false,
            lifting_methods: ["telegram_start", "web_form", "double_opt_in"]
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    /// The minimum age for marketing (`0` turns the rule off).
    #[must_use]
    pub fn minimum_age(mut self, years: u8) -> Self {
        self.minimum_age = (years > 0).then_some(years);
        self
    }

    /// Refuses marketing to contacts whose age is not recorded.
    #[must_use]
    pub fn require_known_age(mut self) -> Self {
        self.require_known_age = true;
        self
    }

    /// A purpose whose messages count as selling or sharing personal data (partner offers,
    /// cross-context advertising), which a do-not-sell request or GPC signal stops.
    #[must_use]
    pub fn sale_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.sale_purposes.insert(purpose.into());
        self
    }

    /// Treats a do-not-sell request or GPC signal as an opt-out of all marketing.
    #[must_use]
    pub fn gpc_blocks_all_marketing(mut self) -> Self {
        self.gpc_blocks_all = true;
        self
    }

    /// Adds an evidence method whose grants (made by the person themselves) lift an earlier
    /// objection for this policy. The agent's built-in consent rule lifts an objection only
    /// on [`SELF_GIVEN_METHODS`](mia_core::SELF_GIVEN_METHODS), so inside an agent a method
    /// added here does not end an objection by itself.
    #[must_use]
    pub fn lifting_method(mut self, method: impl Into<String>) -> Self {
        self.lifting_methods.insert(method.into());
        self
    }

    fn objection(&self, ctx: &SendContext<'_>) -> Option<Verdict> {
        let lifting: Vec<&str> = self.lifting_methods.iter().map(String::as_str).collect();
        let objected =
            mia_core::objected_since(ctx.consent_history, ctx.purpose, &lifting, ctx.now)?;
        Some(Verdict::deny(
            OBJECTION,
            format!("the contact objected to direct marketing at {objected}"),
        ))
    }

    fn age(&self, ctx: &SendContext<'_>) -> Option<Verdict> {
        let minimum = self.minimum_age?;
        match age_of(ctx.contact, ctx.now) {
            Some(age) if age < i64::from(minimum) => Some(Verdict::deny(
                MINIMUM_AGE,
                format!("the contact is under {minimum}"),
            )),
            Some(_) => None,
            None if self.require_known_age => Some(Verdict::deny(
                MINIMUM_AGE,
                "the contact's age is not recorded",
            )),
            None => None,
        }
    }

    fn do_not_sell(&self, ctx: &SendContext<'_>) -> Option<Verdict> {
        let flagged = ["do_not_sell", "gpc"]
            .iter()
            .any(|name| truthy(ctx.contact.attributes.get(*name)));
        let applies = self.gpc_blocks_all || self.sale_purposes.contains(ctx.purpose.as_str());
        (flagged && applies).then(|| {
            Verdict::deny(
                DO_NOT_SELL,
                format!(
                    "the contact opted out of the sale or sharing of their data (purpose {})",
                    ctx.purpose
                ),
            )
        })
    }
}

/// Whether an attribute says yes (`true`, `1`, `"true"`, `"1"`, `"yes"`).
fn truthy(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
        Some(serde_json::Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        }
        _ => false,
    }
}

/// The contact's age in whole years on their own calendar at `now`, from `birth_date`
/// (`YYYY-MM-DD`) or else `age`.
fn age_of(contact: &Contact, now: jiff::Timestamp) -> Option<i64> {
    if let Some(born) = contact
        .attributes
        .get("birth_date")
        .and_then(|v| v.as_str())
        .and_then(|s| s.trim().parse::<Date>().ok())
    {
        let today = contact.tz().to_datetime(now).date();
        let mut years = i64::from(today.year()) - i64::from(born.year());
        if (today.month(), today.day()) < (born.month(), born.day()) {
            years -= 1;
        }
        return Some(years);
    }
    contact.attributes.get("age").and_then(|v| v.as_i64())
}

impl SendPolicy for MarketingRestrictions {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        if ctx.kind != SendKind::Campaign {
            return Verdict::allow();
        }
        restricted_since(ctx.consent_history, ctx.now)
            .map(|since| {
                Verdict::deny(
                    RESTRICTED,
                    format!("the contact's processing is restricted since {since}"),
                )
            })
            .or_else(|| self.objection(ctx))
            .or_else(|| self.age(ctx))
            .or_else(|| self.do_not_sell(ctx))
            .unwrap_or_else(Verdict::allow)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use jiff::{SignedDuration, Timestamp};
    use mia_core::{ConsentRecord, Decision, Evidence, OBJECTION_METHOD, Purpose, TelegramPeer};
    use serde_json::json;

    fn at(day: &str) -> Timestamp {
        format!("{day}T12:00:00Z").parse().unwrap()
    }

    fn verdict(
        rules: &MarketingRestrictions,
        contact: &Contact,
        purpose: &Purpose,
        history: &[ConsentRecord],
        now: Timestamp,
    ) -> Verdict {
        rules.check(&SendContext {
            contact,
            kind: SendKind::Campaign,
            purpose,
            consent_history: history,
            recent_sends: &[],
            campaign: None,
            now,
        })
    }

    fn person(now: Timestamp) -> Contact {
        Contact::new("c", TelegramPeer::user(1), "Pacific/Auckland", now).unwrap()
    }

    #[test]
    fn an_objection_is_lifted_only_by_the_person_granting_again() {
        let rules = MarketingRestrictions::new();
        let m = Purpose::marketing();
        let c = person(at("2026-01-10"));
        let grant = |method: &str, day: &str| {
            ConsentRecord::grant("c", m.clone(), Evidence::new(method, "x"), "v1", at(day))
        };
        let objection = ConsentRecord::withdraw(
            "c",
            m.clone(),
            Evidence::new(OBJECTION_METHOD, "dsr_1"),
            at("2026-01-02"),
        );
        let now = at("2026-01-10");
        let imported = [
            grant("web_form", "2026-01-01"),
            objection.clone(),
            grant("import", "2026-01-05"),
        ];
        let v = verdict(&rules, &c, &m, &imported, now);
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some(OBJECTION));
        let regranted = [objection, grant("telegram_start", "2026-01-05")];
        assert!(verdict(&rules, &c, &m, &regranted, now).is_allow());
        assert!(verdict(&rules, &c, &m, &[], now).is_allow());
    }

    #[test]
    fn children_get_no_marketing_judged_on_their_own_calendar() {
        let rules = MarketingRestrictions::new();
        let m = Purpose::marketing();
        // Auckland is ahead of UTC: at 12:00 UTC on 2026-03-04 it is already the 5th there.
        let now = at("2026-03-04");
        let birthday = person(now).with_attribute("birth_date", json!("2010-03-05"));
        assert!(
            verdict(&rules, &birthday, &m, &[], now).is_allow(),
            "16 today"
        );
        let day_before = person(now).with_attribute("birth_date", json!("2010-03-06"));
        assert_eq!(
            verdict(&rules, &day_before, &m, &[], now).deciding_rule(),
            Some(MINIMUM_AGE)
        );
        let by_age = person(now).with_attribute("age", json!(15));
        assert!(!verdict(&rules, &by_age, &m, &[], now).is_allow());
        let unknown = person(now);
        assert!(verdict(&rules, &unknown, &m, &[], now).is_allow());
        let strict = MarketingRestrictions::new()
            .require_known_age()
            .minimum_age(18);
        assert!(!verdict(&strict, &unknown, &m, &[], now).is_allow());
        let off = MarketingRestrictions::new().minimum_age(0);
        assert!(verdict(&off, &by_age, &m, &[], now).is_allow());
        let service = SendContext {
            contact: &by_age,
            kind: SendKind::ServiceReply {
                in_response_to: now - SignedDuration::from_mins(1),
            },
            purpose: &m,
            consent_history: &[],
            recent_sends: &[],
            campaign: None,
            now,
        };
        assert!(
            rules.check(&service).is_allow(),
            "service replies are not marketing"
        );
    }

    #[test]
    fn do_not_sell_and_gpc_stop_sale_purposes_or_all_marketing() {
        let now = at("2026-01-10");
        let partner = Purpose::new("partner_offers");
        let m = Purpose::marketing();
        let rules = MarketingRestrictions::new().sale_purpose("partner_offers");
        let gpc = person(now).with_attribute("gpc", json!(true));
        let dns = person(now).with_attribute("do_not_sell", json!("yes"));
        for c in [&gpc, &dns] {
            assert_eq!(
                verdict(&rules, c, &partner, &[], now).deciding_rule(),
                Some(DO_NOT_SELL)
            );
            assert!(verdict(&rules, c, &m, &[], now).is_allow());
        }
        let strict = MarketingRestrictions::new().gpc_blocks_all_marketing();
        assert!(!verdict(&strict, &gpc, &m, &[], now).is_allow());
        let off = person(now).with_attribute("gpc", json!(false));
        assert!(verdict(&strict, &off, &m, &[], now).is_allow());
    }
}
