//! Searching the commit history: the `commits` and `all` sources of a search.
//!
//! Commits live in their own keyword and vector stores (see the indexer's `history`
//! module). They are ranked like code (BM25 and nearest vectors, fused by reciprocal rank),
//! a `--path` filter keeps commits that changed a matching path, and for `all` the code and
//! commit rankings are fused again by rank, so neither side's raw scores dominate.

use quarry_indexer::IndexLayout;
use quarry_indexer::history::{self, HistoryState};
use quarry_indexer::keyword::KeywordIndex;
use quarry_indexer::vector::edge::EdgeVectorStore;

use crate::filter::{ChunkFilter, PathFilter};
use crate::fusion::{self, FusionWeights};
use crate::source::{CandidateQuery, CandidateSource, LocalSource};
use crate::{Mode, Ranked, SearchError, SearchRequest};

/// The commit stores of one index, opened for reading: a [`LocalSource`] over the history's
/// keyword index and vectors.
pub(crate) struct CommitStores {
    source: LocalSource,
    state: HistoryState,
}

impl CommitStores {
    /// Opens the commit stores; vectors only when they were made with `model` and no
    /// other process is writing.
    pub(crate) fn open(
        layout: &IndexLayout,
        model: Option<&str>,
        writer_busy: bool,
    ) -> Result<Self, SearchError> {
        let no_history = || SearchError::NoHistory {
            root: layout.root.display().to_string(),
        };
        let state = history::load_state(layout).ok_or_else(no_history)?;
        if !history::keyword_dir(layout).join("meta.json").is_file() {
            return Err(no_history());
        }
        let keyword = KeywordIndex::open(&history::keyword_dir(layout), &layout.dir)?;
        let vectors = match (model, &state.embed_model) {
            (Some(model), Some(indexed)) if model == indexed && !writer_busy => Some(
                EdgeVectorStore::open(&history::vector_dir(layout), &layout.dir)?,
            ),
            _ => None,
        };
        Ok(CommitStores {
            source: LocalSource::over(layout, keyword, vectors),
            state,
        })
    }

    /// What the index holds.
    pub(crate) fn state(&self) -> &HistoryState {
        &self.state
    }

    /// The best commits for `request`, best first.
    pub(crate) fn ranked(
        &self,
        request: &SearchRequest,
        query_vector: Option<&[f32]>,
        weights: &FusionWeights,
    ) -> Result<Vec<Ranked>, SearchError> {
        let filter = request.path.as_deref().map(PathFilter::new).transpose()?;
        // A path filter drops commits after ranking: ask for more then.
        let limit = if filter.is_some() {
            500
        } else {
            (request.k * 4).max(50)
        };
        let vector = query_vector.filter(|_| request.mode != Mode::Keyword);
        let found = self.source.candidates(&CandidateQuery {
            request: &SearchRequest {
                lang: None,
                kind: None,
                ..request.clone()
            },
            vector,
            filter: &ChunkFilter::none(),
            limit,
        })?;
        let chunks = found.chunks;
        let fused = fusion::fuse(
            &found.keyword,
            &found.vector,
            weights,
            &request.query,
            &chunks,
        );
        let mut hits = Vec::new();
        for candidate in fused {
            let Some(chunk) = chunks.get(&candidate.id) else {
                continue;
            };
            if let Some(filter) = &filter {
                let paths = chunk.context.as_deref().unwrap_or("");
                if !paths.lines().any(|p| filter.matches(p)) {
                    continue;
                }
            }
            hits.push(Ranked {
                chunk: chunk.clone(),
                score: candidate.score,
                explain: candidate.explain,
            });
            if hits.len() == request.k {
                break;
            }
        }
        Ok(hits)
    }
}

/// Code and commit rankings fused by rank (k = 60), best first, `k` in all.
pub(crate) fn fuse_sources(code: Vec<Ranked>, commits: Vec<Ranked>, k: usize) -> Vec<Ranked> {
    let mut all: Vec<(f32, Ranked)> = Vec::new();
    for list in [code, commits] {
        for (rank, mut ranked) in list.into_iter().enumerate() {
            let score = 1.0 / (60.0 + rank as f32 + 1.0);
            ranked.score = score;
            all.push((score, ranked));
        }
    }
    // Stable: at equal rank, code comes first.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter().take(k).map(|(_, r)| r).collect()
}
