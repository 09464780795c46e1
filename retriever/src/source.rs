//! Where a retriever's code candidates come from: the [`CandidateSource`] seam.
//!
//! Two implementations: [`LocalSource`] (the tantivy keyword index beside a Qdrant Edge
//! shard under `.quarry/`) and [`crate::team::TeamSource`] (one team store, whose hits carry
//! their chunks and whose hybrid query is fused in the store). Everything after the
//! candidates is the retriever's, written once: the candidate loop (over-fetch until `k`
//! hits survive the filters), fusion and the exact-definition lift, the path filter, overlap
//! removal, packing, the repository map.
//!
//! Contract: every chunk a ranking names is in [`Candidates::chunks`] unless it is gone from
//! the index (a vector whose chunk was deleted) or its path fails the filter; rankings are
//! best first; a source never returns a chunk of a path that was deleted before its last
//! commit.

use std::collections::{BTreeMap, HashMap};

use quarry_indexer::embed::VectorModel;
use quarry_indexer::graph::NameRole;
use quarry_indexer::keyword::{KeywordIndex, KeywordQuery};
use quarry_indexer::layout::ShardLock;
use quarry_indexer::manifest::Manifest;
use quarry_indexer::team::TeamStore;
use quarry_indexer::vector::edge::EdgeVectorStore;
use quarry_indexer::vector::{VectorFilter, VectorStore};
use quarry_indexer::{Chunk, IndexLayout};

use crate::filter::ChunkFilter;
use crate::{Mode, SearchError, SearchRequest};

/// Chunks [`CandidateSource::keyword_chunks`] returns.
pub(crate) const KEYWORD_CHUNKS: usize = 20;

/// One round of a search, as a source is asked it.
pub(crate) struct CandidateQuery<'q> {
    /// The search.
    pub(crate) request: &'q SearchRequest,
    /// The query's embedding: vectors are searched when it is given, keywords unless the
    /// mode is vector-only.
    pub(crate) vector: Option<&'q [f32]>,
    /// The search's filters: chunks of files it rejects need not be read.
    pub(crate) filter: &'q ChunkFilter,
    /// Candidates asked of each ranking.
    pub(crate) limit: usize,
}

/// One round of candidates for a search.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    /// The keyword ranking: chunk ids and scores, best first.
    pub(crate) keyword: Vec<(String, f32)>,
    /// The vector ranking (or the store's fused one, see `fused_by_store`).
    pub(crate) vector: Vec<(String, f32)>,
    /// The chunks the rankings name.
    pub(crate) chunks: HashMap<String, Chunk>,
    /// Every ranking came back shorter than asked: a larger limit finds nothing new.
    pub(crate) exhausted: bool,
    /// The store fused keyword and vector rankings itself; per-retriever ranks are unknown.
    pub(crate) fused_by_store: bool,
}

/// An index a retriever reads code candidates from.
pub(crate) trait CandidateSource: Send {
    /// The model the vectors were made with, if the index has vectors.
    fn vector_model(&self) -> Option<VectorModel>;
    /// Prepares vector queries (the model is the index's, checked by the caller).
    fn enable_vectors(&mut self) -> Result<(), SearchError>;
    /// Whether vector queries can be answered now.
    fn vectors_ready(&self) -> bool;
    /// Whether another process is writing the index, so its vectors are not to be opened.
    fn writer_active(&self) -> bool;
    /// Up to `query.limit` candidates from each ranking.
    fn candidates(&self, query: &CandidateQuery<'_>) -> Result<Candidates, SearchError>;
    /// The best chunks in `lang` for `text` by BM25 alone (packing's definition lookup).
    fn keyword_chunks(&self, text: &str, lang: &str) -> Result<Vec<Chunk>, SearchError>;
    /// Every indexed file with its chunk ids, by path.
    fn files(&self) -> Result<BTreeMap<String, Vec<String>>, SearchError>;
    /// The chunks of these ids that exist.
    fn chunks_by_id(&self, ids: &[String]) -> Result<HashMap<String, Chunk>, SearchError>;
    /// Every chunk of the file at `path`, when the source can look a path up directly
    /// (`None`: the caller goes through [`CandidateSource::files`], read once per search; the
    /// windows of a long item are read back whole through this, see `items.rs`).
    fn chunks_of_path(&self, _path: &str) -> Result<Option<Vec<Chunk>>, SearchError> {
        Ok(None)
    }
    /// Every chunk that defines (or references) one of `names`: exhaustive, in no
    /// particular order (the code graph's lookups).
    fn chunks_naming(&self, role: NameRole, names: &[String]) -> Result<Vec<Chunk>, SearchError>;
    /// The team store, for a team index.
    fn team_store(&self) -> Option<&dyn TeamStore> {
        None
    }
}

/// How long a search waits for another process to let go of the vector shard (a sync holds
/// it from a write to its next commit, a search while it searches).
const SHARD_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The local index: tantivy, and the Qdrant Edge shard once vectors are enabled.
pub(crate) struct LocalSource {
    layout: IndexLayout,
    keyword: KeywordIndex,
    vectors: Option<EdgeVectorStore>,
    /// The lease on the code shard, held while `vectors` is open (dropped after it).
    shard_lock: Option<ShardLock>,
}

impl LocalSource {
    /// A source over stores already opened (the history's, beside the code's).
    pub(crate) fn over(
        layout: &IndexLayout,
        keyword: KeywordIndex,
        vectors: Option<EdgeVectorStore>,
    ) -> Self {
        LocalSource {
            layout: layout.clone(),
            keyword,
            vectors,
            shard_lock: None,
        }
    }

