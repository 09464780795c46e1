//! Combining the keyword and vector rankings into one.
//!
//! Reciprocal rank fusion: a chunk scores `Σ weight / (k + rank)` over the rankings it appears
//! in, so agreement between retrievers wins and neither retriever's raw scores (BM25 is
//! unbounded, cosine is not) need calibrating. With one ranking, its own scores are kept.
//!
//! The weights depend on the query's [`QueryClass`]: an identifier is best found by its exact
//! tokens, a question in words by meaning, a phrase (a docstring, a commit subject) by both.
//! [`FusionProfile::default`] holds weights learned on `bench/eval` (`bench/rank_tune.py fit`).
//!
//! On top, a query that is a bare identifier (`Config::load`, `parse_json`) lifts the chunks
//! that *define* it to the top, in fused order: asking for a name means asking for its
//! definition, whatever mentions it more often.

use std::collections::HashMap;

use quarry_indexer::{Chunk, ChunkKind};

use crate::Explain;

/// Weights of reciprocal rank fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionWeights {
    /// Weight of the BM25 ranking.
    pub keyword: f32,
    /// Weight of the vector ranking.
    pub vector: f32,
    /// The rank offset `k`: larger flattens the difference between top ranks.
    pub k: f32,
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights {
            keyword: 1.0,
            vector: 1.0,
            k: 60.0,
        }
    }
}

/// The shape of a query, which decides how the two retrievers are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryClass {
    /// A bare identifier or path of identifiers: `Config::load`, `parse_json`, `NoteStore add`.
    Identifier,
    /// A question: ends with `?` or starts with a question word (`how`, `where`, `does`, ...).
    Question,
    /// Any other words: a description, a docstring's sentence, a commit subject.
    Phrase,
}

/// Words that open a question.
const QUESTION_WORDS: [&str; 15] = [
    "how", "where", "what", "why", "which", "when", "who", "does", "do", "is", "are", "can",
    "should", "find", "show",
];

impl QueryClass {
    /// The class of `query` (the same rule as `bench/rank_tune.py`'s `query_class`).
    pub fn of(query: &str) -> Self {
        if identifier_query(query).is_some() {
            return QueryClass::Identifier;
        }
        let first = query
            .split_whitespace()
            .next()
            .map(str::to_lowercase)
            .unwrap_or_default();
        if query.trim_end().ends_with('?') || QUESTION_WORDS.contains(&first.as_str()) {
            QueryClass::Question
        } else {
            QueryClass::Phrase
        }
    }
}

/// Fusion weights per [`QueryClass`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionProfile {
    /// For identifiers.
    pub identifier: FusionWeights,
    /// For questions.
    pub question: FusionWeights,
    /// For phrases.
    pub phrase: FusionWeights,
}

impl FusionProfile {
    /// The same weights for every class.
    pub fn uniform(weights: FusionWeights) -> Self {
        FusionProfile {
            identifier: weights,
            question: weights,
            phrase: weights,
        }
    }

    /// The weights for `query`.
    pub fn for_query(&self, query: &str) -> &FusionWeights {
        match QueryClass::of(query) {
            QueryClass::Identifier => &self.identifier,
            QueryClass::Question => &self.question,
            QueryClass::Phrase => &self.phrase,
        }
    }
}

impl Default for FusionProfile {
    /// Learned on `bench/eval` by `bench/rank_tune.py fit` (vector weight fixed at 1).
    fn default() -> Self {
        FusionProfile {
            identifier: FusionWeights {
                keyword: LEARNED_IDENTIFIER.0,
                vector: 1.0,
                k: LEARNED_IDENTIFIER.1,
            },
            question: FusionWeights {
                keyword: LEARNED_QUESTION.0,
                vector: 1.0,
                k: LEARNED_QUESTION.1,
            },
            phrase: FusionWeights {
                keyword: LEARNED_PHRASE.0,
                vector: 1.0,
                k: LEARNED_PHRASE.1,
            },
        }
    }
}

