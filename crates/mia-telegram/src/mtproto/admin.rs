//! Chat administration over MTProto: create groups, supergroups and channels, export invite
//! links, resolve usernames (cached, positive and negative), and invite people who consented
//! to join, reading Telegram's `missing_invitees` so privacy refusals are reported, not lost.
//!
//! The calls need a network; what decides anything is pure and unit-tested here: the chat a
//! creation produced, the invite report from `missing_invitees` and per-person errors, and the
//! flood-wait mapping.

use std::collections::HashSet;

use grammers_client::peer::Peer;
use grammers_client::sender::InvocationError;
use grammers_client::session::types::PeerId;
use grammers_client::tl;
use mia_core::{ChatKind, FailureReason, InviteReport, Invitee, NewChat, TelegramPeer};

use super::client::{MtprotoFailure, classify, rpc_text};
use super::transport::MtprotoTransport;
use crate::error::TelegramError;
use crate::username::normalize_username;

/// A flood wait on an administrative call as [`TelegramError::FloodWait`] (the caller reads
/// the wait with [`crate::retry_after`]); `None` for any other failure.
pub(super) fn flood_wait(method: &'static str, error: &InvocationError) -> Option<TelegramError> {
    match classify(error) {
        MtprotoFailure::RetryAfter { after, .. } => {
            Some(TelegramError::FloodWait { method, after })
        }
        _ => None,
    }
}

/// The chat Telegram created, from the `chats` of its answer: the first one of the asked kind.
pub(super) fn created_chat(updates: &tl::enums::Updates, kind: ChatKind) -> Option<TelegramPeer> {
    use tl::enums::{Chat, Updates};
    let chats: &[Chat] = match updates {
        Updates::Updates(u) => &u.chats,
        Updates::Combined(u) => &u.chats,
        _ => &[],
    };
    chats.iter().find_map(|chat| {
        let (id, channel) = match (chat, kind) {
            (Chat::Chat(c), ChatKind::Group) => (PeerId::chat(c.id)?, false),
            (Chat::Forbidden(c), ChatKind::Group) => (PeerId::chat(c.id)?, false),
            (Chat::Channel(c), ChatKind::Supergroup | ChatKind::Channel) => {
                (PeerId::channel(c.id)?, c.broadcast)
            }
            (Chat::ChannelForbidden(c), ChatKind::Supergroup | ChatKind::Channel) => {
                (PeerId::channel(c.id)?, c.broadcast)
            }
            _ => return None,
        };
        let id = id.bot_api_dialog_id()?;
        Some(if channel {
            TelegramPeer::channel(id)
        } else {
            TelegramPeer::group(id)
        })
    })
}

/// Who was added and who not, from Telegram's `missing_invitees` (people whose privacy
/// settings keep them out; Premium might let them in): everyone asked for is in the report.
pub(super) fn invite_report(
    invitees: &[Invitee],
    missing: &[tl::enums::MissingInvitee],
) -> InviteReport {
    let missing: HashSet<i64> = missing
        .iter()
        .map(|tl::enums::MissingInvitee::Invitee(m)| m.user_id)
        .collect();
    let mut report = InviteReport::default();
    for invitee in invitees {
        if missing.contains(&invitee.peer().id) {
            report
                .not_invited
                .push((invitee.contact().clone(), FailureReason::PrivacyRestricted));
        } else {
            report.invited.push(invitee.contact().clone());
        }
    }
    report
}

/// What an error adding one person means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PersonOutcome {
    /// They are in the chat (`USER_ALREADY_PARTICIPANT`).
    Member,
    /// They were not added, for this reason; go on with the others.
    Refused(FailureReason),
    /// Stop inviting: the account must wait (flood) or is limited (PEER_FLOOD); the rest are
    /// reported as not tried.
    Stop(FailureReason),
}

/// Maps the error of one `messages.addChatUser`, or of an invitation as a whole.
pub(super) fn person_outcome(error: &InvocationError) -> Option<PersonOutcome> {
    if let InvocationError::Rpc(rpc) = error {
        match rpc.name.as_str() {
            "USER_ALREADY_PARTICIPANT" => return Some(PersonOutcome::Member),
            "USER_CHANNELS_TOO_MUCH" | "USER_KICKED" | "USER_BOT" | "BOT_GROUPS_BLOCKED" => {
                return Some(PersonOutcome::Refused(FailureReason::Other(
                    rpc.name.clone(),
                )));
            }
            "USERS_TOO_MUCH" | "CHAT_MEMBER_ADD_FAILED" => {
                return Some(PersonOutcome::Stop(FailureReason::Other(rpc.name.clone())));
            }
            _ => {}
        }
    }
    match classify(error) {
        MtprotoFailure::RetryAfter { after, .. } => {
            Some(PersonOutcome::Stop(FailureReason::Other(format!(
                "FLOOD_WAIT_{}: not tried; invite again later",
                after.as_secs()
            ))))
        }
        MtprotoFailure::Undeliverable(FailureReason::SpamLimited) => {
            Some(PersonOutcome::Stop(FailureReason::SpamLimited))
        }
        MtprotoFailure::Undeliverable(reason) => Some(PersonOutcome::Refused(reason)),
        _ => None,
    }
}

