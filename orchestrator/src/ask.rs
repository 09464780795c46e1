//! `quarry ask`: an answer about the code, grounded in retrieved chunks, with its citations
//! checked.
//!
//! The prompt labels every chunk of context `path:start-end` and asks the model to cite those
//! labels. The answer is then scanned for citations; each one must point inside a chunk that
//! was actually sent. One that does not (an invented file, a line range outside what was
//! shown) is reported as unverified and never presented as a source.

use std::time::Duration;

use quarry_retriever::{ContextPack, SearchRequest};
use serde::Serialize;

use crate::llm::{ChatOptions, ChatRequest, DeltaSink, LlmError, Message, Provider, Usage};

const SYSTEM_PROMPT: &str = "\
You are Quarry, answering questions about a code repository. Use only the context: chunks of \
the repository, each introduced by its label in square brackets, like [src/config.rs:12-40]. \
Answer concisely. After each statement, cite the chunk it comes from by repeating its label in \
square brackets exactly as written. Cite only labels that appear in the context. Commits of \
the repository's history, when given, are labelled like [commit 1a2b3c4d]; cite them the same \
way. If the context does not contain the answer, say so.";

/// Words that make a question one about history (why, when, who changed it).
const HISTORY_WORDS: [&str; 10] = [
    "why", "when", "who", "introduc", "history", "commit", "changed", "reason", "since", "decid",
];

/// Commits sent with a question about history.
const HISTORY_COMMITS: usize = 3;

/// The commit search to run beside `request` when its question is about history: the same
/// query and mode, over commits, for the few best.
pub fn history_request(request: &SearchRequest) -> Option<SearchRequest> {
    wants_history(&request.query).then(|| SearchRequest {
        k: HISTORY_COMMITS,
        source: quarry_retriever::Source::Commits,
        ..request.clone()
    })
}

/// Whether a question asks about history, so the commits that match it are worth sending.
pub fn wants_history(question: &str) -> bool {
    let lower = question.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| HISTORY_WORDS.iter().any(|w| word.starts_with(w)))
}

/// A commit sent as context: cited as `[commit SHORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitContext {
    /// Full id.
    pub id: String,
    /// Author date.
    pub date: String,
    /// Subject, body and changed paths.
    pub text: String,
}

impl CommitContext {
    /// The id as the prompt shows it (8 hex digits).
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }

    /// The commit of a `--source commits` hit.
    pub fn from_hit(hit: &quarry_retriever::Hit) -> Option<Self> {
        let mut text: String = hit.text.chars().take(800).collect();
        if text.len() < hit.text.len() {
            text.push('…');
        }
        Some(CommitContext {
            id: hit.commit.clone()?,
            date: hit.date.clone().unwrap_or_default(),
            text,
        })
    }
}

/// Why `ask` produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Retrieval found nothing to answer from.
    #[error(
        "nothing in the index matches the question; try other words, `quarry search`, or re-run `quarry index`"
    )]
    NoContext,
    /// The LLM call failed.
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// A place in the repository an answer points to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Citation {
    /// Path relative to the repository root.
    pub path: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
}

impl Citation {
    /// `path:start-end`.
    pub fn label(&self) -> String {
        format!("{}:{}-{}", self.path, self.start_line, self.end_line)
    }
}

/// An answer with its citations sorted into checked and unverified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The model's answer as it wrote it.
    pub answer: String,
    /// Citations that point inside chunks the model was shown, in order of first mention.
    pub citations: Vec<Citation>,
    /// Citations that point anywhere else: never to be shown as sources.
    pub unverified: Vec<Citation>,
    /// Commits cited that were sent, by the id the prompt showed.
    pub commits: Vec<String>,
    /// Commits cited that were not sent.
    pub unverified_commits: Vec<String>,
    /// The model that answered.
    pub model: String,
    /// Tokens used.
    pub usage: Usage,
    /// Estimated tokens of code context sent.
    pub context_tokens: usize,
    /// The context budget.
    pub context_budget: usize,
    /// Total time of the LLM call.
    #[serde(skip)]
    pub latency: Duration,
    /// Time to the first streamed text.
    #[serde(skip)]
    pub first_token: Option<Duration>,
}

/// The chat messages for `question` over `pack` and `commits`.
pub fn build_messages(
    question: &str,
    pack: &ContextPack,
    commits: &[CommitContext],
) -> Vec<Message> {
    let mut context = String::new();
    for item in &pack.items {
        context.push_str(&item.render());
        context.push('\n');
    }
    for commit in commits {
        context.push_str(&format!(
            "[commit {}] {}\n{}\n\n",
            commit.short(),
            commit.date,
            commit.text.trim_end()
        ));
    }
    vec![
        Message::system(SYSTEM_PROMPT),
        Message::user(format!(
            "Context:\n\n{context}Question: {}\n\nAnswer briefly and cite the labels you used, like [{}].",
            question.trim(),
            pack.items
                .first()
                .map_or_else(|| "path:1-10".to_string(), |item| item.label())
        )),
    ]
}

