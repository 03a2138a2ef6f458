//! The stable names of the rules, as they appear in [`RuleHit::rule`](mia_core::RuleHit) and
//! in the agent's skip, defer and review statistics. Match on these rather than on literals.

/// Content: the text is empty or longer than the limit (Deny).
pub const LENGTH: &str = "length";
/// Content: a host-blacklisted phrase (Deny).
pub const BLACKLIST: &str = "blacklist";
/// Content: a request for a password, login or one-time code (Deny).
pub const CREDENTIALS: &str = "credentials";
/// Content: personal data such as an e-mail address, phone number, card number, IBAN, IP or
/// wallet address (Escalate by default; Deny, or redaction, by configuration).
pub const PII: &str = "pii";
/// Content: a risky marketing claim such as "guaranteed" (Escalate).
pub const RISKY_CLAIMS: &str = "risky_claims";
/// Content: a URL shortener (Deny), or a link off the allow-list or over plain http (Escalate).
pub const LINKS: &str = "links";
/// Content: a configured sender identity (brand name) is missing (Escalate).
pub const SENDER_IDENTITY: &str = "sender_identity";
/// Content: no way to opt out is mentioned (Escalate).
pub const OPT_OUT_NOTICE: &str = "opt_out_notice";

/// Send: the contact is on the suppression list (Deny).
pub const SUPPRESSION: &str = "suppression";
/// Send: the contact already got as many campaign messages as the cap allows (Deny).
pub const FREQUENCY_CAP: &str = "frequency_cap";
/// Send: it is night (or another quiet window) where the contact lives (Defer).
pub const QUIET_HOURS: &str = "quiet_hours";
/// Send: today is not an allowed weekday where the contact lives (Defer).
pub const WEEKDAYS: &str = "weekdays";
