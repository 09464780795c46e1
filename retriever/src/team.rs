//! Candidates from a team index: one store query per round.
//!
//! Hybrid mode is a single request (dense and BM25 prefetches fused by reciprocal rank in
//! the store), keyword mode a BM25 query, vector mode a dense one. The hits carry their
//! chunks, so nothing else is read; the repository map comes from the store's ledger.

use std::collections::{BTreeMap, HashMap};

use quarry_indexer::Chunk;
use quarry_indexer::embed::VectorModel;
use quarry_indexer::graph::NameRole;
use quarry_indexer::team::{TeamMeta, TeamStore, team_files, team_meta};
use quarry_indexer::vector::sparse::encode_query;
use quarry_indexer::vector::{StoreQuery, VectorFilter};

use crate::source::{CandidateQuery, CandidateSource, Candidates, KEYWORD_CHUNKS};
use crate::{Mode, SearchError};

/// A team store opened for reading, with its meta.
pub(crate) struct TeamSource {
    store: Box<dyn TeamStore>,
    meta: TeamMeta,
}

impl TeamSource {
    /// Opens the index in `store`; a store without one is [`SearchError::NoTeamIndex`].
    pub(crate) fn open(store: Box<dyn TeamStore>) -> Result<Self, SearchError> {
        let meta = team_meta(store.as_ref())?;
        match meta {
            Some(meta) => Ok(TeamSource { store, meta }),
            None => Err(SearchError::NoTeamIndex(store.location())),
        }
    }
}

impl CandidateSource for TeamSource {
    fn vector_model(&self) -> Option<VectorModel> {
        Some(VectorModel {
            model_id: self.meta.model_id.clone(),
            dims: self.meta.dims,
        })
    }

    fn enable_vectors(&mut self) -> Result<(), SearchError> {
        Ok(())
    }

    fn vectors_ready(&self) -> bool {
        true
    }

    /// A team store takes readers while it is written.
    fn writer_active(&self) -> bool {
        false
    }

    fn candidates(&self, asked: &CandidateQuery<'_>) -> Result<Candidates, SearchError> {
        let (request, limit) = (asked.request, asked.limit);
        let sparse = encode_query(&request.query);
        let query = match (asked.vector, request.mode) {
            (Some(dense), Mode::Hybrid) if !sparse.is_empty() => StoreQuery::Hybrid {
                dense,
                sparse: &sparse,
            },
            (Some(dense), _) => StoreQuery::Dense(dense),
            (None, _) if sparse.is_empty() => {
                return Ok(Candidates {
                    exhausted: true,
                    ..Candidates::default()
                });
            }
            (None, _) => StoreQuery::Sparse(&sparse),
        };
        let store_filter = VectorFilter {
            lang: request.lang.clone(),
            kind: request.kind.clone(),
        };
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
        Ok(Candidates {
            keyword,
            vector,
            chunks,
            exhausted,
            fused_by_store: matches!(query, StoreQuery::Hybrid { .. }),
        })
    }

    fn keyword_chunks(&self, text: &str, lang: &str) -> Result<Vec<Chunk>, SearchError> {
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
            .query(StoreQuery::Sparse(&sparse), &filter, KEYWORD_CHUNKS)?;
        Ok(hits.into_iter().filter_map(|hit| hit.chunk).collect())
    }

    fn files(&self) -> Result<BTreeMap<String, Vec<String>>, SearchError> {
        Ok(team_files(self.store.as_ref())?
            .into_iter()
            .map(|(path, entry)| (path, entry.chunks))
            .collect())
    }

    fn chunks_by_id(&self, ids: &[String]) -> Result<HashMap<String, Chunk>, SearchError> {
        Ok(self
            .store
            .points_by_id(ids)?
            .into_iter()
            .filter_map(|hit| hit.chunk.map(|chunk| (hit.chunk_id, chunk)))
            .collect())
    }

    fn chunks_naming(&self, role: NameRole, names: &[String]) -> Result<Vec<Chunk>, SearchError> {
        Ok(self
            .store
            .points_naming(role, names)?
            .into_iter()
            .filter_map(|hit| hit.chunk)
            .collect())
    }

    fn team_store(&self) -> Option<&dyn TeamStore> {
        Some(self.store.as_ref())
    }
}
