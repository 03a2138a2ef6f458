//! [`Collector`]: an [`EventSink`] that stores events and keeps live counts.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{CampaignId, ContactId, Event, EventId, EventSink, EventStore, VariantId};

use crate::error::{AnalyticsError, Result};
use crate::window::{Granularity, Window, WindowConfig, WindowCounts, Windows};

/// Live counts per campaign, variant and event kind.
pub type Counts = BTreeMap<(Option<VariantId>, &'static str), u64>;

#[derive(Default)]
struct Live {
    /// The `(contact, id)` of every event counted, as the store deduplicates them.
    seen: HashSet<(ContactId, EventId)>,
    counts: BTreeMap<CampaignId, Counts>,
    windows: Option<Windows>,
}

/// Writes events to an [`EventStore`] (which deduplicates each contact's events by id) and
/// counts them as they come, so a running campaign can be watched without querying the store.
///
/// Counting happens after the store accepted the batch, and each contact's event id counts
/// once, so a redelivered event never double-counts and a failed write never counts at all.
///
/// Built with [`Collector::with_windows`], it also keeps [real-time windows](crate::window)
/// (minute, hour and day tumbling windows and sliding windows) under the same rules.
pub struct Collector {
    store: Arc<dyn EventStore>,
    live: Mutex<Live>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Collector {
    /// A collector writing to `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            live: Mutex::new(Live::default()),
        }
    }

    /// A collector that also keeps real-time [windows](crate::window) per campaign, variant and
    /// event kind.
    pub fn with_windows(store: Arc<dyn EventStore>, config: WindowConfig) -> Self {
        Self {
            store,
            live: Mutex::new(Live {
                windows: Some(Windows::new(config)),
                ..Live::default()
            }),
        }
    }

    /// Tumbling windows of a campaign, oldest first (empty without [`Collector::with_windows`]).
    pub fn tumbling(&self, campaign: &CampaignId, granularity: Granularity) -> Vec<Window> {
        self.lock()
            .windows
            .as_ref()
            .map(|w| w.tumbling(campaign, granularity))
            .unwrap_or_default()
    }

    /// A sliding window of real time ending at `now` (see [`Windows::sliding`]).
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] for a bad width, or when the collector keeps no windows.
    pub fn sliding(
        &self,
        campaign: &CampaignId,
        width: SignedDuration,
        now: Timestamp,
    ) -> Result<WindowCounts> {
        match self.lock().windows.as_ref() {
            Some(w) => w.sliding(campaign, width, now),
            None => Err(AnalyticsError::InvalidQuery(
                "this collector keeps no windows: build it with Collector::with_windows".into(),
            )),
        }
    }

    /// Events of a campaign too old for every kept window (see [`Windows::late`]).
    pub fn late(&self, campaign: &CampaignId) -> u64 {
        self.lock().windows.as_ref().map_or(0, |w| w.late(campaign))
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // Counters are plain integers; a panic elsewhere cannot leave them half-written.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live counts of a campaign: (variant, event kind name) to count.
    pub fn counts(&self, campaign: &CampaignId) -> Counts {
        self.lock()
            .counts
            .get(campaign)
            .cloned()
            .unwrap_or_default()
    }

    /// The live count of one kind for one variant of a campaign.
    pub fn count(&self, campaign: &CampaignId, variant: Option<&VariantId>, kind: &str) -> u64 {
        self.lock()
            .counts
            .get(campaign)
            .map(|c| {
                c.iter()
                    .filter(|((v, k), _)| v.as_ref() == variant && *k == kind)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

#[async_trait]
impl EventSink for Collector {
    async fn record(&self, events: &[Event]) -> mia_core::Result<()> {
        self.store.append_events(events).await?;
        let mut live = self.lock();
        for e in events {
            if !live.seen.insert((e.contact.clone(), e.id.clone())) {
                continue;
            }
            if let Some(windows) = live.windows.as_mut() {
                windows.add(e);
            }
            if let Some(campaign) = &e.campaign {
                *live
                    .counts
                    .entry(campaign.clone())
                    .or_default()
                    .entry((e.variant.clone(), e.kind.name()))
                    .or_default() += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mia_core::{ContactId, EventKind, MemoryStore};

    fn event(id: &str, kind: EventKind) -> Event {
        Event {
            id: EventId::new(id),
            at: jiff::Timestamp::UNIX_EPOCH,
            contact: ContactId::new("u"),
            campaign: Some(CampaignId::new("k")),
            variant: Some(VariantId::new("A")),
            step: None,
            kind,
        }
    }

    #[tokio::test]
    async fn redelivered_events_count_once_and_reach_the_store_once() {
        let store = Arc::new(MemoryStore::new());
        let c = Collector::new(store.clone());
        let batch = [event("1", EventKind::Sent), event("2", EventKind::Clicked)];
        c.record(&batch).await.unwrap();
        c.record(&batch).await.unwrap();
        let k = CampaignId::new("k");
        let a = VariantId::new("A");
        assert_eq!(c.count(&k, Some(&a), "sent"), 1);
        assert_eq!(c.count(&k, Some(&a), "clicked"), 1);
        assert_eq!(c.count(&k, None, "sent"), 0);
        assert_eq!(store.campaign_events(&k).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn one_id_on_two_contacts_counts_twice() {
        let store = Arc::new(MemoryStore::new());
        let c = Collector::new(store.clone());
        let first = event("1", EventKind::Sent);
        let second = Event {
            contact: ContactId::new("v"),
            ..first.clone()
        };
        c.record(&[first.clone(), second.clone()]).await.unwrap();
        c.record(&[second]).await.unwrap();
        let k = CampaignId::new("k");
        assert_eq!(c.count(&k, Some(&VariantId::new("A")), "sent"), 2);
        assert_eq!(store.campaign_events(&k).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn windows_count_each_event_once_and_need_with_windows() {
        use crate::window::{Granularity, WindowConfig};
        let store = Arc::new(MemoryStore::new());
        let c = Collector::with_windows(store.clone(), WindowConfig::default());
        let batch = [event("1", EventKind::Sent), event("2", EventKind::Sent)];
        c.record(&batch).await.unwrap();
        c.record(&batch[1..]).await.unwrap();
        let k = CampaignId::new("k");
        let days = c.tumbling(&k, Granularity::Day);
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].counts.total("sent"), 2);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let width = jiff::SignedDuration::from_mins(1);
        assert_eq!(c.sliding(&k, width, now).unwrap().total("sent"), 2);
        assert_eq!(c.late(&k), 0);

        let plain = Collector::new(store);
        plain.record(&batch).await.unwrap();
        assert!(plain.tumbling(&k, Granularity::Day).is_empty());
        let err = plain.sliding(&k, width, now).unwrap_err();
        assert!(err.to_string().contains("with_windows"), "{err}");
    }
}
