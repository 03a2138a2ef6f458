//! What a batch's send decisions read about their contacts (the contact, their consent history,
//! their recent sends), read for the whole batch in three store calls instead of three per job.
//!
//! A snapshot serves for [`MAX_AGE`] of the agent's clock at most (at Telegram's 30 messages a
//! second, about 30 sends; without a rate limit, a whole batch): the worker reads it again
//! after that and whenever it takes in inbound events, and forgets a contact once one of its
//! jobs is decided (a second job of the same contact reads afresh, after the first one's
//! result is written, so frequency caps count it). What a snapshot cannot see cannot cause a
//! wrong send: a withdrawal, a restriction or an erasure cancels the contact's claimed jobs in
//! its own transaction, so the job's `record_attempt` fails before anything is sent (a job whose
//! send was already in flight is not cancelled, so the worker never decides one on a snapshot).
//! What it may miss for up to `MAX_AGE` are a changed contact (a new Telegram peer, time zone,
//! locale or attributes from an import or a rectification), a consent granted in that second
//! (the job is then skipped for want of consent) and another worker's send to the same contact
//! in that second: per-job reads race with all three too, over a shorter time.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::consent::ConsentRecord;
use crate::contact::Contact;
use crate::error::Result;
use crate::ids::ContactId;
use crate::store::{Job, Store};

/// How long a snapshot serves, by the agent's clock.
pub(crate) const MAX_AGE: SignedDuration = SignedDuration::from_secs(1);

/// What one send decision reads about its contact.
pub(crate) struct ContactFacts {
    /// The contact.
    pub(crate) contact: Contact,
    /// Their consent history, in insertion order.
    pub(crate) history: Vec<ConsentRecord>,
    /// Their campaign sends since the decision's look-back, newest first.
    pub(crate) recent: Vec<Timestamp>,
}

/// The facts of several contacts, read together at one moment.
#[derive(Default)]
pub(crate) struct Snapshot {
    /// The contacts it answers for, known or not.
    read: HashSet<ContactId>,
    /// Those that exist.
    contacts: HashMap<ContactId, Contact>,
    /// Their consent histories.
    histories: HashMap<ContactId, Vec<ConsentRecord>>,
    /// Their sends since `since`, newest first.
    sends: HashMap<ContactId, Vec<Timestamp>>,
    /// How far back the sends go.
    since: Option<Timestamp>,
    /// When it was read.
    taken_at: Option<Timestamp>,
    /// Whether a read failed: then each job reads its own facts, so that the error stays with
    /// the job it belongs to (a corrupt row), not with the batch.
    failed: bool,
}

impl Snapshot {
    /// The facts of `job`'s contact (`None`: no such contact) for a decision at `now` that
    /// looks at sends since `since`. When it answers for nobody, or was read more than
    /// [`MAX_AGE`] ago, it first reads the contacts of `job` and `later` (the batch's jobs
    /// still to come) but those `held` (their results wait to be written: they read their own
    /// once written). A job whose send was in flight when its worker stopped reads its own:
    /// withdrawals and erasures do not cancel it (its message may be with Telegram already),
    /// so nothing else would stop a resend decided on older facts. Either way the contact is
    /// forgotten after, so a second job of theirs reads afresh, seeing this one's result.
    pub(crate) async fn take(
        &mut self,
        store: &dyn Store,
        job: &Job,
        later: &[Job],
        held: impl Fn(&ContactId) -> bool,
        now: Timestamp,
        since: Timestamp,
    ) -> Result<Option<ContactFacts>> {
        if self.is_stale(now) {
            self.clear();
        }
        if self.is_empty() && !self.failed {
            let jobs = std::iter::once(job).chain(later);
            match Self::read(store, jobs, held, now, since).await {
                Ok(read) => *self = read,
                Err(e) => {
                    tracing::debug!(error = %e, "mia.send batch read failed; reading each job's contact on its own");
                    self.failed = true;
                }
            }
        }
        let known = self
            .facts(&job.contact, since)
            .filter(|_| !job.send_in_flight());
        self.forget(&job.contact);
        match known {
            Some(facts) => Ok(facts),
            None => read_one(store, &job.contact, since).await,
        }
    }

    /// Answers for nobody until read again (after inbound events: a STOP, a reply).
    pub(crate) fn clear(&mut self) {
        *self = Self {
            failed: self.failed,
            ..Self::default()
        };
    }

    /// Reads, at `now`, the facts of the contacts of `jobs` (each once) but those in `skip`,
    /// with the sends since `since`: three store calls, whatever the number of contacts.
    async fn read<'j>(
        store: &dyn Store,
        jobs: impl Iterator<Item = &'j Job>,
        skip: impl Fn(&ContactId) -> bool,
        now: Timestamp,
        since: Timestamp,
    ) -> Result<Self> {
        let mut read = HashSet::new();
        let ids: Vec<ContactId> = jobs
            .map(|job| &job.contact)
            .filter(|id| !skip(id) && read.insert((*id).clone()))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(Self::default());
        }
        let contacts = store.contacts_by_id(&ids).await?;
        let mut histories: HashMap<ContactId, Vec<ConsentRecord>> = HashMap::new();
        for record in store.consent_histories(&ids).await? {
            histories
                .entry(record.contact.clone())
                .or_default()
                .push(record);
        }
        let mut sends: HashMap<ContactId, Vec<Timestamp>> = HashMap::new();
        for (contact, at) in store.sends_since_by_contact(&ids, since).await? {
            sends.entry(contact).or_default().push(at);
        }
        Ok(Self {
            read,
            contacts: contacts.into_iter().map(|c| (c.id.clone(), c)).collect(),
            histories,
            sends,
            since: Some(since),
            taken_at: Some(now),
            failed: false,
        })
    }

    /// Whether it was read more than [`MAX_AGE`] before `now`.
    fn is_stale(&self, now: Timestamp) -> bool {
        // Either way: a clock set back does not make old facts new.
        self.taken_at
            .is_some_and(|taken| now.duration_since(taken).abs() > MAX_AGE)
    }

    /// Whether it answers for `contact` with sends back to `since` at least: `Some(None)` for a
    /// contact that does not exist.
    fn facts(&self, contact: &ContactId, since: Timestamp) -> Option<Option<ContactFacts>> {
        if !self.read.contains(contact) || self.since.is_none_or(|read| read > since) {
            return None;
        }
        let Some(found) = self.contacts.get(contact) else {
            return Some(None);
        };
        let mut recent = self.sends.get(contact).cloned().unwrap_or_default();
        recent.retain(|at| *at >= since);
        Some(Some(ContactFacts {
            contact: found.clone(),
            history: self.histories.get(contact).cloned().unwrap_or_default(),
            recent,
        }))
    }

    /// Stops answering for `contact`: its facts may have changed.
    fn forget(&mut self, contact: &ContactId) {
        self.read.remove(contact);
    }

    /// Whether it answers for nobody.
    fn is_empty(&self) -> bool {
        self.read.is_empty()
    }
}

