//! Quarry's retriever: turns a query into the best chunks of an index.
//!
//! It owns what happens between the stores and the user: validating the request, asking the
//! keyword index (BM25) and the vector store (nearest embeddings) for candidates, fusing the
//! two rankings with reciprocal rank fusion, filtering by language, kind and path, dropping
//! hits that overlap a better one, and shaping the result into the [`Hit`] contract that
//! `quarry search --json` prints.
//!
//! The index is either local (tantivy beside a Qdrant Edge shard under `.quarry/`) or a team
//! index in one shared store ([`Retriever::open_team`]), where BM25 is a sparse vector and
//! hybrid retrieval is one store query fused on the server. Both are a [`source`] of
//! candidates; everything after the candidates (the candidate loop, filters,
//! de-duplication, the exact-definition lift, packing, the repository map) is written once.

mod cross_rank;
mod file_view;
mod filter;
mod fusion;
pub mod graph;
mod history;
mod items;
mod map;
pub mod open;
pub mod pack;
mod rank;
pub mod settings;
mod source;
mod team;

use std::collections::HashMap;
use std::str::FromStr;

use quarry_indexer::config::Environment;
use quarry_indexer::embed::{Embedder, VectorModel};
use quarry_indexer::team::{TeamLocation, TeamStore};
use quarry_indexer::{Chunk, ChunkKind, IndexError, IndexLayout, lang};
use serde::{Deserialize, Serialize};

pub use file_view::{FileHit, FileSpan, SPANS_PER_FILE};
pub use fusion::{FusionProfile, FusionWeights, QueryClass};
pub use graph::{GraphAnswer, GraphRequest, Lookup, SiteHit, Target};
pub use open::{Fallback, IndexOwner, Reader, open_reader, open_team_reader};
pub use pack::{ContextItem, ContextPack, ContextRole};
pub use rank::{RERANKED, RankSignals};

use filter::ChunkFilter;
use source::{CandidateSource, LocalSource};

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query has no words to search for.
    #[error("empty query; pass words or identifiers to search for")]
    EmptyQuery,
    /// `k` was zero or beyond [`MAX_K`].
    #[error("-k must be at least 1 and at most {MAX_K} (got {0})")]
    BadK(usize),
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
    /// The kind filter names no chunk kind.
    #[error("unknown kind `{kind}`; known kinds: {known}")]
    UnknownKind {
        /// The kind as given.
        kind: String,
        /// The names accepted.
        known: String,
    },
    /// Vector search was asked while another process writes the index.
    #[error(
        "the index at {index_dir} is being written by another quarry process; vector search is available when it finishes (or use --mode keyword)"
    )]
    Busy {
        /// The index directory.
        index_dir: String,
    },
    /// A first index is being built and has not committed anything searchable yet.
    #[error(
        "the first index at {index_dir} is being built{progress}; keyword search works as soon as its keyword phase commits, in seconds"
    )]
    FirstIndexRunning {
        /// The index directory.
        index_dir: String,
        /// ` (keyword phase: 120 of 3,000 files)`, when the writer said.
        progress: String,
    },
    /// Vector search was asked of an index without vectors.
    #[error(
        "the index at {index_dir} has no vectors; run `quarry index` without --keyword-only, or search with --mode keyword"
    )]
    NoVectors {
        /// The index directory.
        index_dir: String,
    },
    /// Vector search needs an embedder and none was given.
    #[error("vector search needs the embedding model; {0}")]
    NoEmbedder(String),
    /// The query embedder is not the model the index was built with.
    #[error(
        "the index was embedded with {indexed}, but the current model is {current}; run `quarry index` to re-embed"
    )]
    ModelMismatch {
        /// The index's model.
        indexed: String,
        /// The embedder's model.
        current: String,
    },
    /// Embedding the query failed.
    #[error("{0}")]
    Embed(String),
    /// Commits were asked of an index without history.
    #[error(
        "no git history is indexed for {root}: it is not a git repository, its history is off (`quarry index --history-depth N`), or run `quarry index`"
    )]
    NoHistory {
        /// The repository.
        root: String,
    },
    /// The team store holds no index yet.
    #[error(
        "no team index in collection `{}` at {} ({}); run `quarry index` against it first (usually from CI)",
        .0.collection, .0.address, .0.backend
    )]
    NoTeamIndex(TeamLocation),
    /// The file view was asked of commits.
    #[error("--files ranks files of code; it cannot be combined with --source commits or all")]
    FilesOfCommits,
    /// `*` (every definition) was asked without a path filter.
    #[error("`*` lists every definition of the files --path selects; give --path (a file or glob)")]
    WholeFilesNeedPath,
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// The most hits one search returns: candidate lists, fusion and packing are sized by `k`,
/// so it is bounded before anything is allocated for it.
pub const MAX_K: usize = 1000;

