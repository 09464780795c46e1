//! A provider that answers from a script: the LLM of unit tests, and of anything else that
//! must behave the same way every time.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Provider, Usage};

/// One scripted turn.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer with this text.
    Reply(String),
    /// Fail with this error.
    Fail(LlmError),
}

/// Answers calls with its script, in order, and records every request it saw.
pub struct ScriptedProvider {
    model: String,
    script: Mutex<std::collections::VecDeque<Scripted>>,
    seen: Mutex<Vec<ChatRequest>>,
    delay: Duration,
}

impl ScriptedProvider {
    /// A provider that plays `script`, one entry per call.
    pub fn new(model: &str, script: Vec<Scripted>) -> Self {
        ScriptedProvider {
            model: model.to_string(),
            script: Mutex::new(script.into()),
            seen: Mutex::new(Vec::new()),
            delay: Duration::ZERO,
        }
    }

    /// Each call first waits this long (to test timeouts and concurrency).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, LlmError> {
        let call = {
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| LlmError::ScriptExhausted { call: 0 })?;
            seen.push(request.clone());
            seen.len()
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let next = self
            .script
            .lock()
            .ok()
            .and_then(|mut script| script.pop_front());
        let text = match next {
            Some(Scripted::Reply(text)) => text,
            Some(Scripted::Fail(error)) => return Err(error),
            None => return Err(LlmError::ScriptExhausted { call }),
        };
        if let Some(on_delta) = on_delta {
            for piece in text.split_inclusive(' ') {
                on_delta(piece);
            }
        }
        let prompt: usize = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count())
            .sum();
        Ok(ChatResponse {
            usage: Usage {
                prompt_tokens: prompt as u32,
                completion_tokens: text.split_whitespace().count() as u32,
            },
            text,
            model: self.model.clone(),
            latency: self.delay,
            first_token: None,
        })
    }
}