fn chat_id(peer: TelegramPeer) -> Result<PeerId, TelegramError> {
    PeerId::from_bot_api_dialog_id(peer.id)
        .ok_or_else(|| TelegramError::Config(format!("{} is not a Telegram chat id", peer.id)))
}

impl MtprotoTransport {
    fn admin_error(&self, method: &'static str, error: &InvocationError) -> mia_core::Error {
        if classify(error) == MtprotoFailure::Undeliverable(FailureReason::SpamLimited) {
            self.mark_spam_limited();
        }
        flood_wait(method, error)
            .unwrap_or_else(|| self.client().error(method, error))
            .into()
    }

    pub(super) async fn create(&self, chat: &NewChat) -> mia_core::Result<TelegramPeer> {
        chat.validate()?;
        let (method, kind) = ("channels.createChannel", chat.kind);
        let updates = match kind {
            ChatKind::Group => {
                let request = tl::functions::messages::CreateChat {
                    users: Vec::new(),
                    title: chat.title.clone(),
                    ttl_period: None,
                };
                let method = "messages.createChat";
                match self
                    .client()
                    .call(method, move |c| async move { c.invoke(&request).await })
                    .await?
                {
                    Ok(tl::enums::messages::InvitedUsers::Users(invited)) => invited.updates,
                    Err(e) => return Err(self.admin_error(method, &e)),
                }
            }
            ChatKind::Supergroup | ChatKind::Channel => {
                let request = tl::functions::channels::CreateChannel {
                    broadcast: kind == ChatKind::Channel,
                    megagroup: kind == ChatKind::Supergroup,
                    for_import: false,
                    forum: false,
                    title: chat.title.clone(),
                    about: chat.about.clone(),
                    geo_point: None,
                    address: None,
                    ttl_period: None,
                };
                match self
                    .client()
                    .call(method, move |c| async move { c.invoke(&request).await })
                    .await?
                {
                    Ok(updates) => updates,
                    Err(e) => return Err(self.admin_error(method, &e)),
                }
            }
        };
        created_chat(&updates, kind).ok_or_else(|| {
            TelegramError::Mtproto {
                method,
                message: "Telegram's answer did not name the new chat".into(),
                retryable: false,
            }
            .into()
        })
    }

    pub(super) async fn invite_link(
        &self,
        chat: TelegramPeer,
        member_limit: Option<u32>,
    ) -> mia_core::Result<String> {
        let usage_limit = match member_limit {
            None => None,
            Some(n @ 1..=99_999) => i32::try_from(n).ok(),
            Some(n) => {
                return Err(mia_core::Error::invalid(format!(
                    "member_limit must be 1 to 99999, got {n}"
                )));
            }
        };
        let peer = self.client().peer_ref(chat_id(chat)?).await;
        let request = tl::functions::messages::ExportChatInvite {
            legacy_revoke_permanent: false,
            request_needed: false,
            peer: peer.into(),
            expire_date: None,
            usage_limit,
            title: None,
            subscription_pricing: None,
        };
        let method = "messages.exportChatInvite";
        match self
            .client()
            .call(method, move |c| async move { c.invoke(&request).await })
            .await?
        {
            Ok(tl::enums::ExportedChatInvite::ChatInviteExported(invite)) => Ok(invite.link),
            Ok(other) => Err(TelegramError::Mtproto {
                method,
                message: format!("unexpected answer: {other:?}"),
                retryable: false,
            }
            .into()),
            Err(e) => Err(self.admin_error(method, &e)),
        }
    }

    pub(super) async fn resolve(&self, username: &str) -> mia_core::Result<Option<TelegramPeer>> {
        let name =
            normalize_username(username).map_err(|e| mia_core::Error::invalid(e.to_string()))?;
        let now = self.clock().now();
        if let Some(cached) = self.usernames().get(&name, now) {
            return Ok(cached);
        }
        let method = "contacts.resolveUsername";
        let asked = name.clone();
        let answer = self
            .client()
            .call(
                method,
                move |c| async move { c.resolve_username(&asked).await },
            )
            .await?;
        let peer = match answer {
            Ok(peer) => peer.and_then(|peer| {
                let id = peer.id().bot_api_dialog_id()?;
                Some(match peer {
                    Peer::User(_) => TelegramPeer::user(id),
                    Peer::Channel(_) => TelegramPeer::channel(id),
                    _ => TelegramPeer::group(id),
                })
            }),
            Err(InvocationError::Rpc(rpc)) if rpc.name == "USERNAME_INVALID" => None,
            Err(e) => return Err(self.admin_error(method, &e)),
        };
        self.usernames().put(&name, peer, now);
        Ok(peer)
    }

