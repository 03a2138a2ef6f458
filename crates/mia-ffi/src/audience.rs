//! Contacts, consent records and inbound events.

use std::ffi::c_char;

use mia::{Agent, CampaignId, ContactId, IdempotencyKey, InboundEvent, InboundKind, TelegramPeer};

use crate::agent::{AgentEntry, MiaAgent, with_agent};
use crate::boundary;
use crate::error::{FfiError, FfiResult, MiaStatus};
use crate::strings::{Out, OutString, json_arg};
use crate::wire::{ConsentInput, ContactInput, InboundInput, InboundKindInput, OneOrMany};

/// Adds or replaces contacts by id: one JSON object or an array of them, each
/// `{"id": "user-1", "user_id": 1001, "time_zone": "Europe/Berlin"}` with optional `"locale"`,
/// `"attributes"` (an object), `"created_at"` (RFC 3339) and `"peer"`
/// (`{"kind": "user" | "group" | "channel", "id": N}`) in place of `"user_id"`.
/// Stores how many were written in `*out_count`. Nothing is written if one is invalid.
///
/// Knowing a contact never allows a message: only a consent record does.
///
/// # Safety
/// `agent` is a handle or `NULL`; `contacts_json` is `NULL` or a NUL-terminated string;
/// `out_count` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_contact_import(
    agent: *mut MiaAgent,
    contacts_json: *const c_char,
    out_count: *mut usize,
) -> MiaStatus {
    boundary::run("mia_contact_import", || {
        // SAFETY: the caller promises `out_count` is valid for a write.
        let out = unsafe { Out::new(out_count, 0, "out_count") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let input: OneOrMany<ContactInput> = unsafe { json_arg(contacts_json, "contacts_json") }?;
        with_agent(agent, |entry, agent| {
            let now = agent.now();
            let contacts = input
                .into_vec()
                .into_iter()
                .map(|c| c.into_contact(now))
                .collect::<FfiResult<Vec<_>>>()?;
            entry.block_on(agent.import_contacts(&contacts))?;
            out.set(contacts.len());
            Ok(())
        })
    })
}

/// Appends consent records: one JSON object or an array, each
/// `{"contact": "user-1", "evidence": {"method": "web_form", "reference": "form-17"},
/// "notice_version": "v3"}` with optional `"purpose"` (default `"marketing"`), `"status"`
/// (`"granted"` default, or `"withdrawn"`), `"basis"` (`"consent"` default, or
/// `"soft_opt_in"`), `"recorded_at"` and `"expires_at"` (RFC 3339; recorded defaults to the
/// agent's clock). Evidence is required; a grant also needs `"notice_version"`. A withdrawal
/// cancels the contact's queued messages for that purpose at once. Stores how many records
/// were appended in `*out_count`.
///
/// # Safety
/// `agent` is a handle or `NULL`; `records_json` is `NULL` or a NUL-terminated string;
/// `out_count` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_consent_record(
    agent: *mut MiaAgent,
    records_json: *const c_char,
    out_count: *mut usize,
) -> MiaStatus {
    boundary::run("mia_consent_record", || {
        // SAFETY: the caller promises `out_count` is valid for a write.
        let out = unsafe { Out::new(out_count, 0, "out_count") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let input: OneOrMany<ConsentInput> = unsafe { json_arg(records_json, "records_json") }?;
        with_agent(agent, |entry, agent| {
            let now = agent.now();
            let records = input
                .into_vec()
                .into_iter()
                .map(|r| r.into_record(now))
                .collect::<FfiResult<Vec<_>>>()?;
            entry.block_on(agent.record_consent(&records))?;
            out.set(records.len());
            Ok(())
        })
    })
}

/// Records what contacts did: one JSON object or an array, each with a `"kind"` and who did it
/// (`"contact"`: a contact id, or `"user_id"`: a Telegram user id):
/// - `"opt_in"`: `/start` with optional `"payload"`, the purpose (default marketing); someone
///   new becomes a contact (`tg:<user_id>`, time zone UTC). The evidence is the event.
/// - `"stop"`: withdraws every purpose and cancels their queued messages before anything else
///   is sent; one confirmation goes out through the send policy.
/// - `"reply"`: `"text"`, optional `"message_id"` it quotes. A STOP word alone is a STOP.
/// - `"delivered"`, `"read"`, `"click"`: about `"message_id"`, or `"campaign"` (the contact's
///   message of that campaign).
/// - `"conversion"`: as `"click"`, plus `"value_minor"` (order value in cents); rewards the
///   variant.
/// - `"blocked"`: the contact blocked the sender (a burst of blocks pauses campaigns).
///
/// Optional everywhere: `"id"` (deduplicates: an id seen before counts once; default fresh)
/// and `"at"` (RFC 3339, default the agent's clock). Stores the run statistics as JSON in
/// `*out_stats_json` (free with `mia_string_free`).
///
/// # Safety
/// `agent` is a handle or `NULL`; `events_json` is `NULL` or a NUL-terminated string;
/// `out_stats_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_inbound_record(
    agent: *mut MiaAgent,
    events_json: *const c_char,
    out_stats_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_inbound_record", || {
        // SAFETY: the caller promises `out_stats_json` is valid for a write.
        let out = unsafe { OutString::string(out_stats_json, "out_stats_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let input: OneOrMany<InboundInput> = unsafe { json_arg(events_json, "events_json") }?;
        with_agent(agent, |entry, agent| {
            let mut events = Vec::new();
            for item in input.into_vec() {
                events.push(entry.block_on(inbound_event(entry, agent, item))?);
            }
            let stats = entry.block_on(agent.handle_inbound(&events))?;
            out.set_json(&stats)
        })
    })
}

