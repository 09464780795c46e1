//! The seam between the sync and the indexes it keeps.
//!
//! Every index backend (the tantivy keyword index now; vector stores beside it) is a
//! [`ChunkStore`]: it replaces a file's chunks wholesale (delete by path, then add) and makes
//! its writes visible atomically on commit. Replacing by path makes every write idempotent,
//! which is what lets a sync interrupted at any point be repaired by simply running again.

use crate::{Chunk, IndexError};

/// An index the sync writes chunks to.
pub trait ChunkStore: Send {
    /// Short name for messages (`keyword`, `vector`).
    fn name(&self) -> &'static str;
    /// Removes every chunk of these files.
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError>;
    /// Adds chunks. A file's old chunks must have been deleted first, in the same commit.
    fn add_chunks(&mut self, chunks: &[Chunk]) -> Result<(), IndexError>;
    /// Makes all writes since the last commit durable and visible, all or nothing.
    fn commit(&mut self) -> Result<(), IndexError>;
    /// Number of chunks visible to readers.
    fn count(&mut self) -> Result<u64, IndexError>;
    /// Lets background work (segment merges) finish before the process exits.
    fn finish(&mut self) -> Result<(), IndexError> {
        Ok(())
    }
}
