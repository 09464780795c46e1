//! Makes any provider dependable: a timeout on every attempt, retries with exponential backoff
//! and jitter on transient failures (honouring `Retry-After`), fallback providers when the
//! primary keeps failing, a concurrency limit shared by every caller, and a trace line per call.
//!
//! What is transient is [`LlmError::is_transient`]: 429, 5xx, timeouts, connection errors and
//! malformed bodies. Any other 4xx is not retried, since the same request would fail the same
//! way, but it does hand over to a fallback, which may be a different model or endpoint. A
//! streamed answer that broke after text was shown is neither retried nor handed over.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use quarry_indexer::secrets::redact_outgoing;
use tokio::sync::Semaphore;

use super::trace::{AttemptRecord, TraceLog, TraceRecord, now_rfc3339};
use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Provider};

/// When and how often to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per provider, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Limit on one attempt, from sending the request to the last byte.
    pub timeout: Duration,
    /// A `Retry-After` longer than this moves on to the fallback instead of waiting.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            timeout: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): exponential, capped, with jitter in
    /// [50%, 100%] so that parallel callers do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let capped = exponential.min(self.max_delay);
        capped.mul_f64(0.5 + 0.5 * jitter_unit())
    }
}

/// A number in [0, 1) that differs from call to call.
fn jitter_unit() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // SplitMix64 finaliser: spreads the clock's low bits over the whole word.
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A provider with retries, fallbacks, a shared concurrency limit and a trace.
pub struct Reliable {
    chain: Vec<Arc<dyn Provider>>,
    policy: RetryPolicy,
    limiter: Arc<Semaphore>,
    trace: Option<Arc<TraceLog>>,
    purpose: String,
}

impl Reliable {
    /// Wraps `primary`. `limiter` bounds how many calls run at once; share one across the
    /// process so parallel workers never exceed it together.
    pub fn new(primary: Arc<dyn Provider>, policy: RetryPolicy, limiter: Arc<Semaphore>) -> Self {
        Reliable {
            chain: vec![primary],
            policy,
            limiter,
            trace: None,
            purpose: "call".to_string(),
        }
    }

    /// Adds a provider that takes over when everything before it failed.
    pub fn with_fallback(mut self, fallback: Arc<dyn Provider>) -> Self {
        self.chain.push(fallback);
        self
    }

    /// Appends a record of every call to `trace`, labelled with `purpose`.
    pub fn with_trace(mut self, trace: Arc<TraceLog>, purpose: &str) -> Self {
        self.trace = Some(trace);
        self.purpose = purpose.to_string();
        self
    }

    fn primary(&self) -> &dyn Provider {
        // `chain` always holds the primary: `new` puts it there and nothing removes it.
        self.chain[0].as_ref()
    }
}

#[async_trait]
impl Provider for Reliable {
    fn name(&self) -> &str {
        self.primary().name()
    }

    fn model(&self) -> &str {
        self.primary().model()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, LlmError> {
        self.chat_as(&self.purpose, request, on_delta).await
    }
}

/// `request` with every secret in its messages redacted. Files are redacted when indexed,
/// but prompts also carry what no index saw (a check's output, a diff, a file read fresh,
/// the user's own words); this is the last gate before anything leaves for a model.
fn without_secrets(request: &ChatRequest) -> Cow<'_, ChatRequest> {
    let redacted: Vec<Cow<'_, str>> = request
        .messages
        .iter()
        .map(|m| redact_outgoing(&m.content))
        .collect();
    if redacted.iter().all(|text| matches!(text, Cow::Borrowed(_))) {
        return Cow::Borrowed(request);
    }
    let mut clean = request.clone();
    for (message, text) in clean.messages.iter_mut().zip(redacted) {
        if let Cow::Owned(text) = text {
            message.content = text;
        }
    }
    Cow::Owned(clean)
}