/// Asks `provider` about `question` with `pack` as context, streaming to `on_delta` if given,
/// and checks the answer's citations against the pack.
pub async fn ask(
    provider: &dyn Provider,
    question: &str,
    pack: &ContextPack,
    commits: &[CommitContext],
    answer_tokens: u32,
    on_delta: Option<DeltaSink<'_>>,
) -> Result<Answer, AskError> {
    if pack.items.is_empty() {
        return Err(AskError::NoContext);
    }
    let request = ChatRequest {
        messages: build_messages(question, pack, commits),
        options: ChatOptions {
            max_tokens: answer_tokens,
            temperature: 0.0,
            ..ChatOptions::default()
        },
    };
    let response = provider.chat(&request, on_delta).await?;
    let (citations, unverified) = check_citations(&response.text, pack);
    let (commits, unverified_commits) = check_commit_citations(&response.text, commits);
    Ok(Answer {
        answer: response.text,
        citations,
        unverified,
        commits,
        unverified_commits,
        model: response.model,
        usage: response.usage,
        context_tokens: pack.tokens,
        context_budget: pack.budget,
        latency: response.latency,
        first_token: response.first_token,
    })
}

/// Citations in `answer`, split into those inside a chunk of `pack` and the rest, each list
/// without repeats and in order of first mention.
pub fn check_citations(answer: &str, pack: &ContextPack) -> (Vec<Citation>, Vec<Citation>) {
    let mut verified = Vec::new();
    let mut unverified = Vec::new();
    for citation in parse_citations(answer) {
        let list = if pack
            .find(&citation.path, citation.start_line, citation.end_line)
            .is_some()
        {
            &mut verified
        } else {
            &mut unverified
        };
        if !list.contains(&citation) {
            list.push(citation);
        }
    }
    (verified, unverified)
}

/// Commit ids cited as `[commit HEX]` (7 or more hex digits), split into those of commits
/// that were sent (as the prompt showed them) and the rest, without repeats.
pub fn check_commit_citations(answer: &str, sent: &[CommitContext]) -> (Vec<String>, Vec<String>) {
    let mut verified = Vec::new();
    let mut unverified = Vec::new();
    let lower = answer.to_lowercase();
    for (at, _) in lower.match_indices("commit ") {
        let id: String = lower[at + "commit ".len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if id.len() < 7 {
            continue;
        }
        match sent
            .iter()
            .find(|c| c.id.starts_with(&id) || id.starts_with(c.short()))
        {
            Some(commit) => {
                let short = commit.short().to_string();
                if !verified.contains(&short) {
                    verified.push(short);
                }
            }
            None if !unverified.contains(&id) => unverified.push(id),
            None => {}
        }
    }
    (verified, unverified)
}

/// The answer with every unverified citation marked as such, for output that cannot list them
/// separately.
pub fn mark_unverified(answer: &str, unverified: &[Citation]) -> String {
    let mut out = answer.to_string();
    for citation in unverified {
        for written in written_forms(citation) {
            out = out.replace(
                &written,
                &format!("{written} (not in the retrieved context)"),
            );
        }
    }
    out
}

fn written_forms(citation: &Citation) -> Vec<String> {
    let mut forms = vec![citation.label()];
    if citation.start_line == citation.end_line {
        forms.push(format!("{}:{}", citation.path, citation.start_line));
    }
    forms
}

/// Every `path:start-end` (or `path:line`, `path:L10-L20`) in a text.
pub fn parse_citations(text: &str) -> Vec<Citation> {
    let is_delimiter = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '[' | ']' | '(' | ')' | '{' | '}' | '<' | '>' | ',' | ';' | '`' | '"' | '\'' | '*'
            )
    };
    text.split(is_delimiter)
        .filter_map(|token| parse_one(token.trim_end_matches(['.', ':'])))
        .collect()
}