/// Refuses a `k` of zero or over [`MAX_K`].
pub fn check_k(k: usize) -> Result<(), SearchError> {
    if k == 0 || k > MAX_K {
        return Err(SearchError::BadK(k));
    }
    Ok(())
}

/// Which retrievers answer a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 and vectors, fused.
    #[default]
    Hybrid,
    /// Nearest embeddings only.
    Vector,
    /// BM25 only.
    Keyword,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hybrid" => Ok(Mode::Hybrid),
            "vector" => Ok(Mode::Vector),
            "keyword" => Ok(Mode::Keyword),
            other => Err(format!(
                "unknown mode `{other}`; use hybrid, vector or keyword"
            )),
        }
    }
}

/// What a search looks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The code (the default).
    #[default]
    Code,
    /// The commit history: messages and changed paths.
    Commits,
    /// Both, fused by rank.
    All,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "code" => Ok(Source::Code),
            "commits" => Ok(Source::Commits),
            "all" => Ok(Source::All),
            other => Err(format!(
                "unknown source `{other}`; use code, commits or all"
            )),
        }
    }
}

/// Whether a search keeps test code (see [`quarry_indexer::lang::is_test_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestScope {
    /// Tests and the rest alike (the default).
    #[default]
    Include,
    /// No test code.
    Exclude,
    /// Test code only.
    Only,
}

impl TestScope {
    /// Whether a chunk that is (or is not) test code passes.
    pub fn keeps(self, is_test: bool) -> bool {
        match self {
            TestScope::Include => true,
            TestScope::Exclude => !is_test,
            TestScope::Only => is_test,
        }
    }
}

impl FromStr for TestScope {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "include" => Ok(TestScope::Include),
            "exclude" => Ok(TestScope::Exclude),
            "only" => Ok(TestScope::Only),
            other => Err(format!(
                "unknown test scope `{other}`; use include, exclude or only"
            )),
        }
    }
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Free text: words, identifiers, paths.
    pub query: String,
    /// Number of hits wanted.
    pub k: usize,
    /// Only this language (`rust`, `python`, `markdown`, ...).
    pub lang: Option<String>,
    /// Only this kind (`function`, `method`, `class`, ...).
    pub kind: Option<String>,
    /// Only paths matching this glob (`src/**`, `*.py`) or under this folder (`src/store`).
    pub path: Option<String>,
    /// Which retrievers to use.
    pub mode: Mode,
    /// Report each hit's rank in each retriever.
    pub explain: bool,
    /// Code, commits or both.
    #[serde(default)]
    pub source: Source,
    /// Whether test code is kept, dropped or the only code kept.
    #[serde(default)]
    pub tests: TestScope,
}

impl SearchRequest {
    /// A hybrid request for `query` with `k` hits and no filters.
    pub fn new(query: &str, k: usize) -> Self {
        SearchRequest {
            query: query.to_string(),
            k,
            lang: None,
            kind: None,
            path: None,
            mode: Mode::Hybrid,
            explain: false,
            source: Source::Code,
            tests: TestScope::Include,
        }
    }
}

/// One search result: the `quarry search --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Where the hit came from, with `--explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
    /// A commit hit's full id (its `path` is empty and its lines 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// A commit hit's author date (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The paths a commit hit changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Whether the hit is test code (a test file's, or a Rust `tests` module's); only
    /// written when it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// A hit's rank (1-based) and raw score in each retriever that found it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// Rank among BM25 candidates.
    pub keyword_rank: Option<usize>,
    /// BM25 score.
    pub keyword_score: Option<f32>,
    /// Rank among vector candidates.
    pub vector_rank: Option<usize>,
    /// Cosine similarity.
    pub vector_score: Option<f32>,
    /// Whether the hit was lifted to the top as the exact definition of the queried identifier.
    pub exact_symbol: bool,
}

