//! Vector stores: where chunk embeddings live and are searched.
//!
//! [`VectorStore`] is the seam: replace a file's points, search the nearest points under a
//! filter, commit. [`edge::EdgeVectorStore`] is the embedded default (Qdrant Edge, in process,
//! under the index directory); a Qdrant server backend implements the same trait.
//! A point carries its chunk's id and location (path, lang, kind, symbol, lines); the text
//! stays in the keyword index, which the retriever reads it from.

pub mod edge;

use crate::{Chunk, IndexError};

/// One chunk's vector with what a filter or a hit needs to know about it.
#[derive(Debug, Clone)]
pub struct VectorPoint<'a> {
    /// The chunk.
    pub chunk: &'a Chunk,
    /// Its embedding.
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
    /// Cosine similarity; higher is nearer.
    pub score: f32,
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
    /// The `limit` points nearest to `vector` that pass `filter`, nearest first.
    fn search(
        &self,
        vector: &[f32],
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, IndexError>;
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
