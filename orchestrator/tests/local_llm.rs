//! The OpenAI-compatible backend against a real model: llama.cpp's server running
//! SmolLM2-135M, installed by `scripts/setup.sh --test`. The model is tiny, so these tests
//! assert transport, streaming, schema-constrained JSON and timing, not the answers' wisdom.

use std::sync::Arc;

use quarry_e2e::llm::LlamaServer;
use quarry_orchestrator::llm::openai::OpenAiProvider;
use quarry_orchestrator::llm::reliable::{Reliable, RetryPolicy};
use quarry_orchestrator::llm::{ChatOptions, ChatRequest, JsonSchema, Message, Provider};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

fn provider(server: &LlamaServer) -> Reliable {
    let openai = OpenAiProvider::new(reqwest::Client::new(), &server.url, "smollm2", None);
    Reliable::new(
        Arc::new(openai),
        RetryPolicy::default(),
        Arc::new(Semaphore::new(1)),
    )
}

#[tokio::test]
async fn streams_an_answer_piece_by_piece() {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    let request = ChatRequest {
        messages: vec![Message::user("List three colours, one per line.")],
        options: ChatOptions {
            max_tokens: 40,
            ..ChatOptions::default()
        },
    };
    let mut pieces = Vec::new();
    let mut sink = |d: &str| pieces.push(d.to_string());
    let answer = provider(&server)
        .chat(&request, Some(&mut sink))
        .await
        .expect("streamed answer");
    assert!(pieces.len() > 1, "one piece per token or so: {pieces:?}");
    assert_eq!(pieces.concat(), answer.text);
    assert!(answer.usage.prompt_tokens > 0 && answer.usage.completion_tokens > 0);
    let first = answer.first_token.expect("time to first token");
    assert!(first <= answer.latency);
}

#[tokio::test]
async fn a_bounded_schema_gives_valid_json() {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    let schema = json!({
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array", "minItems": 1, "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "description": {"type": "string", "maxLength": 60},
                        "files": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 40}}
                    },
                    "required": ["id", "description", "files"]
                }
            }
        },
        "required": ["tasks"]
    });
    let request = ChatRequest {
        messages: vec![
            Message::system("You plan code changes as JSON."),
            Message::user(
                "Plan: add a timeout option to the HTTP client in src/http.rs and use it in src/main.rs.",
            ),
        ],
        options: ChatOptions {
            max_tokens: 300,
            json_schema: Some(JsonSchema {
                name: "plan".into(),
                schema,
            }),
            ..ChatOptions::default()
        },
    };
    let answer = provider(&server)
        .chat(&request, None)
        .await
        .expect("answer");
    let plan: Value = serde_json::from_str(&answer.text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", answer.text));
    let tasks = plan["tasks"].as_array().expect("tasks array");
    assert!((1..=3).contains(&tasks.len()), "{plan}");
    for task in tasks {
        assert!(task["id"].is_i64() || task["id"].is_u64(), "{task}");
        assert!(
            task["description"]
                .as_str()
                .is_some_and(|d| d.chars().count() <= 60),
            "{task}"
        );
        assert!(
            task["files"].as_array().is_some_and(|f| f.len() <= 2),
            "{task}"
        );
    }
}