/// The facts of `contact` read on their own: `None` for a contact that does not exist.
async fn read_one(
    store: &dyn Store,
    contact: &ContactId,
    since: Timestamp,
) -> Result<Option<ContactFacts>> {
    let Some(contact) = store.contact(contact).await? else {
        return Ok(None);
    };
    let history = store.consent_history(&contact.id).await?;
    let recent = store.sends_since(&contact.id, since).await?;
    Ok(Some(ContactFacts {
        contact,
        history,
        recent,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentRecord, Evidence};
    use crate::ids::{CampaignId, IdempotencyKey};
    use crate::{
        Campaign, CampaignSpec, CampaignStore, ConsentStore, ContactStore, MemoryStore, NewJob,
        OutboxStore, Purpose, TelegramPeer,
    };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_answers_as_reads_one_by_one_until_it_forgets() {
        let store = MemoryStore::new();
        let people: Vec<Contact> = (1..=3)
            .map(|i| Contact::new(format!("c{i}"), TelegramPeer::user(i), "UTC", t(0)).unwrap())
            .collect();
        store.upsert_contacts(&people).await.unwrap();
        let ev = Evidence::new("telegram_start", "u");
        store
            .append_consent(&[
                ConsentRecord::grant("c1", Purpose::marketing(), ev.clone(), "v1", t(1)),
                ConsentRecord::grant("c2", Purpose::marketing(), ev.clone(), "v1", t(2)),
                ConsentRecord::withdraw("c1", Purpose::marketing(), ev, t(3)),
            ])
            .await
            .unwrap();
        let mut campaign =
            Campaign::draft(CampaignId::new("k"), CampaignSpec::new("n", "p", "o"), t(0));
        store.insert_campaign(&campaign).await.unwrap();
        campaign.state = crate::CampaignState::Running;
        let new = |who: &str| NewJob {
            key: IdempotencyKey::for_job(&campaign.id, &ContactId::new(who), 0),
            contact: ContactId::new(who),
            purpose: Purpose::marketing(),
            step: 0,
            due_at: t(0),
            skipped: None,
        };
        let jobs = [new("c1"), new("c2"), new("c3"), new("c9")];
        store.schedule(&campaign, &jobs).await.unwrap();
        let claimed = store
            .claim("w", t(5), jiff::SignedDuration::from_secs(60), 10)
            .await
            .unwrap();
        let c2 = claimed.iter().find(|j| j.contact.as_str() == "c2").unwrap();
        store
            .update_job(
                &c2.key,
                c2.claim_token,
                &crate::JobUpdate::Sent { message_id: 1 },
                t(10),
            )
            .await
            .unwrap();

        let mut snapshot =
            Snapshot::read(&store, claimed.iter(), |c| c.as_str() == "c3", t(20), t(0))
                .await
                .unwrap();
        assert!(!snapshot.is_stale(t(21)), "one second old serves");
        assert!(snapshot.is_stale(t(21) + SignedDuration::from_micros(1)));
        assert!(snapshot.is_stale(t(18)), "nor does a clock set back");
        for who in ["c1", "c2"] {
            let id = ContactId::new(who);
            let from_snapshot = snapshot.facts(&id, t(0)).unwrap().unwrap();
            let one = read_one(&store, &id, t(0)).await.unwrap().unwrap();
            assert_eq!(from_snapshot.contact, one.contact, "{who}");
            assert_eq!(from_snapshot.history, one.history, "{who}");
            assert_eq!(from_snapshot.recent, one.recent, "{who}");
        }
        let id = ContactId::new("c2");
        assert_eq!(snapshot.facts(&id, t(0)).unwrap().unwrap().recent, [t(10)]);
        assert!(
            snapshot
                .facts(&id, t(11))
                .unwrap()
                .unwrap()
                .recent
                .is_empty(),
            "a later look-back leaves older sends out"
        );
        assert!(
            snapshot.facts(&id, t(-1)).is_none(),
            "an earlier look-back than was read is not answered"
        );
        assert!(
            matches!(snapshot.facts(&ContactId::new("c9"), t(0)), Some(None)),
            "a contact that does not exist"
        );
        assert!(
            snapshot.facts(&ContactId::new("c3"), t(0)).is_none(),
            "a contact left out of the read is not answered"
        );
        snapshot.forget(&id);
        assert!(snapshot.facts(&id, t(0)).is_none(), "forgotten");
        assert!(!snapshot.is_empty());
    }
}
