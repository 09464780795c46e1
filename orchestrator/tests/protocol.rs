//! The HTTP backends against a local server that plays scripted responses and injects faults:
//! 429 with `Retry-After`, 5xx, a slow answer, a body that is not JSON, a refused connection.
//! Asserts what a user would notice: the answer arrives, waits are honoured, client errors
//! are not retried, the fallback takes over, streams are assembled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_orchestrator::llm::anthropic::AnthropicProvider;
use quarry_orchestrator::llm::openai::OpenAiProvider;
use quarry_orchestrator::llm::reliable::{Reliable, RetryPolicy};
use quarry_orchestrator::llm::{ChatOptions, ChatRequest, JsonSchema, LlmError, Message, Provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// One scripted HTTP response.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn raw(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn events(lines: &[serde_json::Value], done: bool) -> Self {
        let mut body = String::new();
        for line in lines {
            body.push_str(&format!("data: {line}\n\n"));
        }
        if done {
            body.push_str("data: [DONE]\n\n");
        }
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            body,
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A local HTTP server answering each request with the next scripted reply.
struct FaultServer {
    url: String,
    requests: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl FaultServer {
    async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let script = script.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    seen.lock().expect("lock").push((head, json));
                    let reply = script
                        .lock()
                        .expect("lock")
                        .pop_front()
                        .unwrap_or_else(|| Reply::raw(599, "script exhausted"));
                    tokio::time::sleep(reply.delay).await;
                    let mut out = format!(
                        "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (name, value) in &reply.headers {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = socket.write_all(out.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        FaultServer { url, requests }
    }

    fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    fn request(&self, n: usize) -> (String, serde_json::Value) {
        self.requests.lock().expect("lock")[n].clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..].to_vec()))
}

fn completion(text: &str) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "model": "served-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 2}
        }),
    )
}

fn openai(server: &FaultServer, key: Option<&str>) -> Arc<dyn Provider> {
    Arc::new(OpenAiProvider::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.url),
        "test-model",
        key.map(str::to_string),
    ))
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(5),
    }
}

fn reliable(provider: Arc<dyn Provider>, policy: RetryPolicy) -> Reliable {
    Reliable::new(provider, policy, Arc::new(Semaphore::new(4)))
}

fn question() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("be brief"), Message::user("what is 2+2?")],
        options: ChatOptions {
            max_tokens: 20,
            ..ChatOptions::default()
        },
    }
}

#[tokio::test]
async fn too_many_requests_waits_as_asked_then_answers() {
    let server = FaultServer::start(vec![
        Reply::json(429, serde_json::json!({"error": {"message": "slow down"}}))
            .header("Retry-After", "1"),
        completion("four"),
    ])
    .await;
    let started = Instant::now();
    let answer = reliable(openai(&server, Some("sk-local")), policy())
        .chat(&question(), None)
        .await
        .expect("answer after one retry");
    assert_eq!(answer.text, "four");
    assert_eq!(answer.model, "served-model");
    assert_eq!(answer.usage.prompt_tokens, 11);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
    assert_eq!(server.request_count(), 2);
    let (head, body) = server.request(0);
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk-local")
    );
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"][1]["content"], "what is 2+2?");
    assert_eq!(body["max_tokens"], 20);
}

