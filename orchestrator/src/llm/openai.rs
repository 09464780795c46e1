//! OpenAI-compatible Chat Completions: OpenAI itself, Ollama, llama.cpp's server, vLLM, LM
//! Studio. A JSON schema becomes `response_format: {type: json_schema}`, which llama.cpp turns
//! into a grammar, so even tiny local models return valid JSON.

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::http::{Streamed, event_json, post_json, read_events, read_json};
use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Provider, Usage};

/// A Chat Completions endpoint.
pub struct OpenAiProvider {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
}

impl OpenAiProvider {
    /// A provider for `base_url` (`https://host/v1`, `http://127.0.0.1:8080`, or the full
    /// `.../chat/completions` URL), `model`, and an optional bearer key.
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Self {
        OpenAiProvider {
            client,
            url: completions_url(base_url),
            model: model.to_string(),
            api_key,
        }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let options = &request.options;
        let mut body = json!({
            "model": self.model,
            "messages": request.messages,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": stream,
        });
        if !options.stop.is_empty() {
            body["stop"] = json!(options.stop);
        }
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(schema) = &options.json_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": schema.name, "schema": schema.schema, "strict": true},
            });
        }
        body
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}"))
        {
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    fn malformed(&self, reason: impl Into<String>) -> LlmError {
        LlmError::Malformed {
            provider: self.name().to_string(),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let streaming = on_delta.is_some();
        let response = post_json(
            &self.client,
            self.name(),
            &self.url,
            self.headers(),
            &self.body(request, streaming),
        )
        .await?;

        let Some(on_delta) = on_delta else {
            let body = read_json(response, self.name(), &self.url).await?;
            let text = body
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or_else(|| self.malformed("no choices[0].message.content in the answer"))?;
            return Ok(ChatResponse {
                text: text.to_string(),
                usage: usage_of(&body),
                model: model_of(&body, &self.model),
                latency: started.elapsed(),
                first_token: None,
            });
        };

        let name = self.name().to_string();
        let mut streamed = Streamed::new(&self.model, started);
        let ended = read_events(response, &name, &self.url, |data| {
            if data == "[DONE]" {
                return Ok(false);
            }
            let event = event_json(&name, data)?;
            if let Some(message) = event.pointer("/error/message").and_then(Value::as_str) {
                return Err(LlmError::StreamBroken {
                    provider: name.clone(),
                    reason: message.to_string(),
                });
            }
            if let Some(delta) = event
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                streamed.push(delta, on_delta);
            }
            if event.get("usage").is_some_and(|u| !u.is_null()) {
                streamed.usage = usage_of(&event);
            }
            streamed.model = model_of(&event, &streamed.model);
            Ok(true)
        })
        .await;
        streamed.finish(&name, ended)
    }
}

/// `base` + `/chat/completions`, adding `/v1` to a bare host.
fn completions_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/chat/completions") {
        return base.to_string();
    }
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    if after_scheme.contains('/') {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    }
}

fn usage_of(body: &Value) -> Usage {
    let count = |key: &str| {
        body.pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32
    };
    Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
    }
}

fn model_of(body: &Value, asked: &str) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(asked)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatOptions, JsonSchema, Message};

    #[test]
    fn completion_urls() {
        assert_eq!(
            completions_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(
            completions_url("http://localhost:11434/v1/"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            completions_url("https://example.invalid/openai/v1/chat/completions"),
            "https://example.invalid/openai/v1/chat/completions"
        );
    }

    #[test]
    fn request_body_carries_options_and_schema() {
        let provider = OpenAiProvider::new(reqwest::Client::new(), "http://h:1", "m", None);
        let request = ChatRequest {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            options: ChatOptions {
                max_tokens: 50,
                temperature: 0.2,
                stop: vec!["\n\n".into()],
                json_schema: Some(JsonSchema {
                    name: "plan".into(),
                    schema: json!({"type": "object"}),
                }),
            },
        };
        let body = provider.body(&request, true);
        assert_eq!(body["model"], "m");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "hi");
        assert_eq!(body["max_tokens"], 50);
        assert_eq!(body["stop"][0], "\n\n");
        assert_eq!(body["stream"], true);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["name"], "plan");
        assert!(provider.headers().is_empty());
    }
}
