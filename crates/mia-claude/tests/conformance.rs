//! The provider conformance suite of mia-core, passed by the Claude client (against a local
//! server answering with a realistic forced tool call) and by the offline template provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use mia_core::LlmProvider;
use mia_core::testing as llm;

#[tokio::test]
async fn the_claude_client_passes_the_provider_conformance_suite() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_partial_json(serde_json::json!({
            "model": "claude-sonnet-4-5",
            "tool_choice": {"type": "tool", "name": "submit_variants"},
            "tools": [{"name": "submit_variants"}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(variants_response()))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    llm::provider_conformance(&client).await;
    // Through the seam as a trait object too, as the agent holds it.
    let boxed: Box<dyn LlmProvider> = Box::new(client.clone());
    assert_eq!(boxed.name(), "claude");
    assert_eq!(client.ledger().total().calls, 1);
}

#[tokio::test]
async fn the_template_provider_passes_the_provider_conformance_suite() {
    llm::provider_conformance(&mia_core::TemplateProvider::new()).await;
}
