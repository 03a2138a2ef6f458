//! The client against a local server speaking the Messages API wire format: answers,
//! headers, every error status, retries, retry-after, deadlines, throttling, budgets and
//! secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use mia_claude::wire::{MessagesRequest, StopReason};
use mia_claude::{ApiErrorType, BudgetGuard, ClaudeClient, ClaudeError, Scope};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn hello() -> MessagesRequest {
    MessagesRequest::new("claude-sonnet-4-5", 256, "Hello, Claude")
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_json_answer_is_parsed_and_the_right_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", SECRET))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}]
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
                .set_body_json(text_response()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let (message, report) = client.messages_with_report(&hello()).await.unwrap();
    assert_eq!(message.text(), "Hello! How can I help you today?");
    assert_eq!(message.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(report.attempts, 1);
    assert_eq!(
        report.request_id.as_deref(),
        Some("req_011CSHoEeqs5C35K2UUqR7Fy")
    );
    // 12 input tokens at $3/M and 11 output at $15/M.
    assert_eq!(
        report.cost.unwrap().nano_usd(),
        Some(12 * 3_000 + 11 * 15_000)
    );
    let body: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(
        body.get("stream").is_none(),
        "a JSON call does not ask for a stream"
    );
}

#[tokio::test]
async fn a_request_without_a_model_uses_the_configured_one() {
    let server = MockServer::start().await;
    Mock::given(body_partial_json(json!({"model": "claude-haiku-4-5"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_response()))
        .expect(1)
        .mount(&server)
        .await;
    let config = config_builder(&server.uri())
        .model("claude-haiku-4-5")
        .build()
        .unwrap();
    let client = ClaudeClient::new(config).unwrap();
    let mut request = hello();
    request.model.clear();
    client.messages(&request).await.unwrap();
}

#[tokio::test]
async fn every_error_status_is_typed_with_its_envelope_and_request_id() {
    let cases = [
        (400, "invalid_request_error", ApiErrorType::InvalidRequest),
        (401, "authentication_error", ApiErrorType::Authentication),
        (402, "billing_error", ApiErrorType::Billing),
        (403, "permission_error", ApiErrorType::Permission),
        (404, "not_found_error", ApiErrorType::NotFound),
        (413, "request_too_large", ApiErrorType::RequestTooLarge),
        (429, "rate_limit_error", ApiErrorType::RateLimit),
        (500, "api_error", ApiErrorType::Api),
        (504, "timeout_error", ApiErrorType::Timeout),
        (529, "overloaded_error", ApiErrorType::Overloaded),
        (
            400,
            "brand_new_error",
            ApiErrorType::Other("brand_new_error".into()),
        ),
    ];
    for (status, wire_type, expected) in cases {
        let server = MockServer::start().await;
        let id = format!("req_{status}_{wire_type}");
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("request-id", id.as_str())
                    .set_body_json(error_body(wire_type, "something went wrong", &id)),
            )
            .mount(&server)
            .await;
        let config = config_builder(&server.uri())
            .max_retries(0)
            .build()
            .unwrap();
        let client = ClaudeClient::new(config).unwrap();
        let err = client.messages(&hello()).await.unwrap_err();
        match &err {
            ClaudeError::Api {
                status: s,
                error_type,
                message,
                request_id,
            } => {
                assert_eq!(*s, status);
                assert_eq!(error_type, &expected);
                assert_eq!(message, "something went wrong");
                assert_eq!(request_id.as_deref(), Some(id.as_str()));
            }
            other => panic!("{status}: expected an API error, got {other:?}"),
        }
        let retryable = matches!(status, 429 | 500 | 504 | 529);
        assert_eq!(err.is_retryable(), retryable, "{status} retryable");
        let core: mia_core::Error = err.into();
        assert_eq!(core.is_retryable(), retryable);
    }
}

#[tokio::test]
async fn overloaded_without_retry_after_is_retried_twice_then_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_json(error_body(
            "overloaded_error",
            "Overloaded",
            "req_529",
        )))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let err = client.messages(&hello()).await.unwrap_err();
    assert!(matches!(err, ClaudeError::Api { status: 529, .. }));
    assert_eq!(requests(&server).await, 3, "one attempt and two retries");
    let totals = client.ledger().total();
    assert_eq!(
        (totals.calls, totals.failed_calls, totals.attempts),
        (1, 1, 3)
    );
    assert_eq!(totals.retries(), 2);
}

#[tokio::test]
async fn backoff_follows_the_policy_between_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_body("api_error", "x", "r")))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_response()))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let (_, report) = client.messages_with_report(&hello()).await.unwrap();
    assert_eq!(report.attempts, 3);
    assert_eq!(
        report.retry_waits,
        vec![Duration::from_millis(1), Duration::from_millis(2)],
        "min(initial * 2^n, max), no jitter in this policy"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "30")
                .insert_header("retry-after", "1")
                .set_body_json(error_body(
                    "rate_limit_error",
                    "Number of requests has exceeded your rate limit",
                    "req_a",
                )),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(error_body("rate_limit_error", "again", "req_b")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_response()))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let (message, report) = client.messages_with_report(&hello()).await.unwrap();
    assert_eq!(message.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(
        report.retry_waits,
        vec![Duration::from_millis(30), Duration::from_secs(1)],
        "retry-after-ms first, then retry-after in seconds, instead of the backoff"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_reported_not_slept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .insert_header("request-id", "req_long")
                .set_body_json(error_body("rate_limit_error", "slow down", "req_long")),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let before = jiff::Timestamp::now();
    // Sleeping an hour would hit this timeout and fail the test.
    let err = tokio::time::timeout(Duration::from_secs(10), client.messages(&hello()))
        .await
        .expect("the client must not sleep through a long retry-after")
        .unwrap_err();
    match err {
        ClaudeError::RateLimitedUntil {
            until,
            status,
            request_id,
            attempts,
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(request_id.as_deref(), Some("req_long"));
            assert_eq!(attempts, 1);
            let wait = until.duration_since(before).as_secs();
            assert!(
                (3590..=3610).contains(&wait),
                "until is about an hour ahead: {wait}s"
            );
        }
        other => panic!("expected RateLimitedUntil, got {other:?}"),
    }
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn x_should_retry_false_wins_over_a_retryable_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("x-should-retry", "false")
                .set_body_json(error_body("api_error", "do not retry", "req_x")),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri());
    assert!(matches!(
        client.messages(&hello()).await,
        Err(ClaudeError::Api { status: 503, .. })
    ));
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn x_should_retry_true_retries_a_status_that_is_not_retried_otherwise() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-should-retry", "true")
                .set_body_json(error_body("invalid_request_error", "flaky", "req_y")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_response()))
        .mount(&server)
        .await;
    client(&server.uri()).messages(&hello()).await.unwrap();
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn the_deadline_ends_a_slow_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(text_response())
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let config = config_builder(&server.uri())
        .deadline(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = ClaudeClient::new(config).unwrap();
    let err = client.messages(&hello()).await.unwrap_err();
    assert!(
        matches!(err, ClaudeError::Deadline { deadline, attempts: 1 } if deadline == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // Bind and drop a listener so that the port is (almost surely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}"));
    let err = client.messages(&hello()).await.unwrap_err();
    assert!(matches!(err, ClaudeError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        client.ledger().total().attempts,
        3,
        "connection errors are retried"
    );
    assert!(!format!("{err:?} {err}").contains(SECRET));
}

#[tokio::test]
async fn budget_refusal_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_response()))
        .mount(&server)
        .await;
    let budget = BudgetGuard::new();
    // 1,000 output tokens of Sonnet cost 15,000 µ$: more than the 10,000 left.
    budget.set_campaign_limit("spring", 10_000);
    let client = ClaudeClient::builder(config_builder(&server.uri()).build().unwrap())
        .budget(budget.clone())
        .build()
        .unwrap()
        .scoped(Scope::campaign("spring").with_agent("writer"));
    let big = MessagesRequest::new("claude-sonnet-4-5", 1_000, "Write a long story");
    let err = client.messages(&big).await.unwrap_err();
    assert!(
        matches!(&err, ClaudeError::Budget { scope, limit_micro_usd: 10_000, .. } if scope == "campaign:spring"),
        "{err:?}"
    );
    assert_eq!(requests(&server).await, 0, "no request reaches the server");

    // A call that fits is reserved at its worst case and settled at its real cost.
    let small = MessagesRequest::new("claude-sonnet-4-5", 100, "Hi");
    client.messages(&small).await.unwrap();
    let status = budget.campaign("spring").unwrap();
    assert_eq!(status.reserved_nano_usd, 0);
    assert_eq!(status.spent_nano_usd, 12 * 3_000 + 11 * 15_000);
    assert_eq!(requests(&server).await, 1);

    // A model without a price cannot be bounded.
    let unknown = MessagesRequest::new("claude-unreleased-9", 10, "Hi");
    assert!(matches!(
        client.messages(&unknown).await,
        Err(ClaudeError::UnknownPrice { .. })
    ));
    assert_eq!(requests(&server).await, 1);
    // Outside any budget's scope, calls pass.
    let free = client.scoped(Scope::campaign("other"));
    free.messages(&big).await.unwrap();
}

