//! The LLM layer: one small [`Provider`] trait, its HTTP backends, and the wrapper that makes
//! any of them reliable.
//!
//! A provider takes chat messages plus [`ChatOptions`] (token limit, temperature, stop strings,
//! and an optional JSON schema the answer must follow) and returns the text with its token
//! usage and timing, streaming deltas to a callback when asked. Backends speak a wire protocol
//! and nothing else: [`openai::OpenAiProvider`] for any OpenAI-compatible Chat Completions
//! endpoint (OpenAI, Ollama, llama.cpp's server, vLLM, LM Studio) and
//! [`anthropic::AnthropicProvider`] for Anthropic's Messages API. Retries, backoff, fallback,
//! the process-wide concurrency limit and the JSONL trace live in [`reliable::Reliable`],
//! which is itself a provider, so callers never know which they hold.

pub mod anthropic;
mod http;
pub mod openai;
pub mod reliable;
pub mod scripted;
pub mod trace;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A JSON schema the answer must satisfy. Small models only produce valid JSON under one, and
/// only when its arrays (`maxItems`) and strings (`maxLength`) are bounded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonSchema {
    /// A short name for the schema (`plan`, `answer`); some endpoints require one.
    pub name: String,
    /// The schema itself.
    pub schema: serde_json::Value,
}

/// How to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatOptions {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 is as deterministic as the endpoint allows.
    pub temperature: f32,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
    /// Constrain the answer to this schema (the text is then one JSON value).
    pub json_schema: Option<JsonSchema>,
}

impl Default for ChatOptions {
    fn default() -> Self {
        ChatOptions {
            max_tokens: 1024,
            temperature: 0.0,
            stop: Vec::new(),
            json_schema: None,
        }
    }
}

/// A chat call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// How to generate.
    pub options: ChatOptions,
}

/// Tokens a call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The generated text (with a schema: one JSON value).
    pub text: String,
    /// Token usage as the endpoint reported it.
    pub usage: Usage,
    /// The model that answered, as the endpoint named it.
    pub model: String,
    /// From sending the request to the last byte.
    pub latency: Duration,
    /// From sending the request to the first generated text, when streamed.
    pub first_token: Option<Duration>,
}

/// Where streamed text goes as it arrives.
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A chat model behind some endpoint.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The backend's name (`openai`, `anthropic`, `scripted`) for traces and messages.
    fn name(&self) -> &str;
    /// The model asked for.
    fn model(&self) -> &str;
    /// Runs one chat call. With `on_delta`, the answer is streamed and each piece of text is
    /// passed to it as it arrives; the returned text is the whole answer either way.
    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, LlmError>;
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The endpoint answered with an error status.
    #[error("{provider} returned HTTP {status}: {message}")]
    Status {
        /// Backend name.
        provider: String,
        /// HTTP status code.
        status: u16,
        /// The endpoint's error message, shortened.
        message: String,
        /// How long the endpoint asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// No answer within the time allowed.
    #[error("{provider} did not answer within {}", humantime::format_duration(*.after))]
    Timeout {
        /// Backend name.
        provider: String,
        /// The limit.
        after: Duration,
    },
    /// The endpoint could not be reached, or the connection broke.
    #[error("cannot reach {provider} at {url}: {reason}")]
    Connect {
        /// Backend name.
        provider: String,
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The endpoint answered with something that is not the protocol's response.
    #[error("{provider} sent a malformed response: {reason}")]
    Malformed {
        /// Backend name.
        provider: String,
        /// What was wrong.
        reason: String,
    },
    /// A streamed answer broke off after part of it was shown; it is not retried, since the
    /// part already shown cannot be taken back.
    #[error("{provider} stopped streaming mid-answer: {reason}")]
    StreamBroken {
        /// Backend name.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// A scripted provider ran out of answers (tests only).
    #[error("the scripted provider has no answer left for call {call}")]
    ScriptExhausted {
        /// 1-based call number.
        call: usize,
    },
}

impl LlmError {
    /// Whether trying again may succeed: 429, 5xx, timeouts, connection errors, and bodies
    /// that were not the protocol (a proxy's error page, a truncated reply).
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Timeout { .. } | LlmError::Connect { .. } | LlmError::Malformed { .. } => {
                true
            }
            LlmError::StreamBroken { .. } | LlmError::ScriptExhausted { .. } => false,
        }
    }

    /// The wait the endpoint asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