/// Turns the host's description into the transport's event.
async fn inbound_event(
    entry: &AgentEntry,
    agent: &Agent,
    input: InboundInput,
) -> FfiResult<InboundEvent> {
    use InboundKindInput as K;
    let stray = |field: &str, allowed: bool, present: bool| {
        if present && !allowed {
            Err(FfiError::invalid(format!(
                "`{field}` does not belong to a {} event",
                input.kind.name()
            )))
        } else {
            Ok(())
        }
    };
    stray("payload", input.kind == K::OptIn, input.payload.is_some())?;
    stray("text", input.kind == K::Reply, input.text.is_some())?;
    stray(
        "value_minor",
        input.kind == K::Conversion,
        input.value_minor.is_some(),
    )?;
    let about_message = matches!(
        input.kind,
        K::Reply | K::Delivered | K::Read | K::Click | K::Conversion
    );
    stray("message_id", about_message, input.message_id.is_some())?;
    stray("campaign", about_message, input.campaign.is_some())?;

    let store = agent.store();
    let (peer, contact): (TelegramPeer, Option<ContactId>) = match (&input.contact, input.user_id) {
        (Some(id), None) => {
            let id = ContactId::new(id.as_str());
            let contact = store
                .contact(&id)
                .await?
                .ok_or_else(|| FfiError::from(mia::Error::not_found("contact", &id)))?;
            (contact.peer, Some(id))
        }
        (None, Some(user)) => {
            let peer = TelegramPeer::user(user);
            (peer, store.contact_by_peer(&peer).await?.map(|c| c.id))
        }
        _ => {
            return Err(FfiError::invalid(
                "an inbound event names exactly one of contact and user_id",
            ));
        }
    };
    let message_id = match (input.message_id, &input.campaign) {
        (Some(_), Some(_)) => {
            return Err(FfiError::invalid("give message_id or campaign, not both"));
        }
        (Some(id), None) => Some(id),
        (None, Some(campaign)) => {
            let contact = contact.as_ref().ok_or_else(|| {
                FfiError::from(mia::Error::not_found("contact with user_id", peer.id))
            })?;
            let key = IdempotencyKey::for_job(&CampaignId::new(campaign.as_str()), contact, 0);
            let job = store.job(&key).await?;
            let sent = job.and_then(|j| j.message_id).ok_or_else(|| {
                FfiError::from(mia::Error::not_found(
                    "sent message of campaign",
                    format!("{campaign} to {contact}"),
                ))
            })?;
            Some(sent)
        }
        (None, None) => None,
    };
    let needs_message = || {
        message_id.ok_or_else(|| {
            FfiError::invalid(format!(
                "a {} event needs message_id or campaign",
                input.kind.name()
            ))
        })
    };
    let kind = match input.kind {
        K::OptIn => InboundKind::Command {
            name: "start".into(),
            payload: input.payload.clone().unwrap_or_default(),
        },
        K::Stop => InboundKind::Command {
            name: "stop".into(),
            payload: String::new(),
        },
        K::Reply => InboundKind::Text {
            text: input
                .text
                .clone()
                .ok_or_else(|| FfiError::invalid("a reply event needs text"))?,
            reply_to: message_id,
        },
        K::Delivered => InboundKind::Delivered {
            message_id: needs_message()?,
        },
        K::Read => InboundKind::Read {
            message_id: needs_message()?,
        },
        K::Click => InboundKind::Clicked {
            message_id: needs_message()?,
        },
        K::Conversion => InboundKind::Converted {
            message_id: needs_message()?,
            value_minor: match input.value_minor {
                Some(v) if v >= 0 => v,
                _ => {
                    return Err(FfiError::invalid(
                        "a conversion event needs a non-negative value_minor",
                    ));
                }
            },
        },
        K::Blocked => InboundKind::Blocked,
    };
    if input.kind != K::OptIn && contact.is_none() {
        return Err(FfiError::new(
            MiaStatus::MIA_NOT_FOUND,
            format!(
                "no contact has Telegram user {}: only opt_in creates one",
                peer.id
            ),
        ));
    }
    Ok(InboundEvent {
        id: input.id.clone().unwrap_or_else(|| entry.inbound_id()),
        at: input.at.unwrap_or_else(|| agent.now()),
        peer,
        kind,
    })
}