/// A read-only handle on one index.
pub struct Retriever {
    layout: IndexLayout,
    code: Box<dyn CandidateSource>,
    embedder: Option<Box<dyn Embedder>>,
    fusion: FusionProfile,
    signals: RankSignals,
    /// The optional cross-encoder after the signals (`[search] reranker`).
    cross: cross_rank::CrossStage,
    /// The commit stores, opened on the first search of commits.
    commits: Option<history::CommitStores>,
}

impl Retriever {
    /// Opens the index at `layout` for searching.
    pub fn open(layout: &IndexLayout) -> Result<Self, SearchError> {
        let code = LocalSource::open(layout)?;
        Ok(Self::over(layout, Box::new(code)))
    }

    /// Opens the team index in `store` for searching; `layout` is the local checkout (its
    /// git history, if indexed locally, still answers commit searches).
    pub fn open_team(layout: &IndexLayout, store: Box<dyn TeamStore>) -> Result<Self, SearchError> {
        let code = team::TeamSource::open(store)?;
        Ok(Self::over(layout, Box::new(code)))
    }

    fn over(layout: &IndexLayout, code: Box<dyn CandidateSource>) -> Self {
        Retriever {
            layout: layout.clone(),
            code,
            embedder: None,
            fusion: FusionProfile::default(),
            signals: RankSignals::default(),
            cross: cross_rank::CrossStage::configured(
                settings::SearchSettings::load_lenient(&Environment::from_process(Some(
                    &layout.root,
                )))
                .reranker
                .map(|r| r.value),
            ),
            commits: None,
        }
    }

    /// The team store this retriever reads, when it reads one.
    pub fn team_store(&self) -> Option<&dyn TeamStore> {
        self.code.team_store()
    }

    /// The model the index's vectors were made with, if it has vectors.
    pub fn vector_model(&self) -> Option<VectorModel> {
        self.code.vector_model()
    }

    /// Whether another process is writing the index right now. Its vector shard is then
    /// opened only between the writer's commits (`layout::ShardLock`), and the git history's
    /// vectors not at all. A process that holds the lock itself (the daemon) searches between
    /// its own writes. A team store takes readers while it is written.
    pub fn writer_active(&self) -> bool {
        self.code.writer_active()
    }

    /// Enables vector search with the embedder for queries; it must be the index's model.
    /// Fails with [`SearchError::Busy`] when a sync in another process holds the vector
    /// shard for longer than a search waits.
    pub fn with_embedder(mut self, embedder: Box<dyn Embedder>) -> Result<Self, SearchError> {
        let model = self.vector_model().ok_or_else(|| SearchError::NoVectors {
            index_dir: self.layout.dir.display().to_string(),
        })?;
        if model.model_id != embedder.model_id() {
            return Err(SearchError::ModelMismatch {
                indexed: model.model_id,
                current: embedder.model_id().to_string(),
            });
        }
        if !self.code.vectors_ready() {
            self.code.enable_vectors()?;
        }
        self.embedder = Some(embedder);
        Ok(self)
    }

    /// Opens the vector store ahead of [`Retriever::with_embedder`] (which opens it itself
    /// otherwise), so it can open while the model loads. Fails like `with_embedder` when the
    /// index has no vectors or another process holds them.
    pub fn with_vectors(mut self) -> Result<Self, SearchError> {
        if self.vector_model().is_none() {
            return Err(SearchError::NoVectors {
                index_dir: self.layout.dir.display().to_string(),
            });
        }
        if !self.code.vectors_ready() {
            self.code.enable_vectors()?;
        }
        Ok(self)
    }

    /// Sets the fusion weights per query class.
    pub fn with_fusion(mut self, fusion: FusionProfile) -> Self {
        self.fusion = fusion;
        self
    }

    /// Sets the ranking stage's signal weights ([`RankSignals::NONE`] keeps the fused order).
    pub fn with_signals(mut self, signals: RankSignals) -> Self {
        self.signals = signals;
        self
    }

    /// Why the configured reranker (`[search] reranker`) is not used, once a search found
    /// out: searches then rank by the signals alone.
    pub fn reranker_note(&self) -> Option<&str> {
        self.cross.unavailable()
    }