    /// Opens the keyword index at `layout`; vectors wait for [`CandidateSource::enable_vectors`].
    pub(crate) fn open(layout: &IndexLayout) -> Result<Self, SearchError> {
        layout.check_readable()?;
        let keyword = KeywordIndex::open(&layout.keyword_dir(), &layout.dir)?;
        Ok(LocalSource {
            layout: layout.clone(),
            keyword,
            vectors: None,
            shard_lock: None,
        })
    }
}

impl CandidateSource for LocalSource {
    fn vector_model(&self) -> Option<VectorModel> {
        VectorModel::load(&self.layout)
    }

    fn enable_vectors(&mut self) -> Result<(), SearchError> {
        let busy = || SearchError::Busy {
            index_dir: self.layout.dir.display().to_string(),
        };
        let Some(lock) = ShardLock::take(&self.layout, SHARD_WAIT)? else {
            return Err(busy());
        };
        let store = EdgeVectorStore::open(&self.layout.vector_shard_dir(), &self.layout.dir)?;
        self.vectors = Some(store);
        self.shard_lock = Some(lock);
        Ok(())
    }

    fn vectors_ready(&self) -> bool {
        self.vectors.is_some()
    }

    fn writer_active(&self) -> bool {
        self.layout.is_locked_by_another_process()
    }

    fn candidates(&self, query: &CandidateQuery<'_>) -> Result<Candidates, SearchError> {
        let CandidateQuery {
            request,
            vector: query_vector,
            filter,
            limit,
        } = *query;
        let keyword = if request.mode == Mode::Vector {
            Vec::new()
        } else {
            self.keyword.search(&KeywordQuery {
                text: &request.query,
                lang: request.lang.as_deref(),
                kind: request.kind.as_deref(),
                limit,
            })?
        };
        let vector = match (query_vector, &self.vectors) {
            (Some(query), Some(store)) => {
                let filter = VectorFilter {
                    lang: request.lang.clone(),
                    kind: request.kind.clone(),
                };
                store.search(query, &filter, limit)?
            }
            _ => Vec::new(),
        };
        let exhausted = keyword.len() < limit && vector.len() < limit;
        let keep = |path: &str| filter.may_keep_path(path);
        let mut chunks: HashMap<String, Chunk> = HashMap::new();
        let keyword = keyword
            .into_iter()
            .map(|hit| {
                let ranked = (hit.chunk.id.clone(), hit.score);
                chunks.insert(hit.chunk.id.clone(), hit.chunk);
                ranked
            })
            .collect();
        // Vector hits are resolved to text through the keyword index, so a vector whose
        // chunk is gone is never shown.
        let missing: Vec<String> = vector
            .iter()
            .filter(|h| !chunks.contains_key(&h.chunk_id) && keep(&h.path))
            .map(|h| h.chunk_id.clone())
            .collect();
        chunks.extend(self.keyword.chunks_by_id(&missing)?);
        let vector = vector.into_iter().map(|h| (h.chunk_id, h.score)).collect();
        Ok(Candidates {
            keyword,
            vector,
            chunks,
            exhausted,
            fused_by_store: false,
        })
    }

    fn keyword_chunks(&self, text: &str, lang: &str) -> Result<Vec<Chunk>, SearchError> {
        Ok(self
            .keyword
            .search(&KeywordQuery {
                text,
                lang: Some(lang),
                kind: None,
                limit: KEYWORD_CHUNKS,
            })?
            .into_iter()
            .map(|hit| hit.chunk)
            .collect())
    }

    fn files(&self) -> Result<BTreeMap<String, Vec<String>>, SearchError> {
        let Some(manifest) = Manifest::load(&self.layout.manifest())? else {
            return Ok(BTreeMap::new());
        };
        Ok(manifest
            .files
            .into_iter()
            .map(|(path, entry)| (path, entry.chunks))
            .collect())
    }

    fn chunks_by_id(&self, ids: &[String]) -> Result<HashMap<String, Chunk>, SearchError> {
        Ok(self.keyword.chunks_by_id(ids)?)
    }

    fn chunks_of_path(&self, path: &str) -> Result<Option<Vec<Chunk>>, SearchError> {
        Ok(Some(self.keyword.chunks_of_path(path)?))
    }

    fn chunks_naming(&self, role: NameRole, names: &[String]) -> Result<Vec<Chunk>, SearchError> {
        Ok(self.keyword.chunks_naming(role, names)?)
    }
}
