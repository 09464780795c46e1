//! Anthropic's Messages API. System messages go in the top-level `system` field; a JSON
//! schema becomes a single tool the model must call, whose input is the answer.

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::http::{Streamed, event_json, post_json, read_events, read_json};
use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Provider, Role, Usage};

/// The API version this backend speaks.
const API_VERSION: &str = "2023-06-01";

/// A Messages API endpoint.
pub struct AnthropicProvider {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: String,
}

impl AnthropicProvider {
    /// A provider for `base_url` (`https://host`, or the full `.../v1/messages` URL).
    pub fn new(client: reqwest::Client, base_url: &str, model: &str, api_key: String) -> Self {
        let base = base_url.trim_end_matches('/');
        let url = if base.ends_with("/messages") {
            base.to_string()
        } else if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        AnthropicProvider {
            client,
            url,
            model: model.to_string(),
            api_key,
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let options = &request.options;
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "messages": messages,
            "stream": stream,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !options.stop.is_empty() {
            body["stop_sequences"] = json!(options.stop);
        }
        if let Some(schema) = &options.json_schema {
            body["tools"] = json!([{
                "name": schema.name,
                "description": "Give the answer as this tool's input.",
                "input_schema": schema.schema,
            }]);
            body["tool_choice"] = json!({"type": "tool", "name": schema.name});
        }
        body
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&self.api_key) {
            headers.insert("x-api-key", value);
        }
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        headers
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
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
        let name = self.name().to_string();
        let response = post_json(
            &self.client,
            &name,
            &self.url,
            self.headers(),
            &self.body(request, on_delta.is_some()),
        )
        .await?;

        let Some(on_delta) = on_delta else {
            let body = read_json(response, &name, &self.url).await?;
            let blocks = body
                .get("content")
                .and_then(Value::as_array)
                .ok_or_else(|| LlmError::Malformed {
                    provider: name.clone(),
                    reason: "no content blocks in the answer".to_string(),
                })?;
            let mut text = String::new();
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    Some("tool_use") => text.push_str(
                        &block
                            .get("input")
                            .cloned()
                            .unwrap_or(Value::Null)
                            .to_string(),
                    ),
                    _ => {}
                }
            }
            return Ok(ChatResponse {
                text,
                usage: Usage {
                    prompt_tokens: count(&body, "/usage/input_tokens"),
                    completion_tokens: count(&body, "/usage/output_tokens"),
                },
                model: body
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.model)
                    .to_string(),
                latency: started.elapsed(),
                first_token: None,
            });
        };

        let mut streamed = Streamed::new(&self.model, started);
        let ended = read_events(response, &name, &self.url, |data| {
            let event = event_json(&name, data)?;
            match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    streamed.usage.prompt_tokens = count(&event, "/message/usage/input_tokens");
                    if let Some(m) = event.pointer("/message/model").and_then(Value::as_str) {
                        streamed.model = m.to_string();
                    }
                }
                Some("content_block_delta") => {
                    let delta = event
                        .pointer("/delta/text")
                        .or_else(|| event.pointer("/delta/partial_json"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    streamed.push(delta, on_delta);
                }
                Some("message_delta") => {
                    streamed.usage.completion_tokens = count(&event, "/usage/output_tokens");
                }
                Some("message_stop") => return Ok(false),
                Some("error") => {
                    return Err(LlmError::StreamBroken {
                        provider: name.clone(),
                        reason: event
                            .pointer("/error/message")
                            .and_then(Value::as_str)
                            .unwrap_or("error event")
                            .to_string(),
                    });
                }
                _ => {}
            }
            Ok(true)
        })
        .await;
        streamed.finish(&name, ended)
    }
}

fn count(body: &Value, pointer: &str) -> u32 {
    body.pointer(pointer).and_then(Value::as_u64).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatOptions, JsonSchema, Message};

    #[test]
    fn system_messages_move_to_the_system_field_and_schemas_become_a_forced_tool() {
        let provider =
            AnthropicProvider::new(reqwest::Client::new(), "https://h", "claude", "k".into());
        assert_eq!(provider.url(), "https://h/v1/messages");
        let request = ChatRequest {
            messages: vec![Message::system("rules"), Message::user("q")],
            options: ChatOptions {
                json_schema: Some(JsonSchema {
                    name: "plan".into(),
                    schema: json!({"type": "object"}),
                }),
                ..ChatOptions::default()
            },
        };
        let body = provider.body(&request, false);
        assert_eq!(body["system"], "rules");
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["tool_choice"]["name"], "plan");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(provider.headers()["anthropic-version"], API_VERSION);
    }
}
