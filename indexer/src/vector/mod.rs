//! Vector stores: where chunk embeddings live and are searched.
//!
//! [`VectorStore`] is the seam: replace a file's points, search the nearest points under a
//! filter, commit. [`edge::EdgeVectorStore`] is the embedded default (Qdrant Edge, in process,
//! under the index directory); [`server::ServerVectorStore`] is a Qdrant server or cluster,
//! for a team. Both pass the same contract tests (`vector::contract`).
//!
//! A point carries its chunk's id and location (path, lang, kind, symbol, lines). In the
//! local index the text stays in the keyword index, which the retriever reads it from; a
//! store of [`StoreShape::team`] also keeps the whole chunk and a BM25 [`sparse`] vector, so
//! it answers keyword and hybrid queries on its own.

#[cfg(test)]
mod contract;
pub mod edge;
pub mod server;
pub mod sparse;

use serde_json::json;

use crate::{Chunk, IndexError};
use sparse::SparseVector;

/// What a store keeps per point beyond the dense vector and the chunk's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreShape {
    /// The whole chunk (text, signature, doc, headers) in the payload.
    pub full_chunks: bool,
    /// A BM25 sparse vector (with the server-side IDF modifier) for keyword queries.
    pub sparse: bool,
}

impl StoreShape {
    /// Dense vectors and locations: the local index, whose text lives in tantivy.
    pub fn local() -> Self {
        StoreShape::default()
    }

    /// Everything a team index needs in the store alone.
    pub fn team() -> Self {
        StoreShape {
            full_chunks: true,
            sparse: true,
        }
    }
}

/// Name of the dense vector in a team-shaped store.
pub const DENSE_VECTOR: &str = "dense";
/// Name of the sparse (BM25) vector in a team-shaped store.
pub const SPARSE_VECTOR: &str = "bm25";
/// The rank offset `k` of the fusion a hybrid query asks the store for. Qdrant servers
/// before 1.16 ignore it and use 2.
pub const HYBRID_RRF_K: u32 = 60;
/// Fields with a payload index in every store.
pub const INDEXED_FIELDS: [&str; 3] = ["path", "lang", "kind"];

/// Fields a team-shaped store also indexes: the code graph's names per chunk
/// ([`crate::graph::NameRole::field`]).
pub const GRAPH_FIELDS: [&str; 2] = ["defs", "refs"];

/// Points read per page when a lookup must see every match.
pub const SCAN_PAGE: usize = 256;

/// What to rank points by.
#[derive(Debug, Clone, Copy)]
pub enum StoreQuery<'a> {
    /// Nearest dense vectors (cosine).
    Dense(&'a [f32]),
    /// BM25 over the sparse vectors.
    Sparse(&'a SparseVector),
    /// Both, each fetching `limit` candidates, fused by reciprocal rank in the store.
    Hybrid {
        /// The query's embedding.
        dense: &'a [f32],
        /// The query's terms.
        sparse: &'a SparseVector,
    },
}

/// One chunk's vector with what a filter or a hit needs to know about it.
#[derive(Debug, Clone)]
pub struct VectorPoint<'a> {
    /// The chunk.
    pub chunk: &'a Chunk,
    /// Its embedding; empty for a chunk left to keyword search, which only a store with
    /// [`StoreShape::sparse`] takes.
    pub vector: &'a [f32],
}

/// Which points a search may return.
#[derive(Debug, Clone, Default)]
pub struct VectorFilter {
    /// Only this language.
    pub lang: Option<String>,
    /// Only this kind (`function`, `method`, ...).
    pub kind: Option<String>,
}

/// A point near the query.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    /// The chunk's id.
    pub chunk_id: String,
    /// The chunk's path.
    pub path: String,
    /// Cosine similarity, BM25 or fused score; higher is nearer.
    pub score: f32,
    /// The whole chunk, from a store that keeps it ([`StoreShape::full_chunks`]).
    pub chunk: Option<Chunk>,
}

