//! Candidates from a team index: one store query per search.
//!
//! Hybrid mode is a single request (dense and BM25 prefetches fused by reciprocal rank in
//! the store), keyword mode a BM25 query, vector mode a dense one. The hits carry their
//! chunks, so nothing else is read. What follows is the local path's: the exact-definition
//! lift, the path filter, overlap removal.

use std::collections::HashMap;

use quarry_indexer::Chunk;
use quarry_indexer::embed::Embedder;
use quarry_indexer::sync::VectorModel;
use quarry_indexer::team::sync::team_meta;
use quarry_indexer::team::{TeamMeta, TeamStore};
use quarry_indexer::vector::sparse::encode_query;
use quarry_indexer::vector::{StoreQuery, VectorFilter};

use crate::filter::PathFilter;
use crate::fusion::{self, FusionWeights};
use crate::{MAX_CANDIDATES, Mode, Ranked, SearchError, SearchRequest, select};

/// A team store opened for reading, with its meta.
pub(crate) struct TeamIndex {
    store: Box<dyn TeamStore>,
    meta: TeamMeta,
}

impl TeamIndex {
    /// Opens the index in `store`; a store without one is [`SearchError::NoTeamIndex`].
    pub(crate) fn open(store: Box<dyn TeamStore>) -> Result<Self, SearchError> {
        let meta = team_meta(store.as_ref())?;
        match meta {
            Some(meta) => Ok(TeamIndex { store, meta }),
            None => Err(SearchError::NoTeamIndex(store.location())),
        }
    }

    /// The store.
    pub(crate) fn store(&self) -> &dyn TeamStore {
        self.store.as_ref()
    }

    /// The model of the index's vectors.
    pub(crate) fn model(&self) -> VectorModel {
        VectorModel {
            model_id: self.meta.model_id.clone(),
            dims: self.meta.dims,
        }
    }

    /// The best chunks for `request`, best first.
    pub(crate) fn ranked(
        &self,
        request: &SearchRequest,
        filter: Option<&PathFilter>,
        embedder: Option<&mut Box<dyn Embedder>>,
        weights: &FusionWeights,
    ) -> Result<Vec<Ranked>, SearchError> {
        let dense = match (request.mode, embedder) {
            (Mode::Keyword, _) => None,
            (_, Some(embedder)) => embedder
                .embed(&[request.query.as_str()])
                .map_err(|e| SearchError::Embed(e.to_string()))?
                .pop(),
            (Mode::Vector, None) => {
                return Err(SearchError::NoEmbedder("none was loaded".to_string()));
            }
            (Mode::Hybrid, None) => None,
        };
        let sparse = encode_query(&request.query);
        let query = match (&dense, request.mode) {
            (Some(dense), Mode::Hybrid) if !sparse.is_empty() => StoreQuery::Hybrid {
                dense,
                sparse: &sparse,
            },
            (Some(dense), _) => StoreQuery::Dense(dense),
            (None, _) if sparse.is_empty() => return Ok(Vec::new()),
            (None, _) => StoreQuery::Sparse(&sparse),
        };
        let store_filter = VectorFilter {
            lang: request.lang.clone(),
            kind: request.kind.clone(),
        };
        let mut limit = (request.k * 4).max(50);
        loop {
            let hits = self.store.query(query, &store_filter, limit)?;
            let exhausted = hits.len() < limit;
            let mut chunks: HashMap<String, Chunk> = HashMap::with_capacity(hits.len());
            let mut ranking: Vec<(String, f32)> = Vec::with_capacity(hits.len());
            for hit in hits {
                if let Some(chunk) = hit.chunk {
                    ranking.push((hit.chunk_id.clone(), hit.score));
                    chunks.insert(hit.chunk_id, chunk);
                }
            }
            // One ranking: its scores are kept, and a bare identifier still lifts its
            // definitions to the top.
            let (keyword, vector) = match query {
                StoreQuery::Sparse(_) => (ranking, Vec::new()),
                _ => (Vec::new(), ranking),
            };
            let mut fused = fusion::fuse(&keyword, &vector, weights, &request.query, &chunks);
            if matches!(query, StoreQuery::Hybrid { .. }) {
                // The store fused both rankings; the per-retriever ranks are not known here.
                for candidate in &mut fused {
                    candidate.explain.vector_rank = None;
                    candidate.explain.vector_score = None;
                }
            }
            let selected = select(fused, &chunks, filter, request.k);
            if selected.len() == request.k || exhausted || limit >= MAX_CANDIDATES {
                return Ok(selected);
            }
            limit = (limit * 4).min(MAX_CANDIDATES);
        }
    }

    /// The `limit` best chunks in `lang` for `text` by BM25 alone.
    pub(crate) fn keyword_chunks(
        &self,
        text: &str,
        lang: &str,
        limit: usize,
    ) -> Result<Vec<Chunk>, SearchError> {
        let sparse = encode_query(text);
        if sparse.is_empty() {
            return Ok(Vec::new());
        }
        let filter = VectorFilter {
            lang: Some(lang.to_string()),
            kind: None,
        };
        let hits = self
            .store
            .query(StoreQuery::Sparse(&sparse), &filter, limit)?;
        Ok(hits.into_iter().filter_map(|hit| hit.chunk).collect())
    }
}