    /// The best `k` chunks (or commits) for the request, best first, none overlapping
    /// another.
    pub fn search(&mut self, request: &SearchRequest) -> Result<Vec<Hit>, SearchError> {
        let ranked = match request.source {
            Source::Code => self.ranked(request)?,
            Source::Commits => self.ranked_commits(request)?,
            Source::All => {
                let code = self.ranked(request)?;
                let commits = self.ranked_commits(request)?;
                history::fuse_sources(code, commits, request.k)
            }
        };
        Ok(ranked
            .into_iter()
            .map(|r| {
                let commit = quarry_indexer::history::commit_fields(&r.chunk);
                let is_commit = commit.is_some();
                let (commit, date, paths) = match commit {
                    Some((id, date, paths)) => (Some(id), Some(date), Some(paths)),
                    None => (None, None, None),
                };
                let test = !is_commit && r.chunk.is_test();
                Hit {
                    path: if is_commit {
                        String::new()
                    } else {
                        r.chunk.path
                    },
                    start_line: r.chunk.start_line,
                    end_line: r.chunk.end_line,
                    symbol: r.chunk.symbol,
                    kind: r.chunk.kind.as_str().to_string(),
                    lang: r.chunk.lang,
                    score: round(r.score),
                    text: r.chunk.text,
                    explain: request.explain.then_some(r.explain),
                    commit,
                    date,
                    paths,
                    test,
                }
            })
            .collect())
    }

    /// The best commits for the request.
    fn ranked_commits(&mut self, request: &SearchRequest) -> Result<Vec<Ranked>, SearchError> {
        if request.query.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        check_k(request.k)?;
        let model = self.embedder.as_ref().map(|e| e.model_id().to_string());
        if self.commits.is_none() {
            let busy = self.writer_active();
            self.commits = Some(history::CommitStores::open(
                &self.layout,
                model.as_deref(),
                busy,
            )?);
        }
        let wants_vector = request.mode != Mode::Keyword
            && self
                .commits
                .as_ref()
                .is_some_and(|c| c.state().embed_model.is_some() && c.state().embed_model == model);
        let query_vector = match (&mut self.embedder, wants_vector) {
            (Some(embedder), true) => embedder
                .embed(&[request.query.as_str()])
                .map_err(|e| SearchError::Embed(e.to_string()))?
                .pop(),
            _ => None,
        };
        match &self.commits {
            // Commit rankings keep plain 1:1 fusion: the learned weights are for code.
            Some(commits) => {
                commits.ranked(request, query_vector.as_deref(), &FusionWeights::default())
            }
            None => Ok(Vec::new()),
        }
    }

    /// The chunks behind [`Retriever::search`], whole (with signature, doc and enclosing
    /// headers), for callers that build prompts rather than print hits.
    pub(crate) fn ranked(&mut self, request: &SearchRequest) -> Result<Vec<Ranked>, SearchError> {
        if request.query.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        check_k(request.k)?;
        if let Some(lang) = &request.lang {
            check_language(lang)?;
        }
        if let Some(kind) = &request.kind {
            check_kind(kind)?;
        }
        let filter = ChunkFilter::new(request)?;
        let use_vectors = match request.mode {
            Mode::Keyword => false,
            Mode::Vector => true,
            Mode::Hybrid => self.embedder.is_some() && self.code.vectors_ready(),
        };
        let query_vector = match (&mut self.embedder, use_vectors) {
            (_, false) => None,
            (Some(embedder), true) if self.code.vectors_ready() => embedder
                .embed(&[request.query.as_str()])
                .map_err(|e| SearchError::Embed(e.to_string()))?
                .pop(),
            (_, true) => {
                return Err(match self.code.vector_model() {
                    None => SearchError::NoVectors {
                        index_dir: self.layout.dir.display().to_string(),
                    },
                    Some(_) => SearchError::NoEmbedder("none was loaded".to_string()),
                });
            }
        };

        // Ask for more than k: filtered and overlapping hits drop out later.
        let mut limit = (request.k * 4).max(50);
        loop {
            let found = self.code.candidates(&source::CandidateQuery {
                request,
                vector: query_vector.as_deref(),
                filter: &filter,
                limit,
            })?;
            let mut fused = fusion::fuse(
                &found.keyword,
                &found.vector,
                self.fusion.for_query(&request.query),
                &request.query,
                &found.chunks,
            );
            if found.fused_by_store {
                // The store fused both rankings; the per-retriever ranks are not known here.
                for candidate in &mut fused {
                    candidate.explain.vector_rank = None;
                    candidate.explain.vector_score = None;
                }
            }
            // The ranking stage re-orders fused rankings, the ones its weights were learned
            // on; a single retriever's ranking keeps its own order.
            if found.fused_by_store || !(found.keyword.is_empty() || found.vector.is_empty()) {
                rank::rerank(&mut fused, &found.chunks, &request.query, &self.signals);
                self.cross
                    .rerank(&mut fused, &found.chunks, &filter, &request.query);
            }
            let mut items = items::Items::new(self.code.as_ref());
            let hits = select(fused, &found.chunks, &filter, request.k, &mut items)?;
            if hits.len() == request.k || found.exhausted || limit >= MAX_CANDIDATES {
                return Ok(hits);
            }
            limit = (limit * 4).min(MAX_CANDIDATES);
        }
    }
}

