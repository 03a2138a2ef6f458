//! [`SendGuard`]: who may get a message now, judged in the recipient's own time zone.

use std::collections::BTreeSet;

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mia_core::{ContactId, SendContext, SendKind, SendPolicy, Verdict};

use crate::error::SafetyError;
use crate::rules;

/// The longest frequency-cap period the guard accepts: the agent loads a contact's campaign
/// sends of the last 7 days only ([`SendContext::recent_sends`]), so a longer period would
/// silently undercount.
pub const MAX_FREQUENCY_PERIOD: SignedDuration = SignedDuration::from_hours(24 * 7);

/// Checks every send against the suppression list, a frequency cap, quiet hours and allowed
/// weekdays, in that order; the first rule that objects decides.
///
/// | rule | applies to | decision |
/// | --- | --- | --- |
/// | `suppression` | every send | Deny |
/// | `frequency_cap` | campaign sends | Deny |
/// | `quiet_hours` | campaign sends | Defer until the quiet window ends |
/// | `weekdays` | campaign sends | Defer until the next allowed day's first allowed time |
///
/// Times are judged on the wall clock of the contact's time zone ([`Contact::tz`]), and a
/// deferral points at the first instant at which both time rules allow the send, computed
/// with the zone's real offsets: across a daylight-saving change, "09:00 tomorrow" is still
/// 09:00 on the contact's clock. A window edge that falls into a clock gap resolves to the
/// moment after the gap.
///
/// A contact whose zone is not known ([`UNKNOWN_TIME_ZONE`]: someone who wrote to the bot
/// first) gets the most restrictive reading: quiet hours and weekdays are judged on the clock of
/// every zone in [`SendGuardBuilder::zones_when_unknown`] at once, and a deferral points at the
/// first instant allowed in all of them.
///
/// [`Contact::tz`]: mia_core::Contact::tz
/// [`UNKNOWN_TIME_ZONE`]: mia_core::UNKNOWN_TIME_ZONE
///
/// ```
/// use jiff::{SignedDuration, civil::{Weekday, time}};
/// use mia_safety::SendGuard;
///
/// let guard = SendGuard::builder()
///     .quiet_hours(time(20, 0, 0, 0), time(10, 0, 0, 0))
///     .frequency_cap(2, SignedDuration::from_hours(72))
///     .allowed_weekdays([Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday,
///                        Weekday::Thursday, Weekday::Friday])
///     .suppress(["contact-under-legal-hold"])
///     .build()?;
/// # let _ = guard;
/// # Ok::<(), mia_safety::SafetyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SendGuard {
    quiet_start: Time,
    quiet_end: Time,
    cap_max: u32,
    cap_period: SignedDuration,
    suppressed: BTreeSet<ContactId>,
    /// Indexed by `Weekday::to_monday_zero_offset`; all true when not configured.
    weekdays: [bool; 7],
    /// The clocks a contact of unknown zone is judged on, all at once.
    zones_when_unknown: Vec<TimeZone>,
}

impl SendGuard {
    /// A builder with the defaults: quiet hours 21:00–09:00 local, at most 1 campaign message
    /// per 24 hours, nobody suppressed, every weekday allowed.
    pub fn builder() -> SendGuardBuilder {
        SendGuardBuilder::default()
    }

    /// The next instant at or after `now` at which a campaign send is outside quiet hours on
    /// an allowed weekday in `tz`. `None` only if the calendar runs out (year 9999).
    fn next_open(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut at = now;
        // Each step moves to a later instant and lands on an allowed day or past a quiet
        // window; a week of both steps covers every configuration that allows some day.
        for _ in 0..16 {
            let local = tz.to_datetime(at);
            if !self.weekday_allowed(local.date().weekday()) {
                let next_day = local.date().tomorrow().ok()?.to_datetime(Time::midnight());
                at = first_instant_after(tz, next_day, at)?;
                continue;
            }
            if let Some(end) = self.quiet_until(local) {
                at = first_instant_after(tz, end, at)?;
                continue;
            }
            return Some(at);
        }
        None
    }

