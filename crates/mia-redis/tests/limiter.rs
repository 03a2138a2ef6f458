//! The shared limiter against the real Redis on this machine (`MIA_TEST_REDIS_URL`).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::time::Duration;

use jiff::Timestamp;
use mia_core::{Gcra, RateLimiter};
use mia_redis::{RedisRateLimiter, TimeSource};
use rand::RngExt;

fn url() -> Option<String> {
    let url = std::env::var("MIA_TEST_REDIS_URL").ok();
    if url.is_none() {
        println!(
            "skipped: set MIA_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis limiter tests"
        );
    }
    url
}

fn prefix() -> String {
    format!("mia-test-{:016x}", rand::rng().random::<u64>())
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
}

#[tokio::test]
async fn two_workers_share_one_limit_of_thirty_per_second() {
    let Some(url) = url() else { return };
    let p = prefix();
    let a = RedisRateLimiter::connect(&url, &p, Gcra::per_second(30.0))
        .await
        .unwrap()
        .with_time_source(TimeSource::Caller);
    let b = RedisRateLimiter::connect(&url, &p, Gcra::per_second(30.0))
        .await
        .unwrap()
        .with_time_source(TimeSource::Caller);
    let mut granted = 0;
    for ms in 0..1000 {
        let worker = if ms % 2 == 0 { &a } else { &b };
        if worker.try_acquire("bot", t(ms)).await.unwrap().is_none() {
            granted += 1;
        }
    }
    assert_eq!(granted, 30, "one limit for both workers");
    let wait = a.try_acquire("bot", t(1000)).await.unwrap();
    assert!(
        wait.is_some_and(|w| w <= Duration::from_millis(34)),
        "{wait:?}"
    );
    assert_eq!(
        a.try_acquire("other", t(1000)).await.unwrap(),
        None,
        "keys are independent"
    );
}

#[tokio::test]
async fn a_flood_wait_seen_by_one_worker_holds_them_all() {
    let Some(url) = url() else { return };
    let p = prefix();
    let a = RedisRateLimiter::connect(&url, &p, Gcra::per_second(30.0))
        .await
        .unwrap()
        .with_time_source(TimeSource::Caller);
    let b = RedisRateLimiter::connect(&url, &p, Gcra::per_second(30.0))
        .await
        .unwrap()
        .with_time_source(TimeSource::Caller);
    let now = t(0);
    a.freeze("bot", now, now + jiff::SignedDuration::from_secs(20))
        .await
        .unwrap();
    a.freeze("bot", now, now + jiff::SignedDuration::from_secs(5))
        .await
        .unwrap(); // earlier: ignored
    let wait = b.try_acquire("bot", now).await.unwrap().unwrap();
    assert_eq!(wait, Duration::from_secs(20));
    let later = b
        .try_acquire("bot", now + jiff::SignedDuration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(later, None, "the freeze ends when it says");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_asks_at_one_instant_get_exactly_the_burst() {
    let Some(url) = url() else { return };
    let p = prefix();
    let limiter = RedisRateLimiter::connect(
        &url,
        &p,
        Gcra {
            rate: 10.0,
            burst: 3,
        },
    )
    .await
    .unwrap()
    .with_time_source(TimeSource::Caller);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let l = limiter.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..50 {
                if l.try_acquire("bot", t(0)).await.unwrap().is_none() {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 3, "400 concurrent asks at one instant, burst 3");
}

#[tokio::test]
async fn bad_settings_are_clear_errors_and_the_url_stays_secret() {
    let err = RedisRateLimiter::connect("redis://127.0.0.1:1/", "p", Gcra::per_second(0.0))
        .await
        .unwrap_err();
    assert!(matches!(err, mia_core::Error::Config(_)));
    // Nothing listens on port 1: the connection is refused, and the password stays out.
    let err =
        RedisRateLimiter::connect("redis://:hunter2@127.0.0.1:1/", "p", Gcra::per_second(1.0))
            .await
            .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let err = RedisRateLimiter::connect("not a url :hunter2", "p", Gcra::per_second(1.0))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    let Some(url) = url() else { return };
    let limiter = RedisRateLimiter::connect(&url, "debug-check", Gcra::per_second(1.0))
        .await
        .unwrap();
    let shown = format!("{limiter:?}");
    assert!(!shown.contains("redis://"), "{shown}");
}

#[tokio::test]
async fn on_the_server_clock_the_callers_now_does_not_matter() {
    let Some(url) = url() else { return };
    let p = prefix();
    let a = RedisRateLimiter::connect(&url, &p, Gcra::per_second(1.0))
        .await
        .unwrap();
    // Callers with wildly different clocks still share one limit: one slot per second.
    assert_eq!(a.try_acquire("bot", t(0)).await.unwrap(), None);
    let wait = a.try_acquire("bot", t(10_000_000)).await.unwrap();
    assert!(
        wait.is_some_and(|w| w > Duration::from_millis(500)),
        "{wait:?}"
    );
    // A freeze is a duration from the caller's now, applied on the server's clock.
    a.freeze("frozen", t(0), t(60_000)).await.unwrap();
    let wait = a
        .try_acquire("frozen", t(999_999_999))
        .await
        .unwrap()
        .unwrap();
    assert!(
        wait > Duration::from_secs(58) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
}