fn parse_one(token: &str) -> Option<Citation> {
    let (path, lines) = token.rsplit_once(':')?;
    let path = path.strip_prefix("./").unwrap_or(path);
    let plausible_path = !path.is_empty()
        && (path.contains('.') || path.contains('/'))
        && !path.contains("://")
        && path
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@'));
    if !plausible_path {
        return None;
    }
    let number = |s: &str| s.trim_start_matches(['L', 'l']).parse::<u32>().ok();
    let (start, end) = match lines.split_once(['-', '–']) {
        Some((start, end)) => (number(start)?, number(end)?),
        None => {
            let line = number(lines)?;
            (line, line)
        }
    };
    (start >= 1 && start <= end).then(|| Citation {
        path: path.to_string(),
        start_line: start,
        end_line: end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::scripted::{Scripted, ScriptedProvider};
    use quarry_retriever::{ContextItem, ContextRole};

    fn item(path: &str, start: u32, end: u32, text: &str) -> ContextItem {
        ContextItem {
            path: path.into(),
            start_line: start,
            end_line: end,
            symbol: None,
            lang: "rust".into(),
            enclosing: None,
            text: text.into(),
            role: ContextRole::Hit,
            tokens: 10,
        }
    }

    fn pack() -> ContextPack {
        ContextPack {
            items: vec![
                item("src/config.rs", 12, 40, "fn load() {}"),
                item("src/env.rs", 1, 9, "fn apply_env() {}"),
            ],
            tokens: 20,
            budget: 100,
            dropped: 0,
        }
    }

    #[test]
    fn citations_in_the_forms_models_write_them() {
        let text = "Loaded by `load` [src/config.rs:12-40], env applied (src/env.rs:3). \
                    See also [src/config.rs:L15-L20, ./src/env.rs:1-9]. Not a citation: \
                    http://host:8080, ratio 3:4, version 1.2:3-2.";
        let labels: Vec<String> = parse_citations(text).iter().map(Citation::label).collect();
        assert_eq!(
            labels,
            [
                "src/config.rs:12-40",
                "src/env.rs:3-3",
                "src/config.rs:15-20",
                "src/env.rs:1-9"
            ]
        );
    }

    #[test]
    fn invented_citations_are_unverified() {
        let answer = "It reads the file [src/config.rs:12-40] and the secrets \
                      [src/secrets.rs:1-5] and line 50 [src/config.rs:38-50]; again [src/config.rs:12-40].";
        let (verified, unverified) = check_citations(answer, &pack());
        assert_eq!(verified.len(), 1);
        assert_eq!(verified[0].label(), "src/config.rs:12-40");
        let flagged: Vec<String> = unverified.iter().map(Citation::label).collect();
        assert_eq!(flagged, ["src/secrets.rs:1-5", "src/config.rs:38-50"]);
        let marked = mark_unverified(answer, &unverified);
        assert!(marked.contains("[src/secrets.rs:1-5 (not in the retrieved context)]"));
        assert!(marked.contains("[src/config.rs:12-40] and"));
    }

    #[test]
    fn the_prompt_labels_every_chunk_and_asks_for_those_labels() {
        let messages = build_messages("  how is config loaded? ", &pack(), &[]);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].content.contains("square brackets"));
        let user = &messages[1].content;
        assert!(user.contains("[src/config.rs:12-40]\nfn load() {}"));
        assert!(user.contains("[src/env.rs:1-9]\nfn apply_env() {}"));
        assert!(user.contains("Question: how is config loaded?\n"));
        assert!(user.ends_with("cite the labels you used, like [src/config.rs:12-40]."));
    }

    #[tokio::test]
    async fn ask_returns_checked_citations_and_usage() {
        let provider = ScriptedProvider::new(
            "scripted-model",
            vec![Scripted::Reply(
                "Config is read by load [src/config.rs:12-40] via [src/main.rs:1-3].".into(),
            )],
        );
        let answer = ask(&provider, "how?", &pack(), &[], 256, None)
            .await
            .expect("answer");
        assert_eq!(answer.citations.len(), 1);
        assert_eq!(answer.unverified[0].path, "src/main.rs");
        assert_eq!(answer.model, "scripted-model");
        assert_eq!(answer.context_tokens, 20);
        let sent = provider.requests();
        assert_eq!(sent[0].options.max_tokens, 256);
        assert!(sent[0].messages[1].content.contains("[src/env.rs:1-9]"));
    }

    #[tokio::test]
    async fn an_empty_context_never_calls_the_model() {
        let provider = ScriptedProvider::new("m", vec![]);
        let error = ask(&provider, "q", &ContextPack::default(), &[], 10, None)
            .await
            .expect_err("no context");
        assert!(matches!(error, AskError::NoContext));
        assert!(provider.requests().is_empty());
    }

    #[test]
    fn history_questions_and_commit_citations() {
        assert!(wants_history("Why do we retry uploads?"));
        assert!(wants_history("when was the cache introduced"));
        assert!(!wants_history("how is the config loaded?"));
        let sent = [CommitContext {
            id: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d".into(),
            date: "2026-11-26T10:00:00Z".into(),
            text: "Retry uploads".into(),
        }];
        let (verified, unverified) = check_commit_citations(
            "Added in [commit 1a2b3c4d] and again [Commit 1A2B3C4D5E]; not [commit deadbeef1], nor commit abc.",
            &sent,
        );
        assert_eq!(verified, ["1a2b3c4d"]);
        assert_eq!(unverified, ["deadbeef1"]);
        let messages = build_messages("why?", &pack(), &sent);
        assert!(
            messages[1]
                .content
                .contains("[commit 1a2b3c4d] 2026-11-26T10:00:00Z\nRetry uploads")
        );
    }
}