#[tokio::test]
async fn a_spent_rate_limit_window_is_waited_out_before_sending() {
    let server = MockServer::start().await;
    let reset = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(300);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("anthropic-ratelimit-requests-limit", "50")
                .insert_header("anthropic-ratelimit-requests-remaining", "0")
                .insert_header(
                    "anthropic-ratelimit-requests-reset",
                    reset.to_string().as_str(),
                )
                .set_body_json(text_response()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("anthropic-ratelimit-tokens-remaining", "0")
                .insert_header("anthropic-ratelimit-tokens-reset", far.to_string().as_str())
                .set_body_json(text_response()),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri());
    client.messages(&hello()).await.unwrap();
    let (_, report) = client.messages_with_report(&hello()).await.unwrap();
    assert!(
        report.throttled > Duration::ZERO,
        "the second call waited for the reset"
    );
    assert_eq!(requests(&server).await, 2);
    // Now the token window is spent for an hour: the next call is refused without a request.
    let err = client.messages(&hello()).await.unwrap_err();
    assert!(
        matches!(err, ClaudeError::RateLimitedUntil { status: None, attempts: 0, until, .. } if until == far),
        "{err:?}"
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn count_tokens_uses_its_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/count_tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"input_tokens": 14})))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(&server.uri()).count_tokens(&hello()).await.unwrap();
    assert_eq!(n, 14);
    let body: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(
        body.get("max_tokens").is_none(),
        "count_tokens takes no max_tokens"
    );
}

