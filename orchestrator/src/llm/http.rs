//! What the HTTP backends share: sending a JSON request and turning failures into
//! [`LlmError`]s, `Retry-After`, error bodies, and reading server-sent events.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use reqwest::header::HeaderMap;

use super::{ChatResponse, LlmError, Usage};

/// Longest error message kept from an endpoint's body.
const MAX_MESSAGE: usize = 300;

/// Sends a JSON POST and returns the response if its status is a success.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    provider: &str,
    url: &str,
    headers: HeaderMap,
    body: &serde_json::Value,
) -> Result<reqwest::Response, LlmError> {
    let response = client
        .post(url)
        .headers(headers)
        .json(body)
        .send()
        .await
        .map_err(|e| connect_error(provider, url, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    Err(LlmError::Status {
        provider: provider.to_string(),
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
    })
}

/// Reads a whole JSON body.
pub(crate) async fn read_json(
    response: reqwest::Response,
    provider: &str,
    url: &str,
) -> Result<serde_json::Value, LlmError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| connect_error(provider, url, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| LlmError::Malformed {
        provider: provider.to_string(),
        reason: format!(
            "body is not JSON ({e}): {}",
            excerpt(&String::from_utf8_lossy(&bytes))
        ),
    })
}

/// Feeds the `data:` payload of every server-sent event to `on_data` until the stream ends or
/// `on_data` returns `false`.
pub(crate) async fn read_events(
    response: reqwest::Response,
    provider: &str,
    url: &str,
    mut on_data: impl FnMut(&str) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    let mut stream = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| connect_error(provider, url, &e))?;
        pending.extend_from_slice(&piece);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(data) = line.strip_prefix("data:")
                && !on_data(data.trim_start())?
            {
                return Ok(());
            }
        }
    }
    let rest = String::from_utf8_lossy(&pending);
    if let Some(data) = rest.trim_end().strip_prefix("data:") {
        on_data(data.trim_start())?;
    }
    Ok(())
}

/// What a streamed answer has gathered so far; both backends fill one as events arrive.
pub(crate) struct Streamed {
    /// The text so far.
    pub(crate) text: String,
    /// Usage, as the stream reported it.
    pub(crate) usage: Usage,
    /// The model that answers.
    pub(crate) model: String,
    started: Instant,
    first_token: Option<Duration>,
}

impl Streamed {
    pub(crate) fn new(model: &str, started: Instant) -> Self {
        Streamed {
            text: String::new(),
            usage: Usage::default(),
            model: model.to_string(),
            started,
            first_token: None,
        }
    }

    /// Appends a piece of the answer and passes it on.
    pub(crate) fn push(&mut self, delta: &str, sink: &mut (dyn FnMut(&str) + Send)) {
        if delta.is_empty() {
            return;
        }
        self.first_token
            .get_or_insert_with(|| self.started.elapsed());
        self.text.push_str(delta);
        sink(delta);
    }

    /// The response once the stream ended. A stream that failed before any text can be
    /// retried like any other call; after text was shown it is final.
    pub(crate) fn finish(
        self,
        provider: &str,
        ended: Result<(), LlmError>,
    ) -> Result<ChatResponse, LlmError> {
        match ended {
            Ok(()) => Ok(ChatResponse {
                latency: self.started.elapsed(),
                first_token: self.first_token,
                text: self.text,
                usage: self.usage,
                model: self.model,
            }),
            Err(e) if self.text.is_empty() => Err(e),
            Err(e) => Err(LlmError::StreamBroken {
                provider: provider.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Parses one event payload as JSON.
pub(crate) fn event_json(provider: &str, data: &str) -> Result<serde_json::Value, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Malformed {
        provider: provider.to_string(),
        reason: format!("stream event is not JSON ({e}): {}", excerpt(data)),
    })
}

fn connect_error(provider: &str, url: &str, error: &reqwest::Error) -> LlmError {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    LlmError::Connect {
        provider: provider.to_string(),
        url: url.to_string(),
        reason,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The human part of an error body: `error.message` (OpenAI, Anthropic), `error` as a string
/// (llama.cpp, Ollama), `message`, or the body itself, shortened to one line.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
    });
    let message = from_json.unwrap_or_else(|| body.to_string());
    if message.trim().is_empty() {
        return "(empty body)".to_string();
    }
    excerpt(&message)
}

/// One line of at most [`MAX_MESSAGE`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_MESSAGE {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_MESSAGE).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&future).unwrap_or_default();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn error_messages_from_each_dialect() {
        assert_eq!(
            error_message(r#"{"error":{"message":"Rate limit reached","type":"x"}}"#),
            "Rate limit reached"
        );
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            error_message("<html>\n Bad gateway </html>"),
            "<html> Bad gateway </html>"
        );
        assert_eq!(error_message(""), "(empty body)");
        assert!(error_message(&"x".repeat(1000)).ends_with('…'));
    }
}
