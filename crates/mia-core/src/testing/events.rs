//! Conformance checks of the grouped reads of events: what a campaign report reads.

use super::t;
use crate::store::group_events;
use crate::{CampaignId, ContactId, Event, EventGroup, EventId, EventKind, Store, VariantId};

fn sorted(mut groups: Vec<EventGroup>) -> Vec<EventGroup> {
    groups.sort_by(|a, b| (&a.variant, &a.kind).cmp(&(&b.variant, &b.kind)));
    groups
}

/// [`event_groups`](crate::EventStore::event_groups) counts events and distinct contacts and
/// adds up conversion values per variant and kind;
/// [`campaign_events_of`](crate::EventStore::campaign_events_of) reads one kind;
/// [`campaign_events_page`](crate::EventStore::campaign_events_page) walks them. All agree
/// with the campaign's events, for this check's campaigns and every other the suite left.
pub(super) async fn event_groups_match_the_events<S: Store + ?Sized>(store: &S) {
    let campaign = CampaignId::new("k-events");
    let e = |id: &str, contact: &str, variant: Option<&str>, kind: EventKind| Event {
        id: EventId::new(id),
        at: t(100),
        contact: ContactId::new(contact),
        campaign: Some(campaign.clone()),
        variant: variant.map(VariantId::new),
        step: None,
        kind,
    };
    let converted = |value_minor| EventKind::Converted { value_minor };
    let events = [
        // c1 buys twice with A, c2 once: two contacts, three events, their values added.
        e("v1", "c1", Some("A"), converted(1_000)),
        e("v2", "c1", Some("A"), converted(500)),
        e("v3", "c2", Some("A"), converted(250)),
        // A refund recorded as a negative value, about no variant.
        e("v4", "c5", None, converted(-100)),
        e("k1", "c1", Some("A"), EventKind::Clicked),
        e("k2", "c2", Some("B"), EventKind::Clicked),
        // c3 opts out about A and about nothing, c4 about B.
        e("o1", "c3", None, EventKind::OptedOut),
        e("o2", "c3", Some("A"), EventKind::OptedOut),
        e("o3", "c4", Some("B"), EventKind::OptedOut),
    ];
    assert_eq!(store.append_events(&events).await.unwrap(), 9);
    // Another campaign's conversion counts only there.
    let elsewhere = Event {
        campaign: Some(CampaignId::new("k-events-other")),
        ..e("v5", "c1", Some("A"), converted(7))
    };
    store.append_events(&[elsewhere]).await.unwrap();

    let group = |variant: Option<&str>, kind: &str, events, contacts, value_minor| EventGroup {
        variant: variant.map(VariantId::new),
        kind: kind.into(),
        events,
        contacts,
        value_minor,
    };
    assert_eq!(
        sorted(store.event_groups(&campaign).await.unwrap()),
        [
            group(None, "converted", 1, 1, -100),
            group(None, "opted_out", 1, 1, 0),
            group(Some("A"), "clicked", 1, 1, 0),
            group(Some("A"), "converted", 3, 2, 1_750),
            group(Some("A"), "opted_out", 1, 1, 0),
            group(Some("B"), "clicked", 1, 1, 0),
            group(Some("B"), "opted_out", 1, 1, 0),
        ]
    );
    let ids = |found: Vec<Event>| found.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .campaign_events_of(&campaign, "opted_out")
            .await
            .unwrap()),
        [EventId::new("o1"), EventId::new("o2"), EventId::new("o3")]
    );
    assert!(
        store
            .campaign_events_of(&campaign, "sent")
            .await
            .unwrap()
            .is_empty()
    );
    let nowhere = CampaignId::new("k-none");
    assert!(store.event_groups(&nowhere).await.unwrap().is_empty());
    assert!(
        store
            .campaign_events_of(&nowhere, "converted")
            .await
            .unwrap()
            .is_empty()
    );

    // Ids of one time ordered as text: the 32-hex-digit ids mia derives (which a store may
    // keep packed) among others, and one id on two contacts.
    let ids_campaign = CampaignId::new("k-events-ids");
    let same_time = |id: &str, contact: &str| Event {
        campaign: Some(ids_campaign.clone()),
        ..e(id, contact, None, EventKind::Read)
    };
    store
        .append_events(&[
            same_time("ffffffffffffffffffffffffffffffff", "c1"),
            same_time("g", "c1"),
            same_time("0123456789abcdef0123456789abcdef", "c2"),
            same_time("0123456789abcdef0123456789abcdef", "c1"),
            same_time("01", "c1"),
            Event {
                at: t(99),
                ..same_time("zz", "c3")
            },
        ])
        .await
        .unwrap();
    let order: Vec<(String, String)> = store
        .campaign_events(&ids_campaign)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id.to_string(), e.contact.to_string()))
        .collect();
    let pair = |id: &str, contact: &str| (id.to_owned(), contact.to_owned());
    assert_eq!(
        order,
        [
            pair("zz", "c3"),
            pair("01", "c1"),
            pair("0123456789abcdef0123456789abcdef", "c1"),
            pair("0123456789abcdef0123456789abcdef", "c2"),
            pair("ffffffffffffffffffffffffffffffff", "c1"),
            pair("g", "c1"),
        ]
    );

    // Every campaign's events, those of earlier checks included ("k2" has events but no
    // campaign record).
    let mut campaigns: Vec<CampaignId> = store
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    campaigns.extend([campaign.clone(), ids_campaign, CampaignId::new("k2")]);
    let mut kinds_seen = std::collections::BTreeSet::new();
    for id in &campaigns {
        let all = store.campaign_events(id).await.unwrap();
        assert_eq!(
            sorted(store.event_groups(id).await.unwrap()),
            sorted(group_events(&all).unwrap()),
            "{id}"
        );
        for kind in EventKind::NAMES {
            let mut of_kind = all.clone();
            of_kind.retain(|e| e.kind.name() == kind);
            assert_eq!(
                store.campaign_events_of(id, kind).await.unwrap(),
                of_kind,
                "{id} {kind}"
            );
        }
        // Pages of one, two and three walk them in the same order (or one page of all, as the
        // default does); pages of one put a page break between every two neighbours.
        for limit in [1, 2, 3] {
            let mut walked: Vec<Event> = Vec::new();
            loop {
                let page = store
                    .campaign_events_page(id, walked.last(), limit)
                    .await
                    .unwrap();
                let rest = all.len() - walked.len();
                assert!(page.len() <= limit || page.len() == rest, "{id}");
                let last = page.len() != limit;
                walked.extend(page);
                if last {
                    break;
                }
            }
            assert_eq!(walked, all, "{id}, pages of {limit}");
        }
        kinds_seen.extend(all.iter().map(|e| e.kind.name()));
    }
    for kind in ["sent", "converted", "failed", "opted_out"] {
        assert!(kinds_seen.contains(kind), "no {kind} event to group");
    }

    // Conversion values that add up past an i64 fail the read; they never wrap.
    let big = CampaignId::new("k-events-big");
    let huge = |id: &str, contact: &str| Event {
        campaign: Some(big.clone()),
        ..e(id, contact, Some("A"), converted(i64::MAX / 2 + 1))
    };
    store
        .append_events(&[huge("h1", "c1"), huge("h2", "c2")])
        .await
        .unwrap();
    let overflow = store.event_groups(&big).await;
    assert!(overflow.is_err(), "{overflow:?}");
}

/// Pages of four over the nine events of this check's campaign: four, four, one.
pub(super) async fn event_pages_keep_their_limit<S: Store + ?Sized>(store: &S) {
    let campaign = CampaignId::new("k-events");
    let all = store.campaign_events(&campaign).await.unwrap();
    assert_eq!(all.len(), 9, "run after the conformance suite");
    let mut walked: Vec<Event> = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = store
            .campaign_events_page(&campaign, walked.last(), 4)
            .await
            .unwrap();
        sizes.push(page.len());
        let last = page.len() < 4;
        walked.extend(page);
        if last {
            break;
        }
    }
    assert_eq!(sizes, [4, 4, 1]);
    assert_eq!(walked, all);
}
