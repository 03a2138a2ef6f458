//! `mia dry-run --llm claude` against a local server that speaks the Messages API.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn variants() -> serde_json::Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{
            "type": "tool_use", "id": "toolu_01", "name": "submit_variants",
            "input": {"variants": [
                {"text": "Winter sale: 25% off everything until Sunday. https://shop.example/sale Reply STOP to unsubscribe."},
                {"text": "Cosy up for less: the winter collection is 25% off until Sunday. https://shop.example/sale Reply STOP to unsubscribe."}
            ]}
        }],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 812, "output_tokens": 96}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_writes_the_copy_and_the_report_shows_tokens_cost_and_retries() {
    let server = MockServer::start().await;
    // One overload first: the client retries it, and the report counts the retry.
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(529).set_body_json(json!({
            "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-test-not-real"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(variants()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["dry-run", "--quiet", "--llm", "claude", "--contacts", "300"])
        .arg("--db")
        .arg(dir.path().join("d.db"))
        .arg("--json")
        .arg(&json_path)
        .env("ANTHROPIC_API_KEY", "sk-test-not-real")
        .env("ANTHROPIC_BASE_URL", server.uri())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("sk-test-not-real") && !stderr.contains("sk-test-not-real"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let llm = &report["llm"];
    assert_eq!(llm["provider"], "claude");
    // The newsletter and the sale: two campaigns, two calls.
    assert_eq!(llm["calls"], 2);
    assert_eq!(llm["output_tokens"], 192);
    assert_eq!(llm["retries"], 1);
    assert!(
        llm["cost_micro_usd"].as_u64().unwrap() > 0,
        "priced from the price table"
    );
    let variants = report["campaign"]["variants"].as_object().unwrap();
    assert!(
        variants["B"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Cosy up")
    );
    assert!(report["campaign"]["sent"].as_u64().unwrap() > 150);
}

#[test]
fn without_a_key_claude_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["dry-run", "--quiet", "--llm", "claude", "--contacts", "10"])
        .arg("--db")
        .arg(dir.path().join("d.db"))
        .arg("--json")
        .arg(dir.path().join("r.json"))
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ANTHROPIC_API_KEY"));
}