/// Learned (keyword weight, rank offset) per class. Identifiers keep plain fusion: the sets
/// hold none (the exact-definition lift decides them). Questions lean on vectors; phrases
/// weigh both alike but trust the top ranks more (k 10, not 60).
const LEARNED_IDENTIFIER: (f32, f32) = (1.0, 60.0);
const LEARNED_QUESTION: (f32, f32) = (0.25, 20.0);
const LEARNED_PHRASE: (f32, f32) = (1.0, 10.0);

/// A candidate after fusion.
pub(crate) struct Fused {
    pub(crate) id: String,
    pub(crate) score: f32,
    pub(crate) explain: Explain,
}

/// Fuses two rankings (best first, with raw scores) into one, best first.
pub(crate) fn fuse(
    keyword: &[(String, f32)],
    vector: &[(String, f32)],
    weights: &FusionWeights,
    query: &str,
    chunks: &HashMap<String, Chunk>,
) -> Vec<Fused> {
    let single = keyword.is_empty() || vector.is_empty();
    let mut by_id: HashMap<&str, Fused> = HashMap::new();
    for (ranking, weight, is_keyword) in [
        (keyword, weights.keyword, true),
        (vector, weights.vector, false),
    ] {
        for (index, (id, raw)) in ranking.iter().enumerate() {
            let rank = index + 1;
            let entry = by_id.entry(id.as_str()).or_insert_with(|| Fused {
                id: id.clone(),
                score: 0.0,
                explain: Explain {
                    keyword_rank: None,
                    keyword_score: None,
                    vector_rank: None,
                    vector_score: None,
                    exact_symbol: false,
                },
            });
            entry.score += if single {
                *raw
            } else {
                weight / (weights.k + rank as f32)
            };
            if is_keyword {
                entry.explain.keyword_rank = Some(rank);
                entry.explain.keyword_score = Some(*raw);
            } else {
                entry.explain.vector_rank = Some(rank);
                entry.explain.vector_score = Some(*raw);
            }
        }
    }
    let identifier = identifier_query(query);
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    if let Some(identifier) = &identifier {
        for candidate in &mut fused {
            candidate.explain.exact_symbol = chunks
                .get(&candidate.id)
                .is_some_and(|chunk| defines(chunk, identifier));
        }
    }
    fused.sort_by(|a, b| {
        b.explain
            .exact_symbol
            .cmp(&a.explain.exact_symbol)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
    fused
}

/// The query as a normalised identifier path (`config.load`) when it names a symbol: words
/// of letters, digits and `_`, joined by `::`, `.` or spaces (`NoteStore add`), with at least
/// one letter.
pub(crate) fn identifier_query(query: &str) -> Option<String> {
    let words: Vec<&str> = query.split_whitespace().collect();
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    let normalised = words.join(".").replace("::", ".");
    let valid = normalised
        .split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'));
    let has_letter = normalised.chars().any(char::is_alphabetic);
    (valid && has_letter).then(|| normalised.to_lowercase())
}

/// Whether chunks of this kind define a name (functions, methods, types, macros).
pub(crate) fn is_definition(kind: ChunkKind) -> bool {
    matches!(
        kind,
        ChunkKind::Function
            | ChunkKind::Method
            | ChunkKind::Class
            | ChunkKind::Struct
            | ChunkKind::Enum
            | ChunkKind::Trait
            | ChunkKind::Interface
            | ChunkKind::Macro
    )
}

/// Whether the chunk is the definition of `identifier` (its symbol ends with it, on a
/// segment boundary).
fn defines(chunk: &Chunk, identifier: &str) -> bool {
    if !is_definition(chunk.kind) {
        return false;
    }
    let Some(symbol) = &chunk.symbol else {
        return false;
    };
    // Every language's separators (`::`, `.`, `#`, `:` after a TS path, `\\`) as dots.
    let symbol = symbol
        .replace("::", ".")
        .replace(['#', ':', '\\'], ".")
        .to_lowercase();
    symbol == identifier
        || symbol
            .strip_suffix(identifier)
            .is_some_and(|head| head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(fused: &[Fused]) -> Vec<&str> {
        fused.iter().map(|f| f.id.as_str()).collect()
    }

    fn ranking(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), 10.0 - i as f32))
            .collect()
    }

    #[test]
    fn agreement_wins() {
        let keyword = ranking(&["a", "b", "c"]);
        let vector = ranking(&["c", "d", "b"]);
        let fused = fuse(
            &keyword,
            &vector,
            &FusionWeights::default(),
            "x y",
            &HashMap::new(),
        );
        // b: 1/62 + 1/63, c: 1/63 + 1/61, a: 1/61 alone.
        assert_eq!(&ids(&fused)[..2], ["c", "b"]);
        let c = &fused[0].explain;
        assert_eq!((c.keyword_rank, c.vector_rank), (Some(3), Some(1)));
    }

    #[test]
    fn one_ranking_keeps_its_scores() {
        let keyword = ranking(&["a", "b"]);
        let fused = fuse(
            &keyword,
            &[],
            &FusionWeights::default(),
            "x y",
            &HashMap::new(),
        );
        assert_eq!(ids(&fused), ["a", "b"]);
        assert_eq!(fused[0].score, 10.0);
    }

    #[test]
    fn weights_shift_the_balance() {
        let keyword = ranking(&["a", "b"]);
        let vector = ranking(&["b", "a"]);
        let weights = FusionWeights {
            vector: 2.0,
            ..FusionWeights::default()
        };
        let fused = fuse(&keyword, &vector, &weights, "x y", &HashMap::new());
        assert_eq!(ids(&fused)[0], "b");
    }

    #[test]
    fn queries_are_classed() {
        assert_eq!(QueryClass::of("Config::load"), QueryClass::Identifier);
        assert_eq!(QueryClass::of("parse_json"), QueryClass::Identifier);
        assert_eq!(
            QueryClass::of("where are failed uploads retried"),
            QueryClass::Question
        );
        assert_eq!(
            QueryClass::of("does the walker follow symlinks?"),
            QueryClass::Question
        );
        assert_eq!(
            QueryClass::of("Returns an empty matcher that never matches"),
            QueryClass::Phrase
        );
    }

    #[test]
    fn each_class_gets_its_learned_weights() {
        let profile = FusionProfile::default();
        let question = profile.for_query("how are retries spaced out?");
        assert!(question.keyword < question.vector, "{question:?}");
        let phrase = profile.for_query("skip files larger than the limit");
        assert_eq!((phrase.keyword, phrase.k), (1.0, 10.0));
        assert_eq!(*profile.for_query("RetryPolicy"), FusionWeights::default());
        // A question's vector favourite beats its keyword favourite at mirrored ranks.
        let keyword = ranking(&["kw", "vec"]);
        let vector = ranking(&["vec", "kw"]);
        let q = "how are retries spaced out?";
        let fused = fuse(&keyword, &vector, profile.for_query(q), q, &HashMap::new());
        assert_eq!(fused[0].id, "vec");
    }

    #[test]
    fn identifier_queries() {
        assert_eq!(
            identifier_query("Config::load").as_deref(),
            Some("config.load")
        );
        assert_eq!(
            identifier_query("parse_json").as_deref(),
            Some("parse_json")
        );
        assert_eq!(
            identifier_query("NoteStore add").as_deref(),
            Some("notestore.add")
        );
        assert_eq!(identifier_query("where is the config loaded from"), None);
        assert_eq!(identifier_query("what's this?"), None);
        assert_eq!(identifier_query("::"), None);
        assert_eq!(identifier_query("42"), None);
    }
}