impl Reliable {
    /// [`Provider::chat`] with the call traced under `purpose` (`plan`, `task t2`) instead of
    /// the purpose given to [`Reliable::with_trace`]: one provider, many kinds of calls.
    pub async fn chat_as(
        &self,
        purpose: &str,
        request: &ChatRequest,
        mut on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, LlmError> {
        let request = &*without_secrets(request);
        let _permit = self
            .limiter
            .acquire()
            .await
            .map_err(|_| LlmError::Connect {
                provider: self.name().to_string(),
                url: String::new(),
                reason: "the LLM concurrency limiter was closed".to_string(),
            })?;
        let started = Instant::now();
        let streaming = on_delta.is_some();
        let mut attempts: Vec<AttemptRecord> = Vec::new();
        let mut last_error: Option<LlmError> = None;
        let mut answered: Option<ChatResponse> = None;
        // Which provider of the chain made the last attempt (0: the primary).
        let mut last_provider = 0;

        'providers: for (index, provider) in self.chain.iter().enumerate() {
            last_provider = index;
            for attempt in 0..self.policy.max_attempts.max(1) {
                let attempt_started = Instant::now();
                let mut streamed = false;
                let result = {
                    let mut forward = |delta: &str| {
                        streamed = true;
                        if let Some(sink) = on_delta.as_mut() {
                            sink(delta);
                        }
                    };
                    let sink: Option<DeltaSink<'_>> =
                        if streaming { Some(&mut forward) } else { None };
                    tokio::time::timeout(self.policy.timeout, provider.chat(request, sink)).await
                };
                let result = match result {
                    Ok(result) => result,
                    Err(_) if streamed => Err(LlmError::StreamBroken {
                        provider: provider.name().to_string(),
                        reason: format!(
                            "no end within {}",
                            humantime::format_duration(self.policy.timeout)
                        ),
                    }),
                    Err(_) => Err(LlmError::Timeout {
                        provider: provider.name().to_string(),
                        after: self.policy.timeout,
                    }),
                };
                attempts.push(AttemptRecord {
                    provider: provider.name().to_string(),
                    model: provider.model().to_string(),
                    latency_ms: attempt_started.elapsed().as_millis() as u64,
                    error: result.as_ref().err().map(ToString::to_string),
                });
                let error = match result {
                    Ok(response) => {
                        answered = Some(response);
                        break 'providers;
                    }
                    Err(error) => error,
                };
                tracing::warn!(
                    provider = provider.name(),
                    model = provider.model(),
                    attempt = attempt + 1,
                    "LLM call failed: {error}"
                );
                let final_error = streamed || matches!(error, LlmError::StreamBroken { .. });
                if final_error {
                    last_error = Some(error);
                    break 'providers;
                }
                let retry = error.is_transient() && attempt + 1 < self.policy.max_attempts;
                let wait = match error.retry_after() {
                    Some(asked) if asked > self.policy.max_retry_after => None,
                    Some(asked) => Some(asked),
                    None => Some(self.policy.backoff(attempt)),
                };
                last_error = Some(error);
                match (retry, wait) {
                    (true, Some(wait)) => tokio::time::sleep(wait).await,
                    _ => continue 'providers,
                }
            }
        }

        let retries = attempts.len().saturating_sub(1) as u32;
        let result = match answered {
            Some(response) => Ok(response),
            None => Err(last_error.unwrap_or(LlmError::ScriptExhausted { call: 0 })),
        };
        if let Some(trace) = &self.trace {
            let (provider, model) = attempts
                .last()
                .map(|a| (a.provider.clone(), a.model.clone()))
                .unwrap_or_default();
            let response = result.as_ref().ok();
            trace.write(&TraceRecord {
                time: now_rfc3339(),
                purpose,
                provider,
                model: response.map_or(model, |r| r.model.clone()),
                messages: &request.messages,
                options: &request.options,
                answer: response.map(|r| r.text.as_str()),
                usage: response.map(|r| r.usage),
                latency_ms: started.elapsed().as_millis() as u64,
                first_token_ms: response
                    .and_then(|r| r.first_token)
                    .map(|d| d.as_millis() as u64),
                retries,
                fallback: last_provider > 0,
                attempts,
                error: result.as_ref().err().map(ToString::to_string),
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::scripted::{Scripted, ScriptedProvider};
    use crate::llm::{ChatOptions, Message};

    fn request() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user("hello")],
            options: ChatOptions::default(),
        }
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
        }
    }