    pub(super) async fn invite(
        &self,
        chat: TelegramPeer,
        invitees: &[Invitee],
    ) -> mia_core::Result<InviteReport> {
        let chat_peer = chat_id(chat)?;
        let chat_ref = self.client().peer_ref(chat_peer).await;
        let mut users = Vec::with_capacity(invitees.len());
        for invitee in invitees {
            let id = chat_id(invitee.peer())?;
            users.push(self.client().peer_ref(id).await);
        }
        if chat_peer.kind() == grammers_client::session::types::PeerKind::Channel {
            let request = tl::functions::channels::InviteToChannel {
                channel: chat_ref.into(),
                users: users.into_iter().map(Into::into).collect(),
            };
            let method = "channels.inviteToChannel";
            return match self
                .client()
                .call(method, move |c| async move { c.invoke(&request).await })
                .await?
            {
                Ok(tl::enums::messages::InvitedUsers::Users(invited)) => {
                    Ok(invite_report(invitees, &invited.missing_invitees))
                }
                Err(e) => match person_outcome(&e) {
                    // A refusal of the whole call (one person, or the account limited): everyone
                    // asked for is reported with it.
                    Some(PersonOutcome::Refused(reason) | PersonOutcome::Stop(reason))
                        if flood_wait(method, &e).is_none() =>
                    {
                        if reason == FailureReason::SpamLimited {
                            self.mark_spam_limited();
                        }
                        Ok(InviteReport {
                            invited: Vec::new(),
                            not_invited: invitees
                                .iter()
                                .map(|i| (i.contact().clone(), reason.clone()))
                                .collect(),
                        })
                    }
                    _ => Err(self.admin_error(method, &e)),
                },
            };
        }
        // A basic group: one `messages.addChatUser` per person.
        let chat_bare = chat_peer.bare_id().unwrap_or_default();
        let method = "messages.addChatUser";
        let mut report = InviteReport::default();
        let mut stopped: Option<FailureReason> = None;
        for (invitee, user) in invitees.iter().zip(users) {
            if let Some(reason) = &stopped {
                report
                    .not_invited
                    .push((invitee.contact().clone(), reason.clone()));
                continue;
            }
            let request = tl::functions::messages::AddChatUser {
                chat_id: chat_bare,
                user_id: user.into(),
                fwd_limit: 0,
            };
            let answer = self
                .client()
                .call(method, move |c| async move { c.invoke(&request).await })
                .await?;
            match answer {
                Ok(tl::enums::messages::InvitedUsers::Users(invited)) => {
                    let one =
                        invite_report(std::slice::from_ref(invitee), &invited.missing_invitees);
                    report.invited.extend(one.invited);
                    report.not_invited.extend(one.not_invited);
                }
                Err(e) => match person_outcome(&e) {
                    Some(PersonOutcome::Member) => report.invited.push(invitee.contact().clone()),
                    Some(PersonOutcome::Refused(reason)) => {
                        report.not_invited.push((invitee.contact().clone(), reason));
                    }
                    Some(PersonOutcome::Stop(reason)) => {
                        tracing::warn!(error = %rpc_text(&e), "mia.mtproto inviting stopped");
                        if reason == FailureReason::SpamLimited {
                            self.mark_spam_limited();
                        }
                        report
                            .not_invited
                            .push((invitee.contact().clone(), reason.clone()));
                        stopped = Some(reason);
                    }
                    // Nothing decided for this person and the call failed: report who was
                    // added so far only if someone was, else fail as a whole.
                    None if report.invited.is_empty() && report.not_invited.is_empty() => {
                        return Err(self.admin_error(method, &e));
                    }
                    None => {
                        let reason = FailureReason::Other(format!("{}: not tried", rpc_text(&e)));
                        report
                            .not_invited
                            .push((invitee.contact().clone(), reason.clone()));
                        stopped = Some(reason);
                    }
                },
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use grammers_client::sender::RpcError;
    use jiff::Timestamp;
    use mia_core::{ConsentRecord, Contact, Evidence, Purpose};

    use super::*;

    fn rpc(code: i32, name: &str) -> InvocationError {
        InvocationError::Rpc(RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: name.into(),
        }))
    }

    fn invitees(ids: &[i64]) -> Vec<Invitee> {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let purpose = Purpose::new("community");
        ids.iter()
            .map(|id| {
                let contact =
                    Contact::new(format!("c{id}"), TelegramPeer::user(*id), "UTC", now).unwrap();
                let grant = ConsentRecord::grant(
                    format!("c{id}"),
                    purpose.clone(),
                    Evidence::new("telegram_start", "payload=join"),
                    "v1",
                    now,
                );
                Invitee::with_consent(&contact, &purpose, &[grant], now).unwrap()
            })
            .collect()
    }

    #[test]
    fn missing_invitees_are_reported_not_lost() {
        let asked = invitees(&[11, 12, 13]);
        let missing = vec![tl::enums::MissingInvitee::Invitee(
            tl::types::MissingInvitee {
                premium_would_allow_invite: true,
                premium_required_for_pm: false,
                user_id: 12,
            },
        )];
        let report = invite_report(&asked, &missing);
        let names =
            |v: &[mia_core::ContactId]| v.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&report.invited), ["c11", "c13"]);
        assert_eq!(
            report.not_invited,
            vec![(
                mia_core::ContactId::new("c12"),
                FailureReason::PrivacyRestricted
            )]
        );
    }

    #[test]
    fn errors_adding_one_person_say_whether_to_go_on() {
        use PersonOutcome::*;
        let table = [
            (rpc(400, "USER_ALREADY_PARTICIPANT"), Some(Member)),
            (
                rpc(403, "USER_PRIVACY_RESTRICTED"),
                Some(Refused(FailureReason::PrivacyRestricted)),
            ),
            (
                rpc(400, "USER_NOT_MUTUAL_CONTACT"),
                Some(Refused(FailureReason::PrivacyRestricted)),
            ),
            (
                rpc(400, "INPUT_USER_DEACTIVATED"),
                Some(Refused(FailureReason::Deactivated)),
            ),
            (
                rpc(400, "USER_CHANNELS_TOO_MUCH"),
                Some(Refused(FailureReason::Other(
                    "USER_CHANNELS_TOO_MUCH".into(),
                ))),
            ),
            (
                rpc(400, "PEER_FLOOD"),
                Some(Stop(FailureReason::SpamLimited)),
            ),
            (
                rpc(420, "FLOOD_WAIT_90"),
                Some(Stop(FailureReason::Other(
                    "FLOOD_WAIT_90: not tried; invite again later".into(),
                ))),
            ),
            (
                rpc(400, "USERS_TOO_MUCH"),
                Some(Stop(FailureReason::Other("USERS_TOO_MUCH".into()))),
            ),
            (rpc(500, "RPC_CALL_FAIL"), None),
            (rpc(401, "AUTH_KEY_UNREGISTERED"), None),
        ];
        for (error, want) in table {
            assert_eq!(person_outcome(&error), want, "{error}");
        }
    }

    #[test]
    fn flood_waits_on_admin_calls_keep_their_wait() {
        let e = flood_wait("contacts.resolveUsername", &rpc(420, "FLOOD_WAIT_3600")).unwrap();
        assert!(e.is_retryable());
        let mia: mia_core::Error = e.into();
        assert!(mia.is_retryable());
        assert_eq!(crate::retry_after(&mia), Some(Duration::from_secs(3600)));
        assert!(flood_wait("x", &rpc(400, "USERNAME_INVALID")).is_none());
    }

    #[test]
    fn the_created_chat_is_read_from_the_answer() {
        let answer = |chats: Vec<tl::enums::Chat>| {
            tl::enums::Updates::Updates(tl::types::Updates {
                updates: Vec::new(),
                users: Vec::new(),
                chats,
                date: 0,
                seq: 0,
            })
        };
        let channel = |broadcast: bool| {
            tl::enums::Chat::ChannelForbidden(tl::types::ChannelForbidden {
                broadcast,
                megagroup: !broadcast,
                monoforum: false,
                id: 777,
                access_hash: 1,
                title: "Tea".into(),
                until_date: None,
            })
        };
        assert_eq!(
            created_chat(&answer(vec![channel(true)]), ChatKind::Channel),
            Some(TelegramPeer::channel(-1_000_000_000_777))
        );
        assert_eq!(
            created_chat(&answer(vec![channel(false)]), ChatKind::Supergroup),
            Some(TelegramPeer::group(-1_000_000_000_777))
        );
        let group = tl::enums::Chat::Forbidden(tl::types::ChatForbidden {
            id: 55,
            title: "Tastings".into(),
        });
        assert_eq!(
            created_chat(&answer(vec![group.clone()]), ChatKind::Group),
            Some(TelegramPeer::group(-55))
        );
        assert_eq!(created_chat(&answer(vec![group]), ChatKind::Channel), None);
        assert_eq!(
            created_chat(&tl::enums::Updates::TooLong, ChatKind::Group),
            None
        );
    }
}
