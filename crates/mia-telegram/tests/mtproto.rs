//! The MTProto transport without a network (an unreachable server, the session lease across
//! processes) and, opt-in by environment variables, against a real account.
#![cfg(feature = "mtproto")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use mia_telegram::TelegramError;
use mia_telegram::mtproto::{ApiHash, MtprotoClient, MtprotoConfig, SessionFile};

const HASH: &str = "0123456789abcdef0123456789abcdef";

/// A loopback address nobody listens on: bound, then released.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_retryable_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offline.session");
    let config = MtprotoConfig::new(12345, ApiHash::new(HASH).unwrap())
        .unwrap()
        .with_server(closed_port())
        .with_request_timeout(Duration::from_secs(20));
    let session = SessionFile::open(&path).unwrap();
    let err = MtprotoClient::connect(config, session).await.unwrap_err();
    assert!(
        matches!(
            err,
            TelegramError::Mtproto {
                method: "connect",
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable(), "{err}");
    let mia: mia_core::Error = err.into();
    assert!(
        matches!(mia, mia_core::Error::Transport { .. }),
        "transport down: {mia:?}"
    );
    assert!(
        mia.is_retryable(),
        "mia retries a transport that is down: {mia}"
    );

    // The failed connection lets go of the session, so the next attempt can lease it again.
    // Bounded: the connection task stops asynchronously.
    let mut reopened = None;
    for _ in 0..200 {
        match SessionFile::open(&path) {
            Ok(session) => {
                reopened = Some(session);
                break;
            }
            Err(TelegramError::SessionInUse { .. }) => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        reopened.is_some(),
        "the lease outlived the failed connection"
    );
}

const CHILD_ENV: &str = "MIA_TEST_MTPROTO_LEASE_PATH";

/// Run by [`the_lease_holds_across_processes`] in a child process: reports whether it could
/// open the session named by `MIA_TEST_MTPROTO_LEASE_PATH`.
#[test]
#[ignore = "helper: run in a child process by the_lease_holds_across_processes"]
fn lease_child() {
    let path = std::env::var(CHILD_ENV).expect("run by the_lease_holds_across_processes");
    match SessionFile::open(&path) {
        Ok(_) => println!("LEASE:acquired"),
        Err(TelegramError::SessionInUse { path }) => println!("LEASE:in_use:{path}"),
        Err(e) => println!("LEASE:error:{e}"),
    }
}

fn child_opens(path: &std::path::Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lease_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("LEASE:"))
        .unwrap_or_else(|| panic!("the child did not report: {stdout}"))
        .to_owned()
}

#[test]
fn the_lease_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.session");
    let owner = SessionFile::open(&path).unwrap();
    let report = child_opens(&path);
    assert!(
        report.starts_with("in_use:") && report.contains("shared.session"),
        "another process must not get the session while it is leased: {report}"
    );
    drop(owner);
    // The lock goes with the owner's file; a process started right after may still see it
    // for a moment (seen once in CI on a VM's disk), so it is asked a few times. A lease
    // that outlived its owner never comes free and fails here.
    let mut report = child_opens(&path);
    for _ in 0..20 {
        if report == "acquired" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        report = child_opens(&path);
    }
    assert_eq!(report, "acquired", "the lease ends with its owner");
}

/// Opt-in: `MIA_TEST_MTPROTO_API_ID`, `MIA_TEST_MTPROTO_API_HASH`, `MIA_TEST_MTPROTO_SESSION`
/// (a signed-in session file) and `MIA_TEST_MTPROTO_CHAT` (a user who wrote to the account
/// first) run a send, an in-process resend, a resend after a "crash" (a new connection, so only
/// Telegram's `random_id` can recognise it), an edit and a delete against real Telegram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_account_sends_once_per_key_even_across_restarts() {
    use mia_core::{
        ChatAdmin, ContactId, IdempotencyKey, OutboundMessage, SendOutcome, TelegramPeer, Transport,
    };
    use mia_telegram::mtproto::MtprotoTransport;
    let vars = [
        "MIA_TEST_MTPROTO_API_ID",
        "MIA_TEST_MTPROTO_API_HASH",
        "MIA_TEST_MTPROTO_SESSION",
        "MIA_TEST_MTPROTO_CHAT",
    ]
    .map(std::env::var);
    let [Ok(api_id), Ok(api_hash), Ok(session_path), Ok(chat)] = vars else {
        eprintln!(
            "skipped: set MIA_TEST_MTPROTO_API_ID, MIA_TEST_MTPROTO_API_HASH, \
             MIA_TEST_MTPROTO_SESSION and MIA_TEST_MTPROTO_CHAT to run against real Telegram"
        );
        return;
    };
    let config = MtprotoConfig::new(
        api_id.parse().expect("MIA_TEST_MTPROTO_API_ID is a number"),
        ApiHash::new(api_hash).expect("MIA_TEST_MTPROTO_API_HASH"),
    )
    .unwrap();
    let chat: i64 = chat.parse().expect("MIA_TEST_MTPROTO_CHAT is a chat id");
    let connect = || async {
        // The previous connection releases the lease asynchronously; bounded wait.
        for _ in 0..200 {
            match SessionFile::open(&session_path) {
                Ok(session) => {
                    let client = MtprotoClient::connect(config.clone(), session)
                        .await
                        .unwrap();
                    assert!(client.is_authorized(), "sign the session in first");
                    return MtprotoTransport::new(client).unwrap();
                }
                Err(TelegramError::SessionInUse { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the session stayed leased");
    };
    let message = OutboundMessage::new(
        IdempotencyKey::new(format!("live:{}", jiff::Timestamp::now())),
        ContactId::new("live"),
        TelegramPeer::user(chat),
        "mia live test: you asked for this (MIA_TEST_MTPROTO_CHAT).",
    )
    .with_silent(true);
    let transport = connect().await;
    assert_eq!(transport.name(), "mtproto");
    assert!(transport.capabilities().idempotent_sends);
    let first = transport.send(&message).await.unwrap();
    let SendOutcome::Sent {
        message_id,
        duplicate: false,
    } = first
    else {
        panic!("{first:?}");
    };
    assert_eq!(
        transport.send(&message).await.unwrap(),
        SendOutcome::Sent {
            message_id,
            duplicate: true
        }
    );
    drop(transport);

    let restarted = connect().await;
    tokio::time::sleep(Duration::from_secs(2)).await; // one message per second per chat
    let again = restarted.send(&message).await.unwrap();
    assert!(
        matches!(
            again,
            SendOutcome::Sent {
                duplicate: true,
                ..
            }
        ),
        "Telegram recognises the random_id after a restart: {again:?}"
    );
    let peer = TelegramPeer::user(chat);
    restarted
        .edit_message(peer, message_id, "mia live test (edited).")
        .await
        .unwrap();
    restarted.delete_message(peer, message_id).await.unwrap();
}
