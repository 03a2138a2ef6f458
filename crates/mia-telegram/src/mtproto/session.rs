//! [`SessionFile`]: grammers' session on disk, leased to one owner at a time.
//!
//! An MTProto session is an authorization key: whoever holds the file *is* the account. Telegram
//! answers a key used from two places at once with `AUTH_KEY_DUPLICATED` and revokes it, so the
//! file is leased: opening it takes an exclusive OS lock on `<path>.lock` that lasts as long as
//! the `SessionFile` (and so the client and transport built on it), and a second open — in this
//! process or another — fails with [`TelegramError::SessionInUse`] naming the file.
//!
//! The data is written atomically (a temporary file renamed over the old one, mode 0600 on Unix);
//! the lock lives in its own file so the rename never drops it.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use grammers_client::session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};
use grammers_client::session::{BoxFuture, Session, SessionData};
use serde::{Deserialize, Serialize};

use crate::error::TelegramError;

/// The on-disk format version, bumped on incompatible changes.
const FORMAT: u32 = 1;

struct State {
    data: SessionData,
    dirty: bool,
}

/// grammers' session (data centres, authorization keys, cached peers, update state) in a file,
/// leased to this value for as long as it lives.
///
/// Implements grammers' [`Session`] storage. Authorization keys and data centre moves are written
/// at once; cached peers and the update state are written by [`save`](Self::save), which the
/// transport calls after each confirmed batch of updates, and on drop.
///
/// Its bytes are secrets: `Debug` shows the path and whether it is signed in, nothing else, and
/// no error quotes the file.
pub struct SessionFile {
    path: PathBuf,
    /// The lease: an exclusive lock on `<path>.lock`, released when this file handle closes.
    _lease: File,
    state: Mutex<State>,
    /// Serialises writers, so a newer snapshot is never overwritten by an older one.
    writing: Mutex<()>,
    server: Mutex<Option<SocketAddr>>,
}

impl fmt::Debug for SessionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFile")
            .field("path", &self.path)
            .field("signed_in", &self.is_signed_in())
            .finish_non_exhaustive()
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn private_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .create(true)
        .write(true)
        .read(true)
        .truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

impl SessionFile {
    /// Opens (or starts) the session at `path` and takes its lease.
    ///
    /// # Errors
    /// [`TelegramError::SessionInUse`] while another `SessionFile` holds it, in this process or
    /// another; [`TelegramError::Session`] when the file cannot be read or is not a mia session.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TelegramError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let io_error = |what: &str, e: std::io::Error| TelegramError::Session {
            path: shown.clone(),
            message: format!("{what}: {e}"),
        };
        let lease = private_file(&lock_path(&path), false)
            .map_err(|e| io_error("cannot create the lock file", e))?;
        match lease.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(TelegramError::SessionInUse { path: shown });
            }
            Err(TryLockError::Error(e)) => return Err(io_error("cannot lock", e)),
        }
        // For people looking at the lock file; the lock itself is what counts.
        let _ = lease.set_len(0);
        let _ = (&lease).write_all(format!("{}\n", std::process::id()).as_bytes());

        let data = match File::open(&path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)
                    .map_err(|e| io_error("cannot read", e))?;
                decode(&bytes).map_err(|message| TelegramError::Session {
                    path: shown.clone(),
                    message,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SessionData::default(),
            Err(e) => return Err(io_error("cannot open", e)),
        };
        Ok(Self {
            path,
            _lease: lease,
            state: Mutex::new(State { data, dirty: false }),
            writing: Mutex::new(()),
            server: Mutex::new(None),
        })
    }

    /// The session file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an account is signed in with this session (its own user is known).
    pub fn is_signed_in(&self) -> bool {
        self.lock().data.peer_infos.values().any(|p| {
            matches!(
                p,
                PeerInfo::User {
                    is_self: Some(true),
                    ..
                }
            )
        })
    }

    /// Writes what changed since the last write.
    ///
    /// # Errors
    /// [`TelegramError::Session`] when the file cannot be written.
    pub fn save(&self) -> Result<(), TelegramError> {
        let _writer = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = {
            let mut state = self.lock();
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            encode(&state.data)
        };
        self.write(&bytes).inspect_err(|_| self.lock().dirty = true)
    }

    /// Points every data centre at `address` (in memory only; never written).
    pub(crate) fn set_server(&self, address: Option<SocketAddr>) {
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = address;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before anything can panic, so poison is harmless.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, bytes: &[u8]) -> Result<(), TelegramError> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let result = (|| {
            let mut file = private_file(&tmp, true)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        result.map_err(|e| TelegramError::Session {
            path: self.path.display().to_string(),
            message: format!("cannot write: {e}"),
        })
    }

    /// Applies `change` and, when it returns true (something that must survive a crash changed),
    /// writes the file at once.
    fn change(&self, change: impl FnOnce(&mut SessionData) -> bool) -> Result<(), TelegramError> {
        let urgent = {
            let mut state = self.lock();
            let urgent = change(&mut state.data);
            state.dirty = true;
            urgent
        };
        if urgent { self.save() } else { Ok(()) }
    }
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "mia.mtproto could not save the session on close");
        }
    }
}

