//! Against the real API, only when `ANTHROPIC_API_KEY` is set (and `ANTHROPIC_BASE_URL`,
//! if set, names a proxy). Costs a fraction of a cent with Claude Haiku 4.5.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use mia_claude::wire::MessagesRequest;
use mia_claude::{ClaudeClient, ClaudeConfig};

use mia_core::testing as llm;

fn live_client() -> Option<ClaudeClient> {
    match ClaudeConfig::from_env() {
        Ok(config) => Some(ClaudeClient::new(config).expect("client")),
        Err(_) => {
            println!(
                "skipped: set ANTHROPIC_API_KEY (and optionally ANTHROPIC_BASE_URL) to run the live Claude tests"
            );
            None
        }
    }
}

#[tokio::test]
async fn live_message_and_stream_agree_on_shape() {
    let Some(client) = live_client() else { return };
    let request = MessagesRequest::new("claude-haiku-4-5", 32, "Reply with the single word: ready");
    let (message, report) = client.messages_with_report(&request).await.unwrap();
    assert!(!message.text().is_empty());
    assert!(report.request_id.is_some());
    assert!(
        report.cost.and_then(|c| c.micro_usd()).is_some(),
        "haiku 4.5 is priced"
    );
    let streamed = client
        .stream(&request)
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap();
    assert!(!streamed.text().is_empty());
    assert!(streamed.usage.output_tokens > 0);
}

#[tokio::test]
async fn live_provider_conformance() {
    let Some(client) = live_client() else { return };
    llm::provider_conformance(&client).await;
    assert_eq!(client.ledger().total().calls, 1);
}

#[tokio::test]
async fn live_count_tokens() {
    let Some(client) = live_client() else { return };
    let count = client
        .count_tokens(&MessagesRequest::new("claude-haiku-4-5", 1, "Hello"))
        .await
        .unwrap();
    assert!(count > 0);
}
