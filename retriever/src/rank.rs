//! The ranking stage: the top of a fused ranking re-ordered by cheap signals about each chunk.
//!
//! Fusion only knows ranks. After it, the best [`RERANKED`] candidates are scored again: the
//! fused score, relative to the best one, plus a weight for each signal:
//!
//! - **path**: the share of the query's words found in the chunk's path;
//! - **test**: test code goes down unless the query mentions tests;
//! - **not a definition**: module bodies, sections and plain text go down a little: a
//!   question about behaviour is answered by a function or a type;
//! - **name absent**: for a query that is one code-shaped name (`big_file_marker`,
//!   `Config::load`, `parseJson`), a chunk whose text does not hold the name goes down: it
//!   is only like the name, never what was asked for. This one is a rule, not learned:
//!   `bench/eval`'s sets hold no such query, so it changes none of their figures.
//!
//! Words are compared lowercase, identifiers split at `_` and case changes, with a light
//! suffix stemmer; `bench/rank_tune.py` computes the same signals and learned the weights
//! ([`RankSignals::default`]). It also measured a *name* signal (the query naming the
//! chunk's own name's words): it bought nothing over fusion, so it is not here. An optional cross-encoder can follow (`cross_rank.rs`).
//!
//! Invariant: the stage only re-orders: it never adds or drops a candidate, and the
//! exact-definition lift of an identifier query stays first.

use std::collections::{HashMap, HashSet};

use quarry_indexer::Chunk;

use crate::fusion::{Fused, is_definition};

/// How many of the fused candidates the signals re-score.
pub const RERANKED: usize = 50;

/// Weights of the ranking signals, added to the fused score relative to the best (1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSignals {
    /// Per share of the query's words in the chunk's path.
    pub path: f32,
    /// Taken off test code when the query does not mention tests.
    pub test: f32,
    /// Taken off chunks that define nothing (modules, sections, text).
    pub not_definition: f32,
    /// Taken off chunks that do not hold the code-shaped name the query is.
    pub name_absent: f32,
}

impl RankSignals {
    /// No signals: the fused order is kept.
    pub const NONE: RankSignals = RankSignals {
        path: 0.0,
        test: 0.0,
        not_definition: 0.0,
        name_absent: 0.0,
    };
}

impl Default for RankSignals {
    /// Learned on `bench/eval` by `bench/rank_tune.py fit`.
    fn default() -> Self {
        RankSignals {
            path: 0.1,
            test: 0.4,
            not_definition: 0.2,
            name_absent: 0.5,
        }
    }
}

