//! The file view: files ranked by the evidence of their chunks, for "which files" questions.
//!
//! A chunk ranking answers "where is the code that does X"; a question such as "which files
//! does this change touch" wants files, and a top ten of chunks often spends half its places
//! on one file. The file view runs the chunk ranking deeper than asked, groups the hits by
//! path and scores each file by all its hits, the best counting most: a file with three good
//! chunks outranks one with a single slightly better chunk. Each file keeps its best spans so
//! a caller can go straight to the lines.
//!
//! Invariant: the file view never sees a chunk the chunk view would not show for a deeper
//! `k` (same filters, same fusion and ranking), so the two views cannot disagree about what
//! matches, only about how it adds up.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{MAX_K, Ranked, Retriever, SearchError, SearchRequest, Source, check_k, round};

/// How many chunks are ranked per file asked for.
const CHUNKS_PER_FILE: usize = 5;
/// Fewest chunks ranked for any file view.
const MIN_CHUNKS: usize = 50;
/// Spans kept per file.
pub const SPANS_PER_FILE: usize = 3;
/// Each further chunk of a file counts this much less than the one before it.
const DECAY: f32 = 0.5;

/// One file of the file view: the `quarry search --files --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileHit {
    /// Path relative to the repository root.
    pub path: String,
    /// Language name.
    pub lang: String,
    /// Relevance; higher is better, comparable within one result list.
    pub score: f32,
    /// The file's best spans, best first (at most [`SPANS_PER_FILE`]).
    pub spans: Vec<FileSpan>,
    /// Whether the file is test code; only written when it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// One matching span of a [`FileHit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSpan {
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
    /// Qualified symbol, when the chunk has one.
    pub symbol: Option<String>,
    /// `function`, `method`, `class`, ...
    pub kind: String,
    /// The chunk's own score in the chunk ranking.
    pub score: f32,
}

impl Retriever {
    /// The best `k` files for the request, best first. Only code is ranked by file.
    pub fn search_files(&mut self, request: &SearchRequest) -> Result<Vec<FileHit>, SearchError> {
        check_k(request.k)?;
        if request.source != Source::Code {
            return Err(SearchError::FilesOfCommits);
        }
        let deeper = SearchRequest {
            k: (request.k * CHUNKS_PER_FILE).clamp(MIN_CHUNKS, MAX_K),
            ..request.clone()
        };
        let ranked = self.ranked(&deeper)?;
        Ok(rank_files(ranked, request.k))
    }
}

/// Groups a chunk ranking by file and ranks the files: a file scores the sum of its chunks'
/// scores, the `i`-th best weighted by `DECAY^i`.
pub(crate) fn rank_files(ranked: Vec<Ranked>, k: usize) -> Vec<FileHit> {
    let mut order: Vec<String> = Vec::new();
    let mut files: HashMap<String, FileHit> = HashMap::new();
    let mut counted: HashMap<String, i32> = HashMap::new();
    for hit in ranked {
        let chunk = hit.chunk;
        let seen = counted.entry(chunk.path.clone()).or_insert(0);
        let weight = DECAY.powi(*seen);
        *seen += 1;
        let test = chunk.is_test();
        let file = files.entry(chunk.path.clone()).or_insert_with(|| {
            order.push(chunk.path.clone());
            FileHit {
                path: chunk.path.clone(),
                lang: chunk.lang.clone(),
                score: 0.0,
                spans: Vec::new(),
                test,
            }
        });
        file.score += weight * hit.score.max(0.0);
        if file.spans.len() < SPANS_PER_FILE {
            file.spans.push(FileSpan {
                start_line: chunk.start_line,
                end_line: chunk.end_line,
                symbol: chunk.symbol,
                kind: chunk.kind.as_str().to_string(),
                score: hit.score,
            });
        }
    }
    let mut ranked: Vec<FileHit> = order
        .into_iter()
        .filter_map(|path| files.remove(&path))
        .collect();
    // Stable: equal scores keep the order of their best chunk.
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(k);
    for file in &mut ranked {
        file.score = round(file.score);
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Explain;
    use quarry_indexer::{Chunk, ChunkKind};

    fn ranked(path: &str, line: u32, score: f32) -> Ranked {
        Ranked {
            chunk: Chunk {
                id: format!("{path}:{line}"),
                path: path.to_string(),
                lang: "rust".to_string(),
                kind: ChunkKind::Function,
                symbol: Some(format!("f{line}")),
                signature: None,
                doc: None,
                context: None,
                start_line: line,
                end_line: line + 2,
                start_byte: 0,
                end_byte: 0,
                text: String::new(),
                graph: Default::default(),
            },
            score,
            explain: Explain::default(),
        }
    }

    #[test]
    fn many_good_chunks_outrank_one_slightly_better_chunk() {
        let hits = vec![
            ranked("one.rs", 1, 1.0),
            ranked("many.rs", 1, 0.9),
            ranked("many.rs", 10, 0.8),
            ranked("many.rs", 20, 0.7),
        ];
        let files = rank_files(hits, 10);
        assert_eq!(files[0].path, "many.rs");
        assert_eq!(files[1].path, "one.rs");
        // 0.9 + 0.8 / 2 + 0.7 / 4
        assert!((files[0].score - 1.475).abs() < 1e-3);
        assert_eq!(files[0].spans.len(), 3);
        assert_eq!(files[0].spans[0].start_line, 1);
    }

    #[test]
    fn spans_are_capped_and_k_files_are_kept() {
        let mut hits: Vec<Ranked> = (0..6).map(|i| ranked("a.rs", i * 10 + 1, 0.5)).collect();
        hits.push(ranked("b.rs", 1, 0.4));
        hits.push(ranked("c.rs", 1, 0.3));
        let files = rank_files(hits, 2);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].spans.len(), SPANS_PER_FILE);
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["a.rs", "b.rs"]
        );
    }
}