    /// When the quiet window containing `local` ends, or `None` outside quiet hours.
    fn quiet_until(&self, local: DateTime) -> Option<DateTime> {
        let (start, end, t) = (self.quiet_start, self.quiet_end, local.time());
        if start < end {
            (start <= t && t < end).then(|| local.date().to_datetime(end))
        } else if t >= start {
            // The window crosses midnight and began this evening: it ends tomorrow.
            local.date().tomorrow().ok().map(|d| d.to_datetime(end))
        } else {
            (t < end).then(|| local.date().to_datetime(end))
        }
    }

    fn weekday_allowed(&self, day: Weekday) -> bool {
        let index = usize::try_from(day.to_monday_zero_offset()).unwrap_or(0);
        self.weekdays.get(index).copied().unwrap_or(true)
    }

    /// The rule that keeps a campaign send closed at `now` on the clock of `tz`, with why.
    fn closed(&self, now: Timestamp, tz: &TimeZone) -> Option<(&'static str, String)> {
        let local = tz.to_datetime(now);
        if self.quiet_until(local).is_some() {
            let detail = format!(
                "inside quiet hours {}–{} on the contact's local clock",
                hhmm(self.quiet_start),
                hhmm(self.quiet_end)
            );
            return Some((rules::QUIET_HOURS, detail));
        }
        let day = local.date().weekday();
        if !self.weekday_allowed(day) {
            let detail = format!("no campaign messages on {day:?} on the contact's local clock");
            return Some((rules::WEEKDAYS, detail));
        }
        None
    }

    /// A deferral by `rule` to `next` (a day later when there is none: fail safe).
    fn defer(
        &self,
        rule: &str,
        ctx: &SendContext<'_>,
        next: Option<Timestamp>,
        detail: String,
    ) -> Verdict {
        let until = next.unwrap_or_else(|| {
            // Unreachable for real dates; fail safe by waiting a day rather than sending.
            ctx.now
                .checked_add(SignedDuration::from_hours(24))
                .unwrap_or(Timestamp::MAX)
        });
        Verdict::defer(rule, until, detail)
    }
}

impl Default for SendGuard {
    /// The defaults [`SendGuard::builder`] describes.
    fn default() -> Self {
        let b = SendGuardBuilder::default();
        Self {
            quiet_start: b.quiet_start,
            quiet_end: b.quiet_end,
            cap_max: b.cap_max,
            cap_period: b.cap_period,
            suppressed: BTreeSet::new(),
            weekdays: [true; 7],
            zones_when_unknown: vec![TimeZone::UTC],
        }
    }
}

impl SendPolicy for SendGuard {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        if self.suppressed.contains(&ctx.contact.id) {
            return Verdict::deny(rules::SUPPRESSION, "contact is on the suppression list");
        }
        if let SendKind::ServiceReply { .. } = ctx.kind {
            // Answers to the contact's own message (a STOP confirmation) are not marketing:
            // caps and send windows do not apply.
            return Verdict::allow();
        }

        // A send exactly one period ago has left the window; sends stamped after `now` (clock
        // skew between workers) still count.
        let window_start = ctx.now.checked_sub(self.cap_period).ok();
        let in_window = ctx
            .recent_sends
            .iter()
            .filter(|sent| window_start.is_none_or(|start| **sent > start))
            .count();
        if u64::try_from(in_window).unwrap_or(u64::MAX) >= u64::from(self.cap_max) {
            return Verdict::deny(
                rules::FREQUENCY_CAP,
                format!(
                    "{in_window} campaign message(s) in the last {:#}; the cap is {} per {:#}",
                    self.cap_period, self.cap_max, self.cap_period
                ),
            );
        }

        let Some(tz) = ctx.contact.known_tz() else {
            // Unknown zone: closed if closed on any of the audience's clocks, until open on all.
            let zones = &self.zones_when_unknown;
            let Some((rule, detail)) = zones.iter().find_map(|tz| self.closed(ctx.now, tz)) else {
                return Verdict::allow();
            };
            let next = mia_core::first_open_in_all(ctx.now, zones, |at, tz| self.next_open(at, tz));
            let names: Vec<&str> = zones.iter().map(|z| z.iana_name().unwrap_or("?")).collect();
            let detail = format!(
                "{detail} (the contact's zone is unknown: judged on {})",
                names.join(", ")
            );
            return self.defer(rule, ctx, next, detail);
        };
        match self.closed(ctx.now, &tz) {
            Some((rule, detail)) => self.defer(rule, ctx, self.next_open(ctx.now, &tz), detail),
            None => Verdict::allow(),
        }
    }
}