#[tokio::test]
async fn the_api_key_never_shows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(error_body(
            "authentication_error",
            "invalid x-api-key",
            "req_401",
        )))
        .mount(&server)
        .await;
    let config = config_builder(&server.uri()).build().unwrap();
    let client = ClaudeClient::new(config.clone()).unwrap();
    let mut shown = vec![
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{:?}", config.retry_policy()),
    ];
    let api = client.messages(&hello()).await.unwrap_err();
    shown.push(format!("{api:?} {api}"));
    let core: mia_core::Error = api.into();
    shown.push(format!("{core:?} {core}"));
    let deadline = ClaudeError::Deadline {
        deadline: Duration::from_secs(1),
        attempts: 1,
    };
    shown.push(format!("{deadline:?} {deadline}"));
    let budget = BudgetGuard::new().with_global_limit(0);
    let guarded = ClaudeClient::builder(config.clone())
        .budget(budget)
        .build()
        .unwrap();
    let refused = guarded.messages(&hello()).await.unwrap_err();
    shown.push(format!("{refused:?} {refused}"));
    shown.push(format!("{guarded:?}"));
    for text in &shown {
        assert!(!text.contains(SECRET), "the key leaked into: {text}");
        assert!(
            !text.contains("TEST-SECRET"),
            "part of the key leaked into: {text}"
        );
    }
    assert!(shown[0].contains("ApiKey(****)"));
}