/// The first `k` fused candidates that pass the filter and overlap no better one, each
/// window of a long item widened to the item (`items.rs`).
pub(crate) fn select(
    fused: Vec<fusion::Fused>,
    chunks: &HashMap<String, Chunk>,
    filter: &ChunkFilter,
    k: usize,
    items: &mut items::Items<'_>,
) -> Result<Vec<Ranked>, SearchError> {
    let mut hits: Vec<Ranked> = Vec::with_capacity(k);
    for candidate in fused {
        let Some(chunk) = chunks.get(&candidate.id) else {
            continue; // a vector whose chunk is gone: never shown
        };
        if !filter.keeps(chunk) {
            continue;
        }
        if hits.iter().any(|h| overlapping(&h.chunk, chunk)) {
            continue;
        }
        let chunk = items.whole(chunk)?;
        if hits.iter().any(|h| overlapping(&h.chunk, &chunk)) {
            continue;
        }
        // Raw scores are shown rounded too: a one-shot and a resident process embed with
        // differently optimised graphs whose cosines differ in the seventh digit.
        let mut explain = candidate.explain;
        explain.keyword_score = explain.keyword_score.map(round);
        explain.vector_score = explain.vector_score.map(round);
        hits.push(Ranked {
            chunk,
            score: round(candidate.score),
            explain,
        });
        if hits.len() == k {
            break;
        }
    }
    // A lifted exact definition can outrank hits with higher fused scores; its score is
    // raised to theirs so `score` never increases down the list (`--explain` keeps the raw
    // scores).
    for i in (0..hits.len().saturating_sub(1)).rev() {
        if hits[i].score < hits[i + 1].score {
            hits[i].score = hits[i + 1].score;
        }
    }
    Ok(hits)
}

/// One ranked chunk, before it is shaped into a [`Hit`].
pub(crate) struct Ranked {
    pub(crate) chunk: Chunk,
    pub(crate) score: f32,
    pub(crate) explain: Explain,
}

/// Whether two chunks share a line of the same file.
pub(crate) fn overlapping(a: &Chunk, b: &Chunk) -> bool {
    a.path == b.path && a.start_line <= b.end_line && b.start_line <= a.end_line
}

/// Most candidates fetched from each retriever while looking for `k` hits that pass filters.
pub(crate) const MAX_CANDIDATES: usize = 20_000;

/// Scores keep four significant decimals: enough to order, stable to print.
pub(crate) fn round(score: f32) -> f32 {
    if score.abs() >= 1.0 {
        (score * 1000.0).round() / 1000.0
    } else {
        (score * 100_000.0).round() / 100_000.0
    }
}

pub(crate) fn check_language(lang: &str) -> Result<(), SearchError> {
    if lang::all_language_names().any(|known| known == lang) {
        return Ok(());
    }
    Err(SearchError::UnknownLanguage {
        lang: lang.to_string(),
        known: lang::all_language_names().collect::<Vec<_>>().join(", "),
    })
}

fn check_kind(kind: &str) -> Result<(), SearchError> {
    if ChunkKind::OF_FILES.iter().any(|k| k.as_str() == kind) {
        return Ok(());
    }
    Err(SearchError::UnknownKind {
        kind: kind.to_string(),
        known: ChunkKind::OF_FILES.map(|k| k.as_str()).join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_and_kind_names_are_checked() {
        assert!(check_language("rust").is_ok());
        assert!(check_language("markdown").is_ok());
        assert!(matches!(
            check_language("rsut"),
            Err(SearchError::UnknownLanguage { .. })
        ));
        assert!(check_kind("method").is_ok());
        assert!(matches!(
            check_kind("methods"),
            Err(SearchError::UnknownKind { .. })
        ));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("vector".parse::<Mode>(), Ok(Mode::Vector));
        assert!("semantic".parse::<Mode>().is_err());
    }
}