/// The first instant after `after` whose wall-clock time in `tz` is `local`. In a gap (spring
/// forward) that is the moment after the gap; in a fold (fall back) the earlier occurrence,
/// unless it has already passed.
fn first_instant_after(tz: &TimeZone, local: DateTime, after: Timestamp) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    let compatible = ambiguous.compatible().ok()?;
    if compatible > after {
        return Some(compatible);
    }
    let later = ambiguous.later().ok()?;
    (later > after).then_some(later)
}

fn hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Configures a [`SendGuard`]. Setters take and return the builder; [`build`](Self::build)
/// validates.
#[derive(Clone, Debug)]
pub struct SendGuardBuilder {
    quiet_start: Time,
    quiet_end: Time,
    cap_max: u32,
    cap_period: SignedDuration,
    suppressed: BTreeSet<ContactId>,
    weekdays: Option<Vec<Weekday>>,
    zones_when_unknown: Vec<String>,
}

impl Default for SendGuardBuilder {
    fn default() -> Self {
        Self {
            quiet_start: Time::constant(21, 0, 0, 0),
            quiet_end: Time::constant(9, 0, 0, 0),
            cap_max: 1,
            cap_period: SignedDuration::from_hours(24),
            suppressed: BTreeSet::new(),
            weekdays: None,
            zones_when_unknown: vec!["UTC".into()],
        }
    }
}

impl SendGuardBuilder {
    /// No campaign messages from `start` until `end` on the contact's local clock (rule
    /// `quiet_hours`, default 21:00–09:00). A window with `start` later than `end` crosses
    /// midnight. Sends inside it are deferred until `end`.
    #[must_use]
    pub fn quiet_hours(mut self, start: Time, end: Time) -> Self {
        self.quiet_start = start;
        self.quiet_end = end;
        self
    }

    /// At most `max` campaign messages to one contact within any `per` (rule `frequency_cap`,
    /// default 1 per 24 hours). A send over the cap is denied: the campaign step is skipped
    /// for that contact.
    #[must_use]
    pub fn frequency_cap(mut self, max: u32, per: SignedDuration) -> Self {
        self.cap_max = max;
        self.cap_period = per;
        self
    }