/// Re-orders the top [`RERANKED`] of `fused` (sorted, lifted definitions first) by the
/// signals; each candidate's score becomes its re-scored value.
pub(crate) fn rerank(
    fused: &mut [Fused],
    chunks: &HashMap<String, Chunk>,
    query: &str,
    signals: &RankSignals,
) {
    if fused.is_empty() || *signals == RankSignals::NONE {
        return;
    }
    let top = fused.len().min(RERANKED);
    let best = fused[..top]
        .iter()
        .map(|f| f.score)
        .fold(f32::MIN, f32::max);
    if best <= 0.0 {
        return;
    }
    let terms = query_terms(query);
    let tests_asked = query.to_lowercase().contains("test");
    let name = code_name(query);
    for candidate in &mut fused[..top] {
        let mut value = candidate.score / best;
        if let Some(chunk) = chunks.get(&candidate.id) {
            value += signals.path * path_match(&terms, chunk);
            if !tests_asked && chunk.is_test() {
                value -= signals.test;
            }
            if !is_definition(chunk.kind) {
                value -= signals.not_definition;
            }
            if name.as_ref().is_some_and(|parts| !holds_name(chunk, parts)) {
                value -= signals.name_absent;
            }
        }
        candidate.score = value * best;
    }
    fused.sort_by(|a, b| {
        b.explain
            .exact_symbol
            .cmp(&a.explain.exact_symbol)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
}

/// The parts of the query when it is one code-shaped name, lowercased: a single token of
/// identifier characters with `_`, `::`, `.` or a lower-to-upper case change in it
/// (`Config::load` is `config`, `load`). Plain words (`upload`, `retry upload`) are not.
fn code_name(query: &str) -> Option<Vec<String>> {
    let mut tokens = query.split_whitespace();
    let token = tokens.next()?;
    if tokens.next().is_some() {
        return None;
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | ':' | '.');
    if !token.chars().all(allowed) || !token.chars().any(char::is_alphabetic) {
        return None;
    }
    let camel = token
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    if !(camel || token.contains(['_', ':', '.'])) {
        return None;
    }
    let parts: Vec<String> = token
        .split([':', '.'])
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
        .collect();
    (!parts.is_empty()).then_some(parts)
}

/// Whether the chunk's text holds every part of the name (case aside).
fn holds_name(chunk: &Chunk, parts: &[String]) -> bool {
    let text = chunk.text.to_lowercase();
    parts.iter().all(|part| text.contains(part.as_str()))
}

/// Words that say nothing about code.
const STOP_WORDS: [&str; 60] = [
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "it", "its", "by", "with",
    "from", "this", "that", "be", "as", "at", "into", "when", "if", "are", "not", "how", "where",
    "what", "why", "which", "does", "do", "can", "should", "we", "i", "you", "there", "get", "set",
    "all", "any", "one", "new", "use", "up", "my", "our", "me", "so", "but", "than", "then", "has",
    "have", "was", "were", "will", "would",
];

/// The query's words worth matching: split, lowercased, stemmed, stop words dropped.
pub(crate) fn query_terms(query: &str) -> HashSet<String> {
    words(query)
        .into_iter()
        .filter(|w| w.len() > 1 && !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// Share of `terms` among the words of the chunk's path (its extension left out).
fn path_match(terms: &HashSet<String>, chunk: &Chunk) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    let path = chunk
        .path
        .rsplit_once('.')
        .map_or(chunk.path.as_str(), |(stem, _)| stem);
    let words = stemmed(path);
    let found = terms.iter().filter(|t| words.contains(*t)).count();
    found as f32 / terms.len() as f32
}

fn stemmed(text: &str) -> HashSet<String> {
    words(text).into_iter().map(|w| stem(&w)).collect()
}

/// Lowercase words of `text`: runs of ASCII letters split where case turns from lower to
/// upper (`parseJson` is `parse`, `json`), an acronym ending before a capitalised word
/// (`HTTPServer` is `http`, `server`), and runs of digits.
pub(crate) fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c.is_ascii_alphabetic() {
            let start = i;
            if c.is_ascii_uppercase() {
                // An acronym run (`HTTP` of `HTTPServer`) ends before its last capital when
                // a lowercase letter follows it.
                while i < chars.len() && chars[i].is_ascii_uppercase() {
                    i += 1;
                }
                let run = i - start;
                if run > 1 && i < chars.len() && chars[i].is_ascii_lowercase() {
                    i -= 1;
                    out.push(chars[start..i].iter().collect::<String>().to_lowercase());
                    continue;
                }
                while i < chars.len() && chars[i].is_ascii_lowercase() {
                    i += 1;
                }
            } else {
                while i < chars.len() && chars[i].is_ascii_lowercase() {
                    i += 1;
                }
            }
            out.push(chars[start..i].iter().collect::<String>().to_lowercase());
        } else {
            i += 1;
        }
    }
    out
}

/// `word` without a plural or verb ending and a final `e`, so `files` and `file` are both
/// `fil`, `parsing` and `parse` both `pars`, `matches` is `match`.
pub(crate) fn stem(word: &str) -> String {
    let ends = |suffix: &str| word.ends_with(suffix);
    let n = word.len();
    let mut stem = if n > 5 && ends("ing") {
        &word[..n - 3]
    } else if n > 4
        && ["ed", "ches", "shes", "sses", "xes", "zes"]
            .iter()
            .any(|s| ends(s))
    {
        &word[..n - 2]
    } else if n > 3 && ends("s") && !ends("ss") {
        &word[..n - 1]
    } else {
        word
    };
    if stem.len() > 3
        && let Some(head) = stem.strip_suffix('e')
    {
        stem = head;
    }
    stem.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Explain;
    use quarry_indexer::ChunkKind;

    fn chunk(id: &str, path: &str, kind: ChunkKind) -> Chunk {
        Chunk {
            id: id.to_string(),
            path: path.to_string(),
            lang: "rust".to_string(),
            kind,
            symbol: Some(format!("crate::{id}")),
            signature: None,
            doc: None,
            context: None,
            start_line: 1,
            end_line: 2,
            start_byte: 0,
            end_byte: 1,
            text: String::new(),
            graph: Default::default(),
        }
    }

    fn fused(ids: &[&str]) -> Vec<Fused> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Fused {
                id: id.to_string(),
                score: 1.0 / (10.0 + i as f32),
                explain: Explain::default(),
            })
            .collect()
    }

    fn order(list: &[Fused]) -> Vec<&str> {
        list.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn tests_go_down_unless_asked_for() {
        let chunks: HashMap<String, Chunk> = [
            chunk("upload_test", "tests/upload.rs", ChunkKind::Function),
            chunk("upload", "src/upload.rs", ChunkKind::Function),
        ]
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        let signals = RankSignals::default();
        let mut list = fused(&["upload_test", "upload"]);
        rerank(&mut list, &chunks, "retry a failed upload", &signals);
        assert_eq!(order(&list), ["upload", "upload_test"]);
        let mut list = fused(&["upload_test", "upload"]);
        rerank(&mut list, &chunks, "the test of a failed upload", &signals);
        assert_eq!(order(&list), ["upload_test", "upload"]);
    }

    #[test]
    fn a_lifted_definition_stays_first_and_nothing_is_dropped() {
        let chunks: HashMap<String, Chunk> = [
            chunk("store_mod", "src/store.rs", ChunkKind::Module),
            chunk("load", "tests/load.rs", ChunkKind::Function),
        ]
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        let mut list = fused(&["load", "store_mod"]);
        list[0].explain.exact_symbol = true;
        rerank(&mut list, &chunks, "store", &RankSignals::default());
        assert_eq!(order(&list), ["load", "store_mod"]);
        let mut none = fused(&["load", "store_mod"]);
        rerank(&mut none, &chunks, "store", &RankSignals::NONE);
        assert_eq!(order(&none), ["load", "store_mod"]);
    }

    #[test]
    fn a_chunk_holding_the_name_asked_for_beats_one_that_is_only_like_it() {
        let mut holder = chunk("marker", "data/big.txt", ChunkKind::Text);
        holder.text = "big_file_marker\nbig_file_marker".to_string();
        let mut similar = chunk("similar", "src/files.rs", ChunkKind::Function);
        similar.text = "fn mark_big_files() {}".to_string();
        let chunks: HashMap<String, Chunk> = [holder, similar]
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let signals = RankSignals::default();
        let mut list = fused(&["similar", "marker"]);
        rerank(&mut list, &chunks, "big_file_marker", &signals);
        assert_eq!(order(&list), ["marker", "similar"]);
        // Words are not a name: the fused order stands.
        let mut list = fused(&["similar", "marker"]);
        rerank(&mut list, &chunks, "big file marker", &signals);
        assert_eq!(order(&list), ["similar", "marker"]);
    }

    #[test]
    fn code_shaped_names() {
        assert_eq!(
            code_name("big_file_marker"),
            Some(vec!["big_file_marker".to_string()])
        );
        assert_eq!(
            code_name("Config::load"),
            Some(vec!["config".to_string(), "load".to_string()])
        );
        assert_eq!(code_name("parseJson"), Some(vec!["parsejson".to_string()]));
        for words in [
            "upload",
            "retry upload",
            "NoteStore add",
            "HTTP",
            "a?",
            "v2",
        ] {
            assert_eq!(code_name(words), None, "{words}");
        }
    }

    #[test]
    fn identifiers_split_into_words() {
        assert_eq!(words("skip_filesize"), ["skip", "filesize"]);
        assert_eq!(words("parseJson"), ["parse", "json"]);
        assert_eq!(words("HTTPServer v2"), ["http", "server", "v", "2"]);
        assert_eq!(words("src/walk.rs"), ["src", "walk", "rs"]);
    }

    #[test]
    fn stems_and_stop_words() {
        assert_eq!(stem("files"), stem("file"));
        assert_eq!(stem("parsing"), stem("parse"));
        assert_eq!(stem("walking"), "walk");
        assert_eq!(stem("matches"), "match");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("is"), "is");
        let terms = query_terms("where are the files walked");
        assert!(terms.contains("fil") && terms.contains("walk"));
        assert!(!terms.contains("where") && !terms.contains("the"));
    }
}