impl Session for SessionFile {
    type Error = TelegramError;

    fn home_dc_id(&self) -> Result<i32, TelegramError> {
        Ok(self.lock().data.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), TelegramError>> {
        Box::pin(async move {
            self.change(|data| {
                let moved = data.home_dc != dc_id;
                data.home_dc = dc_id;
                moved
            })
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, TelegramError> {
        let stored = self.lock().data.dc_options.get(&dc_id).cloned();
        let server = *self.server.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match server {
            None => stored,
            Some(address) => {
                let mut option = stored.unwrap_or(DcOption {
                    id: dc_id,
                    ipv4: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0),
                    ipv6: SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 0, 0, 0),
                    auth_key: None,
                });
                match address {
                    SocketAddr::V4(v4) => {
                        option.ipv4 = v4;
                        option.ipv6 = SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0);
                    }
                    SocketAddr::V6(v6) => option.ipv6 = v6,
                }
                Some(option)
            }
        })
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), TelegramError>> {
        let dc_option = dc_option.clone();
        Box::pin(async move {
            self.change(|data| {
                // grammers stores every data centre on every connect; only a change is written.
                let changed = data.dc_options.get(&dc_option.id) != Some(&dc_option);
                data.dc_options.insert(dc_option.id, dc_option);
                changed
            })
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, TelegramError>> {
        Box::pin(async move {
            let state = self.lock();
            if peer == PeerId::self_user() {
                return Ok(state
                    .data
                    .peer_infos
                    .values()
                    .find(|p| {
                        matches!(
                            p,
                            PeerInfo::User {
                                is_self: Some(true),
                                ..
                            }
                        )
                    })
                    .cloned());
            }
            Ok(state.data.peer_infos.get(&peer).cloned())
        })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), TelegramError>> {
        Box::pin(async move {
            let is_self = matches!(
                peer,
                PeerInfo::User {
                    is_self: Some(true),
                    ..
                }
            );
            self.change(|data| {
                data.peer_infos
                    .entry(peer.id())
                    .or_insert_with(|| peer.clone())
                    .extend_info(&peer);
                // Signing in must survive a crash; other peers are written with the next save.
                is_self
            })
        })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, TelegramError>> {
        Box::pin(async move { Ok(self.lock().data.updates_state.clone()) })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), TelegramError>> {
        Box::pin(async move {
            self.change(|data| {
                let state = &mut data.updates_state;
                match update {
                    UpdateState::All(all) => *state = all,
                    UpdateState::Primary { pts, date, seq } => {
                        state.pts = pts;
                        state.date = date;
                        state.seq = seq;
                    }
                    UpdateState::Secondary { qts } => state.qts = qts,
                    UpdateState::Channel { id, pts } => {
                        state.channels.retain(|c| c.id != id);
                        state.channels.push(ChannelState { id, pts });
                    }
                }
                false
            })
        })
    }
}

// --- The file format: JSON, authorization keys in hex. ---

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    home_dc: i32,
    dcs: Vec<StoredDc>,
    peers: Vec<StoredPeer>,
    updates: StoredUpdates,
}

#[derive(Serialize, Deserialize)]
struct StoredDc {
    id: i32,
    ipv4: SocketAddrV4,
    ipv6: SocketAddrV6,
    auth_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredPeer {
    User {
        id: i64,
        auth: Option<i64>,
        bot: Option<bool>,
        is_self: Option<bool>,
    },
    Chat {
        id: i64,
    },
    Channel {
        id: i64,
        auth: Option<i64>,
        channel: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredUpdates {
    pts: i32,
    qts: i32,
    date: i32,
    seq: i32,
    channels: Vec<(i64, i32)>,
}

fn encode(data: &SessionData) -> Vec<u8> {
    let mut dcs: Vec<StoredDc> = data
        .dc_options
        .values()
        .map(|dc| StoredDc {
            id: dc.id,
            ipv4: dc.ipv4,
            ipv6: dc.ipv6,
            auth_key: dc.auth_key.as_ref().map(|k| hex(k)),
        })
        .collect();
    dcs.sort_by_key(|dc| dc.id);
    let mut peers: Vec<StoredPeer> = data
        .peer_infos
        .values()
        .map(|p| match p {
            PeerInfo::User {
                id,
                auth,
                bot,
                is_self,
            } => StoredPeer::User {
                id: *id,
                auth: auth.map(PeerAuth::hash),
                bot: *bot,
                is_self: *is_self,
            },
            PeerInfo::Chat { id } => StoredPeer::Chat { id: *id },
            PeerInfo::Channel { id, auth, kind } => StoredPeer::Channel {
                id: *id,
                auth: auth.map(PeerAuth::hash),
                channel: kind.map(|k| channel_kind_name(k).to_owned()),
            },
        })
        .collect();
    peers.sort_by_key(|p| match p {
        StoredPeer::User { id, .. } => (0, *id),
        StoredPeer::Chat { id } => (1, *id),
        StoredPeer::Channel { id, .. } => (2, *id),
    });
    let u = &data.updates_state;
    let stored = Stored {
        format: FORMAT,
        home_dc: data.home_dc,
        dcs,
        peers,
        updates: StoredUpdates {
            pts: u.pts,
            qts: u.qts,
            date: u.date,
            seq: u.seq,
            channels: u.channels.iter().map(|c| (c.id, c.pts)).collect(),
        },
    };
    // Plain structs of numbers and strings: serialising them cannot fail.
    serde_json::to_vec_pretty(&stored).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<SessionData, String> {
    // serde_json's messages can quote the offending value; report only where it is.
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a mia MTProto session file (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if stored.format != FORMAT {
        return Err(format!(
            "session format {} is not supported (expected {FORMAT})",
            stored.format
        ));
    }
    let mut data = SessionData {
        home_dc: stored.home_dc,
        ..SessionData::default()
    };
    for dc in stored.dcs {
        let auth_key = match dc.auth_key {
            None => None,
            Some(text) => Some(unhex(&text).ok_or_else(|| {
                format!("the authorization key of data centre {} is damaged", dc.id)
            })?),
        };
        data.dc_options.insert(
            dc.id,
            DcOption {
                id: dc.id,
                ipv4: dc.ipv4,
                ipv6: dc.ipv6,
                auth_key,
            },
        );
    }
    let mut peers = HashMap::new();
    for peer in stored.peers {
        let info = match peer {
            StoredPeer::User {
                id,
                auth,
                bot,
                is_self,
            } => PeerInfo::User {
                id,
                auth: auth.map(PeerAuth::from_hash),
                bot,
                is_self,
            },
            StoredPeer::Chat { id } => PeerInfo::Chat { id },
            StoredPeer::Channel { id, auth, channel } => PeerInfo::Channel {
                id,
                auth: auth.map(PeerAuth::from_hash),
                kind: channel.as_deref().and_then(channel_kind),
            },
        };
        peers.insert(info.id(), info);
    }
    data.peer_infos = peers;
    let u = stored.updates;
    data.updates_state = UpdatesState {
        pts: u.pts,
        qts: u.qts,
        date: u.date,
        seq: u.seq,
        channels: u
            .channels
            .into_iter()
            .map(|(id, pts)| ChannelState { id, pts })
            .collect(),
    };
    Ok(data)
}

fn channel_kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Broadcast => "broadcast",
        ChannelKind::Megagroup => "megagroup",
        ChannelKind::Gigagroup => "gigagroup",
        ChannelKind::Community => "community",
    }
}

fn channel_kind(name: &str) -> Option<ChannelKind> {
    Some(match name {
        "broadcast" => ChannelKind::Broadcast,
        "megagroup" => ChannelKind::Megagroup,
        "gigagroup" => ChannelKind::Gigagroup,
        "community" => ChannelKind::Community,
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; 256]> {
    let bytes = text.as_bytes();
    if bytes.len() != 512 {
        return None;
    }
    let mut key = [0u8; 256];
    for (slot, pair) in key.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_second_open_fails_naming_the_file_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.session");
        let first = SessionFile::open(&path).unwrap();
        let err = SessionFile::open(&path).unwrap_err();
        assert!(matches!(err, TelegramError::SessionInUse { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("AUTH_KEY_DUPLICATED"), "{text}");
        drop(first);
        SessionFile::open(&path).expect("the lease ends with its owner");
    }

    #[test]
    fn keys_peers_and_update_state_survive_a_reopen_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.session");
        let session = SessionFile::open(&path).unwrap();
        assert!(!session.is_signed_in());
        let mut dc = session.dc_option(2).unwrap().unwrap();
        dc.auth_key = Some([0xab; 256]);
        block_on(async {
            session.set_dc_option(&dc).await.unwrap();
            session.set_home_dc_id(4).await.unwrap();
            session
                .cache_peer(PeerInfo::User {
                    id: 777,
                    auth: Some(PeerAuth::from_hash(-99)),
                    bot: Some(false),
                    is_self: Some(true),
                })
                .await
                .unwrap();
            session
                .cache_peer(PeerInfo::Channel {
                    id: 55,
                    auth: Some(PeerAuth::from_hash(12)),
                    kind: Some(ChannelKind::Megagroup),
                })
                .await
                .unwrap();
            session
                .set_update_state(UpdateState::Primary {
                    pts: 10,
                    date: 20,
                    seq: 30,
                })
                .await
                .unwrap();
            session
                .set_update_state(UpdateState::Channel { id: 55, pts: 7 })
                .await
                .unwrap();
        });
        let debug = format!("{session:?}");
        assert!(
            !debug.contains("abababab") && !debug.contains("171, 171"),
            "{debug}"
        );
        assert!(debug.contains("signed_in: true"), "{debug}");
        drop(session);

        let session = SessionFile::open(&path).unwrap();
        assert!(session.is_signed_in());
        assert_eq!(session.home_dc_id().unwrap(), 4);
        assert_eq!(
            session.dc_option(2).unwrap().unwrap().auth_key,
            Some([0xab; 256])
        );
        block_on(async {
            let me = session.peer(PeerId::self_user()).await.unwrap().unwrap();
            assert_eq!(me.id(), PeerId::user_unchecked(777));
            let channel = session
                .peer_ref(PeerId::channel_unchecked(55))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(channel.auth.hash(), 12);
            let state = session.updates_state().await.unwrap();
            assert_eq!((state.pts, state.date, state.seq), (10, 20, 30));
            assert_eq!(state.channels, vec![ChannelState { id: 55, pts: 7 }]);
        });
    }

    #[test]
    fn a_damaged_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.session");
        std::fs::write(&path, b"{\"format\": \"secret-bytes-here\"}").unwrap();
        let err = SessionFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a mia MTProto session file"), "{err}");
        assert!(!err.contains("secret-bytes-here"), "{err}");
    }

    #[test]
    fn the_server_override_reaches_every_data_centre_and_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.session");
        let session = SessionFile::open(&path).unwrap();
        let address: SocketAddr = "127.0.0.1:4430".parse().unwrap();
        session.set_server(Some(address));
        for dc in [1, 2, 5, 99] {
            let option = session.dc_option(dc).unwrap().unwrap();
            assert_eq!(SocketAddr::V4(option.ipv4), address, "dc {dc}");
        }
        session.set_server(None);
        assert_ne!(
            SocketAddr::V4(session.dc_option(2).unwrap().unwrap().ipv4),
            address
        );
        assert_eq!(session.dc_option(99).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.session");
        let session = SessionFile::open(&path).unwrap();
        block_on(session.set_home_dc_id(3)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