    /// Adds contacts who must get nothing at all, service replies included (rule
    /// `suppression`): legal holds, complaints, people who asked by other channels.
    #[must_use]
    pub fn suppress<I, S>(mut self, contacts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<ContactId>,
    {
        self.suppressed.extend(contacts.into_iter().map(Into::into));
        self
    }

    /// Campaign messages only on these days of the contact's week (rule `weekdays`; default:
    /// every day). A send on another day is deferred to the first allowed moment of the next
    /// allowed day.
    #[must_use]
    pub fn allowed_weekdays<I>(mut self, days: I) -> Self
    where
        I: IntoIterator<Item = Weekday>,
    {
        self.weekdays = Some(days.into_iter().collect());
        self
    }

    /// The zones (IANA) the audience may live in, for contacts whose own zone is not known
    /// ([`UNKNOWN_TIME_ZONE`](mia_core::UNKNOWN_TIME_ZONE)): quiet hours and weekdays must allow
    /// the send on every one of these clocks at once (default: `["UTC"]`). Give the agent the
    /// same zones for campaign send windows (`AgentBuilder::zones_when_unknown`).
    #[must_use]
    pub fn zones_when_unknown<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.zones_when_unknown = zones.into_iter().map(Into::into).collect();
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] when quiet hours start when they end, the frequency cap
    /// is 0, its period is not positive or longer than [`MAX_FREQUENCY_PERIOD`], the allowed
    /// weekdays are empty, or the zones for unknown contacts are empty, unknown, or share no
    /// allowed moment in a week (such contacts would never get a message).
    pub fn build(self) -> Result<SendGuard, SafetyError> {
        if self.quiet_start == self.quiet_end {
            return Err(SafetyError::config(
                "quiet hours must not start when they end",
            ));
        }
        if self.cap_max == 0 {
            return Err(SafetyError::config(
                "frequency cap must allow at least 1 message",
            ));
        }
        if !self.cap_period.is_positive() || self.cap_period > MAX_FREQUENCY_PERIOD {
            return Err(SafetyError::config(format!(
                "frequency cap period must be positive and at most {MAX_FREQUENCY_PERIOD:#}, got {:#}",
                self.cap_period
            )));
        }
        let weekdays = match self.weekdays {
            None => [true; 7],
            Some(days) if days.is_empty() => {
                return Err(SafetyError::config(
                    "allowed weekdays must name at least one day",
                ));
            }
            Some(days) => {
                let mut allowed = [false; 7];
                for day in days {
                    let index = usize::try_from(day.to_monday_zero_offset()).unwrap_or(0);
                    if let Some(slot) = allowed.get_mut(index) {
                        *slot = true;
                    }
                }
                allowed
            }
        };
        if self.zones_when_unknown.is_empty() {
            return Err(SafetyError::config(
                "zones_when_unknown must name at least one zone",
            ));
        }
        let zones_when_unknown = self
            .zones_when_unknown
            .iter()
            .map(|name| {
                TimeZone::get(name).map_err(|e| {
                    SafetyError::config(format!("zones_when_unknown: time zone {name:?}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let guard = SendGuard {
            quiet_start: self.quiet_start,
            quiet_end: self.quiet_end,
            cap_max: self.cap_max,
            cap_period: self.cap_period,
            suppressed: self.suppressed,
            weekdays,
            zones_when_unknown,
        };
        // In winter and in summer (daylight saving moves the zones apart or together).
        for probe in ["2026-01-05T00:00:00Z", "2026-07-06T00:00:00Z"] {
            let at: Timestamp = probe.parse().unwrap_or(Timestamp::UNIX_EPOCH);
            let common = mia_core::first_open_in_all(at, &guard.zones_when_unknown, |t, tz| {
                guard.next_open(t, tz)
            });
            if common.is_none() {
                return Err(SafetyError::config(format!(
                    "quiet hours and weekdays leave no moment allowed in all of {:?} at once: \
                     contacts of unknown zone would never get a message",
                    self.zones_when_unknown
                )));
            }
        }
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use jiff::civil::{date, time};
    use mia_core::{Contact, Decision, Purpose, TelegramPeer};

    use super::*;

    fn contact(id: &str, zone: &str) -> Contact {
        Contact::new(id, TelegramPeer::user(1), zone, Timestamp::UNIX_EPOCH).unwrap()
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// `guard`'s verdict on a campaign send to `c` at `now` after `recent` sends.
    fn check_at(guard: &SendGuard, c: &Contact, now: Timestamp, recent: &[Timestamp]) -> Verdict {
        let purpose = Purpose::marketing();
        guard.check(&SendContext {
            contact: c,
            kind: SendKind::Campaign,
            purpose: &purpose,
            consent_history: &[],
            recent_sends: recent,
            campaign: None,
            now,
        })
    }

    fn deferred_until(v: &Verdict) -> Timestamp {
        match v.decision {
            Decision::Defer { until } => until,
            other => panic!("expected a deferral, got {other:?} ({v:?})"),
        }
    }

    #[test]
    fn quiet_hours_cross_midnight_in_the_contacts_zone() {
        let g = SendGuard::default();
        let c = contact("u", "UTC");
        for (now, until) in [
            ("2026-06-10T21:00:00Z", "2026-06-11T09:00:00Z"),
            ("2026-06-10T23:30:00Z", "2026-06-11T09:00:00Z"),
            ("2026-06-11T00:00:00Z", "2026-06-11T09:00:00Z"),
            ("2026-06-11T08:59:59Z", "2026-06-11T09:00:00Z"),
        ] {
            let v = check_at(&g, &c, utc(now), &[]);
            assert_eq!(deferred_until(&v), utc(until), "at {now}");
            assert_eq!(v.deciding_rule(), Some("quiet_hours"));
        }
        for now in [
            "2026-06-11T09:00:00Z",
            "2026-06-11T14:00:00Z",
            "2026-06-11T20:59:59Z",
        ] {
            assert!(check_at(&g, &c, utc(now), &[]).is_allow(), "at {now}");
        }
    }

    #[test]
    fn the_same_instant_is_day_for_one_contact_and_night_for_another() {
        let g = SendGuard::default();
        let now = utc("2026-06-10T13:00:00Z");
        assert!(check_at(&g, &contact("b", "Europe/Berlin"), now, &[]).is_allow());
        // 22:00 in Tokyo: wait for 09:00 JST, which is midnight UTC.
        let v = check_at(&g, &contact("t", "Asia/Tokyo"), now, &[]);
        assert_eq!(deferred_until(&v), utc("2026-06-11T00:00:00Z"));
        // 09:00 in New York: the window has just opened.
        assert!(check_at(&g, &contact("n", "America/New_York"), now, &[]).is_allow());
        // 08:59 there is still quiet.
        let early = utc("2026-06-10T12:59:00Z");
        let v = check_at(&g, &contact("n", "America/New_York"), early, &[]);
        assert_eq!(deferred_until(&v), now);
    }

    #[test]
    fn quiet_hours_respect_daylight_saving_changes() {
        let g = SendGuard::default();
        let berlin = contact("b", "Europe/Berlin");
        // Spring forward on 2026-03-29: 23:00 CET, then 09:00 CEST is 07:00 UTC (10h later).
        let v = check_at(&g, &berlin, utc("2026-03-28T22:00:00Z"), &[]);
        assert_eq!(deferred_until(&v), utc("2026-03-29T07:00:00Z"));
        // Fall back on 2026-10-25: 23:00 CEST, then 09:00 CET is 08:00 UTC (10h later too).
        let v = check_at(&g, &berlin, utc("2026-10-24T21:00:00Z"), &[]);
        assert_eq!(deferred_until(&v), utc("2026-10-25T08:00:00Z"));
        // The evening window opens at 21:00 local on both sides of the change.
        assert!(check_at(&g, &berlin, utc("2026-03-29T18:59:59Z"), &[]).is_allow());
        assert!(!check_at(&g, &berlin, utc("2026-03-29T19:00:00Z"), &[]).is_allow());
        assert!(check_at(&g, &berlin, utc("2026-10-25T19:59:59Z"), &[]).is_allow());

        let new_york = contact("n", "America/New_York");
        // Spring forward on 2026-03-08: 23:30 EST, then 09:00 EDT is 13:00 UTC.
        let v = check_at(&g, &new_york, utc("2026-03-08T04:30:00Z"), &[]);
        assert_eq!(deferred_until(&v), utc("2026-03-08T13:00:00Z"));
        // Fall back on 2026-11-01: 01:30 happens twice; both are quiet, 09:00 EST is 14:00 UTC.
        for now in ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"] {
            let v = check_at(&g, &new_york, utc(now), &[]);
            assert_eq!(deferred_until(&v), utc("2026-11-01T14:00:00Z"), "at {now}");
        }
    }

    #[test]
    fn a_window_edge_inside_a_clock_gap_or_fold_never_points_back_in_time() {
        // Quiet until 02:30, which does not exist in Berlin on 2026-03-29.
        let g = SendGuard::builder()
            .quiet_hours(time(22, 0, 0, 0), time(2, 30, 0, 0))
            .build()
            .unwrap();
        let berlin = contact("b", "Europe/Berlin");
        let now = utc("2026-03-28T23:00:00Z"); // 00:00 CET
        let until = deferred_until(&check_at(&g, &berlin, now, &[]));
        // The moment after the gap, 03:30 CEST.
        assert_eq!(until, utc("2026-03-29T01:30:00Z"));

        // Quiet until 01:30 in New York on 2026-11-01, which happens twice. At the second
        // 01:15 (EST) the first 01:30 has passed; wait for the second.
        let g = SendGuard::builder()
            .quiet_hours(time(21, 0, 0, 0), time(1, 30, 0, 0))
            .build()
            .unwrap();
        let new_york = contact("n", "America/New_York");
        let first = check_at(&g, &new_york, utc("2026-11-01T05:15:00Z"), &[]);
        assert_eq!(deferred_until(&first), utc("2026-11-01T05:30:00Z"));
        let second = check_at(&g, &new_york, utc("2026-11-01T06:15:00Z"), &[]);
        assert_eq!(deferred_until(&second), utc("2026-11-01T06:30:00Z"));
    }

    #[test]
    fn a_daytime_quiet_window_works_too() {
        let g = SendGuard::builder()
            .quiet_hours(time(12, 0, 0, 0), time(14, 0, 0, 0))
            .build()
            .unwrap();
        let c = contact("u", "UTC");
        let v = check_at(&g, &c, utc("2026-06-10T12:30:00Z"), &[]);
        assert_eq!(deferred_until(&v), utc("2026-06-10T14:00:00Z"));
        assert!(check_at(&g, &c, utc("2026-06-10T23:00:00Z"), &[]).is_allow());
    }

    #[test]
    fn disallowed_weekdays_defer_to_the_next_allowed_morning() {
        let no_sundays = SendGuard::builder()
            .allowed_weekdays([
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
            ])
            .build()
            .unwrap();
        let c = contact("b", "Europe/Berlin");
        // Sunday 2026-06-14, 12:00 CEST: wait for Monday 09:00 CEST.
        let v = check_at(&no_sundays, &c, utc("2026-06-14T10:00:00Z"), &[]);
        assert_eq!(v.deciding_rule(), Some("weekdays"));
        assert_eq!(deferred_until(&v), utc("2026-06-15T07:00:00Z"));
        // Saturday 22:00 is quiet; the quiet window would end on Sunday, so wait for Monday.
        let v = check_at(&no_sundays, &c, utc("2026-06-13T20:00:00Z"), &[]);
        assert_eq!(v.deciding_rule(), Some("quiet_hours"));
        assert_eq!(deferred_until(&v), utc("2026-06-15T07:00:00Z"));
        // Saturday noon is fine.
        assert!(check_at(&no_sundays, &c, utc("2026-06-13T10:00:00Z"), &[]).is_allow());

        // Weekends off, judged on the contact's calendar: Monday 02:00 UTC is still Sunday
        // evening in Los Angeles, so wait for Monday 09:00 there.
        let weekdays_only = SendGuard::builder()
            .allowed_weekdays([
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ])
            .build()
            .unwrap();
        let monday_night_utc = utc("2026-06-15T02:00:00Z");
        assert_eq!(date(2026, 6, 15).weekday(), Weekday::Monday);
        let la = contact("l", "America/Los_Angeles");
        let v = check_at(&weekdays_only, &la, monday_night_utc, &[]);
        assert_eq!(v.deciding_rule(), Some("weekdays"));
        assert_eq!(deferred_until(&v), utc("2026-06-15T16:00:00Z"));
        // Saturday noon in Tokyo, on a two-day weekend: Monday 09:00 JST.
        let tokyo = contact("t", "Asia/Tokyo");
        let v = check_at(&weekdays_only, &tokyo, utc("2026-06-13T03:00:00Z"), &[]);
        assert_eq!(v.deciding_rule(), Some("weekdays"));
        assert_eq!(deferred_until(&v), utc("2026-06-15T00:00:00Z"));
    }

    #[test]
    fn the_frequency_cap_counts_sends_within_the_period() {
        let g = SendGuard::default();
        let c = contact("u", "UTC");
        let now = utc("2026-06-10T12:00:00Z");
        let ago = |h: i64, m: i64| {
            now.checked_sub(SignedDuration::from_mins(h * 60 + m))
                .unwrap()
        };
        assert!(check_at(&g, &c, now, &[]).is_allow());
        let v = check_at(&g, &c, now, &[ago(23, 59)]);
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some("frequency_cap"));
        // Exactly one period ago has left the window.
        assert!(check_at(&g, &c, now, &[ago(24, 0)]).is_allow());
        assert!(check_at(&g, &c, now, &[ago(30, 0), ago(48, 0)]).is_allow());

        let three_a_week = SendGuard::builder()
            .frequency_cap(3, SignedDuration::from_hours(24 * 7))
            .build()
            .unwrap();
        let two = [ago(1, 0), ago(72, 0)];
        assert!(check_at(&three_a_week, &c, now, &two).is_allow());
        let three = [ago(1, 0), ago(72, 0), ago(160, 0)];
        let v = check_at(&three_a_week, &c, now, &three);
        assert_eq!(v.decision, Decision::Deny);
        let detail = &v.trace.first().unwrap().detail;
        assert!(detail.contains("the cap is 3"), "{detail}");
    }

    #[test]
    fn service_replies_skip_caps_and_windows_but_not_suppression() {
        let g = SendGuard::builder().suppress(["held"]).build().unwrap();
        let purpose = Purpose::marketing();
        let night = utc("2026-06-10T23:00:00Z");
        let recent = [night, night];
        let reply = |c: &Contact| {
            g.check(&SendContext {
                contact: c,
                kind: SendKind::ServiceReply {
                    in_response_to: night,
                },
                purpose: &purpose,
                consent_history: &[],
                recent_sends: &recent,
                campaign: None,
                now: night,
            })
        };
        assert!(reply(&contact("free", "UTC")).is_allow());
        let v = reply(&contact("held", "UTC"));
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some("suppression"));
    }

    #[test]
    fn rules_apply_in_order_suppression_cap_quiet_hours() {
        let g = SendGuard::builder().suppress(["held"]).build().unwrap();
        let night = utc("2026-06-10T23:00:00Z");
        let v = check_at(&g, &contact("held", "UTC"), night, &[night]);
        assert_eq!(v.deciding_rule(), Some("suppression"));
        assert_eq!(v.trace.len(), 1);
        assert!(!v.trace[0].detail.contains("held"));
        let v = check_at(&g, &contact("free", "UTC"), night, &[night]);
        assert_eq!(v.deciding_rule(), Some("frequency_cap"));
        let v = check_at(&g, &contact("free", "UTC"), night, &[]);
        assert_eq!(v.deciding_rule(), Some("quiet_hours"));
    }

    #[test]
    fn unusable_configuration_is_rejected() {
        let nine = time(9, 0, 0, 0);
        let day = SignedDuration::from_hours(24);
        let b = SendGuard::builder;
        assert!(b().quiet_hours(nine, nine).build().is_err());
        assert!(b().frequency_cap(0, day).build().is_err());
        assert!(b().frequency_cap(1, SignedDuration::ZERO).build().is_err());
        assert!(b().frequency_cap(1, -day).build().is_err());
        assert!(
            b().frequency_cap(1, SignedDuration::from_hours(24 * 8))
                .build()
                .is_err()
        );
        assert!(b().allowed_weekdays([]).build().is_err());
        assert!(b().build().is_ok());
        let none: [&str; 0] = [];
        assert!(b().zones_when_unknown(none).build().is_err());
        let err = b()
            .zones_when_unknown(["Mars/Olympus"])
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        // Open 10:00–18:00: London (10–18Z) and Tokyo (01–09Z) never share an hour.
        let err = b()
            .quiet_hours(time(18, 0, 0, 0), time(10, 0, 0, 0))
            .zones_when_unknown(["Europe/London", "Asia/Tokyo"])
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("never get a message"), "{err}");
    }

    #[test]
    fn a_contact_of_unknown_zone_is_judged_on_every_audience_clock() {
        let guard = SendGuard::builder()
            .zones_when_unknown(["Europe/London", "America/New_York"])
            .build()
            .unwrap();
        let who = contact("u", mia_core::UNKNOWN_TIME_ZONE);
        // 10:00Z: 10:00 in London, but 05:00 in New York: wait for 09:00 there (14:00Z).
        let v = check_at(&guard, &who, utc("2026-11-26T10:00:00Z"), &[]);
        assert_eq!(v.deciding_rule(), Some(rules::QUIET_HOURS));
        assert_eq!(deferred_until(&v), utc("2026-11-26T14:00:00Z"));
        assert!(
            v.trace[0].detail.contains("America/New_York"),
            "{:?}",
            v.trace
        );
        // 15:00Z is day on both clocks; 22:00Z is night in London.
        assert_eq!(
            check_at(&guard, &who, utc("2026-11-26T15:00:00Z"), &[]).decision,
            Decision::Allow
        );
        let late = check_at(&guard, &who, utc("2026-11-26T22:00:00Z"), &[]);
        assert_eq!(deferred_until(&late), utc("2026-11-27T14:00:00Z"));
        // A contact whose zone is known is judged on it alone.
        let ny = contact("n", "America/New_York");
        assert_eq!(
            check_at(&guard, &ny, utc("2026-11-26T22:00:00Z"), &[]).decision,
            Decision::Allow
        );
    }
}