/// An index of chunk vectors.
pub trait VectorStore: Send {
    /// Removes every point of these files.
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError>;
    /// Adds or replaces points (by chunk id).
    fn upsert(&mut self, points: &[VectorPoint<'_>]) -> Result<(), IndexError>;
    /// Makes all writes durable.
    fn commit(&mut self) -> Result<(), IndexError>;
    /// Number of points.
    fn count(&self) -> Result<u64, IndexError>;
    /// The `limit` best points for `query` that pass `filter`, best first. A sparse or
    /// hybrid query needs a store with [`StoreShape::sparse`].
    fn query(
        &self,
        query: StoreQuery<'_>,
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, IndexError>;
    /// The points of these chunk ids that exist, with their payloads (a team-shaped store's
    /// hits carry their chunks), in no particular order.
    fn points_by_id(&self, chunk_ids: &[String]) -> Result<Vec<VectorHit>, IndexError>;
    /// Every point whose chunk defines (or references) one of `names`, with its chunk:
    /// exhaustive, not top-k, in no particular order. Only a store with
    /// [`StoreShape::full_chunks`] keeps the code graph; any other has none to return.
    fn points_naming(
        &self,
        role: crate::graph::NameRole,
        names: &[String],
    ) -> Result<Vec<VectorHit>, IndexError>;
    /// The `limit` points nearest to `vector` that pass `filter`, nearest first.
    fn search(
        &self,
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, IndexError> {
        self.query(StoreQuery::Dense(vector), filter, limit)
    }
}

/// The payload of a chunk's point: its location always, the rest with `full_chunks`.
/// Both backends write exactly this, and read hits back with [`hit_from_payload`].
pub fn point_payload(chunk: &Chunk, shape: StoreShape) -> serde_json::Value {
    let mut payload = json!({
        "chunk_id": chunk.id,
        "path": chunk.path,
        "lang": chunk.lang,
        "kind": chunk.kind.as_str(),
        "symbol": chunk.symbol,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
    });
    if shape.full_chunks
        && let Some(fields) = payload.as_object_mut()
    {
        fields.insert("signature".into(), json!(chunk.signature));
        fields.insert("doc".into(), json!(chunk.doc));
        fields.insert("context".into(), json!(chunk.context));
        fields.insert("start_byte".into(), json!(chunk.start_byte));
        fields.insert("end_byte".into(), json!(chunk.end_byte));
        fields.insert("text".into(), json!(chunk.text));
        if !chunk.graph.is_empty() {
            fields.insert("graph".into(), json!(chunk.stored_graph()));
            fields.insert("defs".into(), json!(chunk.graph.defined_names()));
            fields.insert("refs".into(), json!(chunk.graph.referenced_names()));
        }
    }
    payload
}

/// A hit from a point's payload and score; `None` for a payload Quarry did not write.
pub fn hit_from_payload(
    payload: &serde_json::Map<String, serde_json::Value>,
    score: f32,
) -> Option<VectorHit> {
    let text = |key: &str| payload.get(key)?.as_str().map(str::to_string);
    let number = |key: &str| payload.get(key).and_then(serde_json::Value::as_u64);
    let chunk_id = text("chunk_id")?;
    let path = text("path")?;
    let chunk = match text("text") {
        Some(body) => Some(Chunk {
            id: chunk_id.clone(),
            path: path.clone(),
            lang: text("lang").unwrap_or_default(),
            kind: serde_json::from_value(payload.get("kind")?.clone()).ok()?,
            symbol: text("symbol"),
            signature: text("signature"),
            doc: text("doc"),
            context: text("context"),
            start_line: number("start_line")? as u32,
            end_line: number("end_line")? as u32,
            start_byte: number("start_byte").unwrap_or(0) as usize,
            end_byte: number("end_byte").unwrap_or(0) as usize,
            text: body,
            graph: Default::default(),
        })
        .map(|chunk| match text("graph") {
            Some(stored) => chunk.with_stored_graph(&stored),
            None => chunk,
        }),
        None => None,
    };
    Some(VectorHit {
        chunk_id,
        path,
        score,
        chunk,
    })
}

/// The numeric point id of a chunk: the first 64 bits of its 128-bit id.
pub fn point_id(chunk_id: &str) -> u64 {
    u64::from_str_radix(chunk_id.get(..16).unwrap_or(chunk_id), 16).unwrap_or_else(|_| {
        let hash = blake3::hash(chunk_id.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(bytes)
    })
}
