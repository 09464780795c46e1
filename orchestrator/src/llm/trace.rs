//! The LLM trace: one JSON line per call, appended to a file, so every answer can be traced
//! back to the exact prompt, model, usage, latency and retries that produced it.
//!
//! API keys never reach the trace: requests carry them only in headers, which are not
//! recorded, and every configured secret value is also scrubbed from the serialized line in
//! case one appears in a prompt or an error message.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::{ChatOptions, Message, Usage};

/// What replaces a secret in the trace.
const REDACTED: &str = "[redacted]";

/// One attempt at a call: which backend, how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Backend name.
    pub provider: String,
    /// Model asked for.
    pub model: String,
    /// Milliseconds the attempt took.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One call, as written to the trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceRecord<'a> {
    /// When the call finished (RFC 3339, UTC).
    pub time: String,
    /// What the call was for (`ask`, `plan`, `task:3`).
    pub purpose: &'a str,
    /// Backend that answered (or the last one tried).
    pub provider: String,
    /// Model that answered (or the last one asked).
    pub model: String,
    /// The prompt.
    pub messages: &'a [Message],
    /// Generation options (token limit, temperature, stop strings, schema).
    pub options: &'a ChatOptions,
    /// The answer, if there was one.
    pub answer: Option<&'a str>,
    /// Token usage reported by the endpoint.
    pub usage: Option<Usage>,
    /// Milliseconds from the first attempt to the end.
    pub latency_ms: u64,
    /// Milliseconds to the first streamed text, when streamed.
    pub first_token_ms: Option<u64>,
    /// Attempts after the first.
    pub retries: u32,
    /// Whether a fallback answered.
    pub fallback: bool,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Why the call failed, if it did.
    pub error: Option<String>,
}

/// An append-only JSONL trace file.
pub struct TraceLog {
    path: PathBuf,
    file: Mutex<File>,
    secrets: Vec<String>,
}

impl TraceLog {
    /// Opens (creating it and its folder) the trace at `path`; `secrets` are scrubbed from
    /// every line.
    pub fn open(path: &Path, secrets: Vec<String>) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(TraceLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        })
    }

    /// Appends one record (a [`TraceRecord`], or any other step a caller traces). A trace that
    /// cannot be written is logged, never fails the call.
    pub fn write(&self, record: &impl Serialize) {
        let line = match serde_json::to_string(record) {
            Ok(line) => self.scrub(line),
            Err(e) => {
                tracing::warn!("cannot serialize an LLM trace record: {e}");
                return;
            }
        };
        let Ok(mut file) = self.file.lock() else {
            return;
        };
        if let Err(e) = writeln!(file, "{line}") {
            tracing::warn!("cannot write the LLM trace {}: {e}", self.path.display());
        }
    }

    fn scrub(&self, mut line: String) -> String {
        for secret in &self.secrets {
            // Secrets are compared as they appear inside a JSON string.
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if !escaped.is_empty() && line.contains(escaped) {
                line = line.replace(escaped, REDACTED);
            }
        }
        line
    }
}

/// Now as RFC 3339 UTC, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_lines_of_json_without_secrets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("traces/ask.jsonl");
        let log = TraceLog::open(&path, vec!["sk-test-123456".into(), "x".into()]).expect("open");
        let messages = vec![Message::user("my key is sk-test-123456, what is x?")];
        let options = ChatOptions::default();
        for _ in 0..2 {
            log.write(&TraceRecord {
                time: now_rfc3339(),
                purpose: "ask",
                provider: "openai".into(),
                model: "m".into(),
                messages: &messages,
                options: &options,
                answer: Some("fine"),
                usage: Some(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 1,
                }),
                latency_ms: 5,
                first_token_ms: None,
                retries: 0,
                fallback: false,
                attempts: Vec::new(),
                error: None,
            });
        }
        let text = std::fs::read_to_string(&path).expect("read trace");
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("sk-test-123456"));
        assert!(text.contains("my key is [redacted], what is x?"), "{text}");
        let first: serde_json::Value =
            serde_json::from_str(text.lines().next().unwrap_or("")).expect("json line");
        assert_eq!(first["usage"]["prompt_tokens"], 3);
        assert_eq!(first["purpose"], "ask");
    }
}
