//! Quarry's retriever: turns a query into the best chunks of an index.
//!
//! It owns what happens between the stores and the user: validating the request, asking the
//! keyword index (and, later, the vector store) for candidates, filtering them by language
//! and path, dropping hits that overlap a better one, and shaping the result into the
//! [`Hit`] contract that `quarry search --json` prints.

use std::path::PathBuf;

use globset::{GlobBuilder, GlobMatcher};
use quarry_indexer::keyword::{KeywordIndex, KeywordQuery};
use quarry_indexer::{IndexError, IndexLayout, lang};
use serde::Serialize;

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query has no words to search for.
    #[error("empty query; pass words or identifiers to search for")]
    EmptyQuery,
    /// `k` was zero.
    #[error("-k must be at least 1")]
    ZeroK,
    /// The path filter is not a valid glob.
    #[error("invalid --path glob `{glob}`: {reason}")]
    BadGlob {
        /// The glob as given.
        glob: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The language filter names no language Quarry knows.
    #[error("unknown language `{lang}`; known languages: {known}")]
    UnknownLanguage {
        /// The language as given.
        lang: String,
        /// The names accepted.
        known: String,
    },
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// A search request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Free text: words, identifiers, paths.
    pub query: String,
    /// Number of hits wanted.
    pub k: usize,
    /// Only this language (`rust`, `python`, `markdown`, ...).
    pub lang: Option<String>,
    /// Only paths matching this glob (`src/**`, `*.py`) or under this folder (`src/store`).
    pub path: Option<String>,
}

/// One search result: the `quarry search --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Path relative to the repository root.
    pub path: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
    /// Qualified symbol, when the chunk has one.
    pub symbol: Option<String>,
    /// `function`, `method`, `class`, `struct`, `module`, `section`, ...
    pub kind: String,
    /// Language name.
    pub lang: String,
    /// Relevance; higher is better, comparable within one result list.
    pub score: f32,
    /// The chunk's text.
    pub text: String,
}

/// A read-only handle on one index.
pub struct Retriever {
    layout: IndexLayout,
    keyword: KeywordIndex,
}

impl Retriever {
    /// Opens the index at `layout` for searching.
    pub fn open(layout: &IndexLayout) -> Result<Self, SearchError> {
        layout.check_readable()?;
        let keyword = KeywordIndex::open(&layout.keyword_dir(), &layout.dir)?;
        Ok(Retriever {
            layout: layout.clone(),
            keyword,
        })
    }

    /// The repository root this index covers.
    pub fn root(&self) -> &PathBuf {
        &self.layout.root
    }

    /// The best `k` chunks for the request, best first, none overlapping another.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, SearchError> {
        if request.query.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        if request.k == 0 {
            return Err(SearchError::ZeroK);
        }
        if let Some(lang) = &request.lang {
            check_language(lang)?;
        }
        let filter = request.path.as_deref().map(PathFilter::new).transpose()?;

        // Ask for more than k: overlapping and filtered-out hits are dropped afterwards.
        let mut limit = (request.k * 4).max(50);
        loop {
            let candidates = self.keyword.search(&KeywordQuery {
                text: &request.query,
                lang: request.lang.as_deref(),
                limit,
            })?;
            let exhausted = candidates.len() < limit;
            let mut hits: Vec<Hit> = Vec::with_capacity(request.k);
            for candidate in candidates {
                let chunk = candidate.chunk;
                if filter.as_ref().is_some_and(|f| !f.matches(&chunk.path)) {
                    continue;
                }
                let overlaps = hits.iter().any(|h| {
                    h.path == chunk.path
                        && h.start_line <= chunk.end_line
                        && chunk.start_line <= h.end_line
                });
                if overlaps {
                    continue;
                }
                hits.push(Hit {
                    path: chunk.path,
                    start_line: chunk.start_line,
                    end_line: chunk.end_line,
                    symbol: chunk.symbol,
                    kind: chunk.kind.as_str().to_string(),
                    lang: chunk.lang,
                    score: (candidate.score * 1000.0).round() / 1000.0,
                    text: chunk.text,
                });
                if hits.len() == request.k {
                    break;
                }
            }
            if hits.len() == request.k || exhausted || limit >= MAX_CANDIDATES {
                return Ok(hits);
            }
            limit = (limit * 4).min(MAX_CANDIDATES);
        }
    }
}

/// Most candidates fetched while looking for `k` hits that pass the filters.
const MAX_CANDIDATES: usize = 20_000;

fn check_language(lang: &str) -> Result<(), SearchError> {
    if lang::all_language_names().any(|known| known == lang) {
        return Ok(());
    }
    Err(SearchError::UnknownLanguage {
        lang: lang.to_string(),
        known: lang::all_language_names().collect::<Vec<_>>().join(", "),
    })
}

/// A `--path` filter: a glob when it has glob characters, else a file or folder prefix.
enum PathFilter {
    Glob(GlobMatcher),
    Prefix(String),
}

impl PathFilter {
    fn new(pattern: &str) -> Result<Self, SearchError> {
        let pattern = pattern.trim_start_matches("./");
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(PathFilter::Prefix(
                pattern.trim_end_matches('/').to_string(),
            ));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|e| SearchError::BadGlob {
                glob: pattern.to_string(),
                reason: e.kind().to_string(),
            })?;
        Ok(PathFilter::Glob(glob.compile_matcher()))
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathFilter::Glob(glob) => glob.is_match(path),
            PathFilter::Prefix(prefix) => {
                prefix.is_empty()
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_filters() {
        let glob = PathFilter::new("*.py").unwrap();
        assert!(glob.matches("notes/cli.py"));
        assert!(!glob.matches("src/lib.rs"));
        let folder = PathFilter::new("src/store/").unwrap();
        assert!(folder.matches("src/store/mod.rs"));
        assert!(!folder.matches("src/storefront.rs"));
        let under = PathFilter::new("src/**").unwrap();
        assert!(under.matches("src/a/b.rs"));
        assert!(matches!(
            PathFilter::new("src/[a"),
            Err(SearchError::BadGlob { .. })
        ));
    }

    #[test]
    fn language_names_are_checked() {
        assert!(check_language("rust").is_ok());
        assert!(check_language("markdown").is_ok());
        assert!(matches!(
            check_language("rsut"),
            Err(SearchError::UnknownLanguage { .. })
        ));
    }
}