#[tokio::test]
async fn server_errors_and_malformed_bodies_are_retried() {
    let server = FaultServer::start(vec![
        Reply::raw(500, "<html>internal error</html>"),
        Reply::raw(200, "this is not json"),
        completion("four"),
    ])
    .await;
    let answer = reliable(openai(&server, None), policy())
        .chat(&question(), None)
        .await
        .expect("third attempt answers");
    assert_eq!(answer.text, "four");
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let server = FaultServer::start(vec![
        completion("late").after(Duration::from_secs(3)),
        completion("on time"),
    ])
    .await;
    let policy = RetryPolicy {
        timeout: Duration::from_millis(500),
        ..policy()
    };
    let started = Instant::now();
    let answer = reliable(openai(&server, None), policy)
        .chat(&question(), None)
        .await
        .expect("second attempt answers");
    assert_eq!(answer.text, "on time");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = FaultServer::start(vec![
        Reply::json(401, serde_json::json!({"error": {"message": "bad key"}})),
        completion("never"),
    ])
    .await;
    let error = reliable(openai(&server, Some("wrong")), policy())
        .chat(&question(), None)
        .await
        .expect_err("401 fails");
    match error {
        LlmError::Status {
            status, message, ..
        } => {
            assert_eq!(status, 401);
            assert_eq!(message, "bad key");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn the_fallback_answers_when_the_primary_keeps_failing() {
    let primary = FaultServer::start(vec![Reply::raw(503, "busy"), Reply::raw(502, "busy")]).await;
    let fallback = FaultServer::start(vec![completion("from fallback")]).await;
    let policy = RetryPolicy {
        max_attempts: 2,
        ..policy()
    };
    let answer = reliable(openai(&primary, None), policy)
        .with_fallback(openai(&fallback, None))
        .chat(&question(), None)
        .await
        .expect("fallback answers");
    assert_eq!(answer.text, "from fallback");
    assert_eq!(primary.request_count(), 2);
    assert_eq!(fallback.request_count(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_connect_error_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let provider = Arc::new(OpenAiProvider::new(reqwest::Client::new(), &url, "m", None));
    let policy = RetryPolicy {
        max_attempts: 2,
        ..policy()
    };
    let error = reliable(provider, policy)
        .chat(&question(), None)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, LlmError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&url), "{error}");
}

#[tokio::test]
async fn openai_streams_are_assembled_with_usage() {
    let deltas = ["The ", "answer ", "is four."];
    let mut events: Vec<serde_json::Value> = deltas
        .iter()
        .map(|d| serde_json::json!({"model": "served", "choices": [{"delta": {"content": d}}]}))
        .collect();
    events.push(
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}}),
    );
    let server = FaultServer::start(vec![Reply::events(&events, true)]).await;
    let mut shown = Vec::new();
    let mut sink = |d: &str| shown.push(d.to_string());
    let answer = reliable(openai(&server, None), policy())
        .chat(&question(), Some(&mut sink))
        .await
        .expect("streamed answer");
    assert_eq!(shown, deltas);
    assert_eq!(answer.text, "The answer is four.");
    assert_eq!(answer.usage.completion_tokens, 5);
    assert!(answer.first_token.is_some());
    let (_, body) = server.request(0);
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn a_json_schema_is_sent_as_response_format() {
    let server = FaultServer::start(vec![completion("{\"tasks\": []}")]).await;
    let mut request = question();
    request.options.json_schema = Some(JsonSchema {
        name: "plan".into(),
        schema: serde_json::json!({"type": "object", "properties": {"tasks": {"type": "array", "maxItems": 4}}}),
    });
    let answer = reliable(openai(&server, None), policy())
        .chat(&request, None)
        .await
        .expect("answer");
    let parsed: serde_json::Value = serde_json::from_str(&answer.text).expect("json answer");
    assert!(parsed["tasks"].is_array());
    let (_, body) = server.request(0);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["tasks"]["maxItems"],
        4
    );
}

#[tokio::test]
async fn anthropic_messages_plain_tool_and_streamed() {
    let server = FaultServer::start(vec![
        Reply::json(
            200,
            serde_json::json!({
                "model": "claude-test",
                "content": [{"type": "text", "text": "four"}],
                "usage": {"input_tokens": 12, "output_tokens": 1}
            }),
        ),
        Reply::json(
            200,
            serde_json::json!({
                "model": "claude-test",
                "content": [{"type": "tool_use", "name": "plan", "input": {"tasks": []}}],
                "usage": {"input_tokens": 12, "output_tokens": 4}
            }),
        ),
        Reply::events(
            &[
                serde_json::json!({"type": "message_start", "message": {"model": "claude-test", "usage": {"input_tokens": 12}}}),
                serde_json::json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "fo"}}),
                serde_json::json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ur"}}),
                serde_json::json!({"type": "message_delta", "usage": {"output_tokens": 2}}),
                serde_json::json!({"type": "message_stop"}),
            ],
            false,
        ),
    ])
    .await;
    let provider: Arc<dyn Provider> = Arc::new(AnthropicProvider::new(
        reqwest::Client::new(),
        &server.url,
        "claude-test",
        "ak-secret".into(),
    ));
    let client = reliable(provider, policy());

    let plain = client.chat(&question(), None).await.expect("plain");
    assert_eq!(plain.text, "four");
    assert_eq!(plain.usage.prompt_tokens, 12);
    let (head, body) = server.request(0);
    assert!(head.starts_with("POST /v1/messages "), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-api-key: ak-secret"));
    assert_eq!(body["system"], "be brief");

    let mut request = question();
    request.options.json_schema = Some(JsonSchema {
        name: "plan".into(),
        schema: serde_json::json!({"type": "object"}),
    });
    let tool = client.chat(&request, None).await.expect("tool answer");
    assert_eq!(tool.text, "{\"tasks\":[]}");

    let mut shown = String::new();
    let mut sink = |d: &str| shown.push_str(d);
    let streamed = client
        .chat(&question(), Some(&mut sink))
        .await
        .expect("stream");
    assert_eq!((shown.as_str(), streamed.text.as_str()), ("four", "four"));
    assert_eq!(streamed.usage.completion_tokens, 2);
}