    fn status(code: u16, retry_after: Option<Duration>) -> Scripted {
        Scripted::Fail(LlmError::Status {
            provider: "scripted".into(),
            status: code,
            message: "no".into(),
            retry_after,
        })
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = fast_policy();
        for retry in 0..3 {
            let full = Duration::from_millis(100 * (1 << retry));
            let wait = policy.backoff(retry);
            assert!(wait >= full / 2 && wait <= full, "{retry}: {wait:?}");
        }
        assert!(policy.backoff(30) <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_the_asked_wait() {
        let primary = Arc::new(ScriptedProvider::new(
            "m",
            vec![
                status(429, Some(Duration::from_secs(7))),
                status(503, None),
                Scripted::Reply("ok".into()),
            ],
        ));
        let reliable = Reliable::new(primary.clone(), fast_policy(), Arc::new(Semaphore::new(1)));
        let started = tokio::time::Instant::now();
        let answer = reliable
            .chat(&request(), None)
            .await
            .expect("third attempt answers");
        assert_eq!(answer.text, "ok");
        assert_eq!(primary.requests().len(), 3);
        // Seven seconds as asked by Retry-After, then the second backoff: 200 ms less jitter.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(7100), "{waited:?}");
        assert!(waited <= Duration::from_millis(7200), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried_but_hand_over_to_the_fallback() {
        let primary = Arc::new(ScriptedProvider::new("big", vec![status(400, None)]));
        let fallback = Arc::new(ScriptedProvider::new(
            "small",
            vec![Scripted::Reply("from fallback".into())],
        ));
        let reliable = Reliable::new(primary.clone(), fast_policy(), Arc::new(Semaphore::new(1)))
            .with_fallback(fallback.clone());
        let answer = reliable
            .chat(&request(), None)
            .await
            .expect("fallback answers");
        assert_eq!(answer.text, "from fallback");
        assert_eq!(answer.model, "small");
        assert_eq!(primary.requests().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fallback_takes_over_after_the_primary_exhausts_its_attempts() {
        let primary = Arc::new(ScriptedProvider::new(
            "big",
            vec![status(500, None), status(502, None), status(503, None)],
        ));
        let fallback = Arc::new(ScriptedProvider::new(
            "small",
            vec![Scripted::Reply("ok".into())],
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let trace =
            Arc::new(TraceLog::open(&dir.path().join("t.jsonl"), Vec::new()).expect("trace"));
        let reliable = Reliable::new(primary.clone(), fast_policy(), Arc::new(Semaphore::new(1)))
            .with_fallback(fallback)
            .with_trace(trace, "ask");
        reliable
            .chat(&request(), None)
            .await
            .expect("fallback answers");
        assert_eq!(primary.requests().len(), 3);
        let text = std::fs::read_to_string(dir.path().join("t.jsonl")).expect("trace written");
        let record: serde_json::Value = serde_json::from_str(text.trim()).expect("one json line");
        assert_eq!(record["retries"], 3);
        assert_eq!(record["fallback"], true);
        assert_eq!(record["attempts"].as_array().map(Vec::len), Some(4));
        assert_eq!(record["answer"], "ok");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_limit_moves_on_without_waiting() {
        let primary = Arc::new(ScriptedProvider::new(
            "big",
            vec![status(429, Some(Duration::from_secs(3600)))],
        ));
        let fallback = Arc::new(ScriptedProvider::new(
            "small",
            vec![Scripted::Reply("ok".into())],
        ));
        let reliable = Reliable::new(primary, fast_policy(), Arc::new(Semaphore::new(1)))
            .with_fallback(fallback);
        let started = tokio::time::Instant::now();
        reliable
            .chat(&request(), None)
            .await
            .expect("fallback answers");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_attempts_time_out_and_the_last_error_is_returned() {
        let slow = ScriptedProvider::new(
            "m",
            vec![
                Scripted::Reply("late".into()),
                Scripted::Reply("late".into()),
            ],
        )
        .with_delay(Duration::from_secs(60));
        let policy = RetryPolicy {
            max_attempts: 2,
            timeout: Duration::from_secs(1),
            ..fast_policy()
        };
        let reliable = Reliable::new(Arc::new(slow), policy, Arc::new(Semaphore::new(1)));
        let error = reliable
            .chat(&request(), None)
            .await
            .expect_err("times out");
        assert!(matches!(error, LlmError::Timeout { .. }), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_bounds_calls_in_flight() {
        let provider = Arc::new(
            ScriptedProvider::new(
                "m",
                (0..4).map(|i| Scripted::Reply(i.to_string())).collect(),
            )
            .with_delay(Duration::from_secs(1)),
        );
        let limiter = Arc::new(Semaphore::new(2));
        let reliable = Arc::new(Reliable::new(provider, fast_policy(), limiter));
        let started = tokio::time::Instant::now();
        let calls = (0..4).map(|_| {
            let reliable = reliable.clone();
            tokio::spawn(async move { reliable.chat(&request(), None).await })
        });
        for call in calls {
            call.await.expect("task").expect("answer");
        }
        // Four one-second calls, two at a time: two seconds, not one.
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn streamed_text_reaches_the_caller() {
        let provider = Arc::new(ScriptedProvider::new(
            "m",
            vec![Scripted::Reply("one two three".into())],
        ));
        let reliable = Reliable::new(provider, fast_policy(), Arc::new(Semaphore::new(1)));
        let mut shown = String::new();
        let mut sink = |d: &str| shown.push_str(d);
        let answer = reliable
            .chat(&request(), Some(&mut sink))
            .await
            .expect("answer");
        assert_eq!(shown, "one two three");
        assert_eq!(answer.text, shown);
    }
}
