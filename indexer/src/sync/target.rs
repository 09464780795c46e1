//! The two seams a sync writes through: the [`Ledger`] (what is known about the files between
//! runs) and the [`IndexSink`] (the stores searches read). The driver ([`super::driver`]) owns
//! every rule about *what* to write and *when*; an implementation only says *where*.
//!
//! Two implementations exist: the local index ([`super::local::LocalTarget`]: a manifest and a
//! journal file, a tantivy index and a Qdrant Edge shard on disk) and the team index
//! ([`crate::team::sync::TeamTarget`]: the ledger and the points of one store). One value
//! implements both seams, since a team store holds its ledger and its points together.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::IndexError;
use crate::chunk::Chunk;
use crate::manifest::Manifest;

/// The manifest as a [`Ledger`] last recorded it, and the journal an interrupted run left.
pub(crate) struct Loaded {
    /// `Ok(None)`: no index yet. `Err(reason)`: an index that cannot be used as it is and
    /// must be rebuilt (unreadable, another schema or layout); the reason is shown.
    pub(crate) manifest: Result<Option<Manifest>, String>,
    /// Paths a run was about to change when it stopped.
    pub(crate) journal: Option<Vec<String>>,
}

/// Where a sync keeps its manifest and journal.
///
/// Contract (the crash-safety of every sync rests on it):
/// - [`Ledger::save_journal`] is durable when it returns; the driver calls it before the
///   first store write of a run.
/// - [`Ledger::checkpoint`] records the whole manifest durably (all of it, or none), and the
///   driver calls it only after [`IndexSink::commit`] made everything it describes visible.
/// - [`Ledger::clear_journal`] is called only after the last checkpoint of a run.
/// - [`Ledger::forget`] is called before [`IndexSink::recreate`] wipes the stores, so a crash
///   between the two never leaves a manifest vouching for a wiped store.
pub(crate) trait Ledger {
    /// Reads the manifest and the journal.
    fn load(&mut self) -> Result<Loaded, IndexError>;
    /// Records the paths about to change.
    fn save_journal(&mut self, paths: &[String]) -> Result<(), IndexError>;
    /// Records `manifest`; `done` on the last checkpoint of a complete run.
    fn checkpoint(&mut self, manifest: &Manifest, done: bool) -> Result<(), IndexError>;
    /// Removes the journal.
    fn clear_journal(&mut self) -> Result<(), IndexError>;
    /// Forgets the manifest and the journal ahead of a rebuild.
    fn forget(&mut self) -> Result<(), IndexError>;
}

/// Vectors of the chunks that have one, by chunk id.
pub(crate) type VectorsById<'v> = BTreeMap<&'v str, &'v [f32]>;

/// The stores a sync writes chunks and vectors to.
///
/// Contract: every write is by path and idempotent (a file's chunks are deleted, then its new
/// ones added), so a batch written twice is still one copy and a run interrupted anywhere is
/// repaired by writing its journaled paths again. Writes become visible to readers at the
/// latest on [`IndexSink::commit`].
pub(crate) trait IndexSink {
    /// Opens the stores of an existing index and checks they hold what `manifest` says
    /// (unless a `journaled` run may have left them ahead). `Some(reason)`: rebuild.
    fn open(&mut self, manifest: &Manifest, journaled: bool) -> Result<Option<String>, IndexError>;
    /// Throws away whatever the stores hold and starts them empty, for `manifest`'s settings.
    fn recreate(&mut self, manifest: &Manifest) -> Result<(), IndexError>;
    /// Removes every chunk of these files.
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError>;
    /// Adds chunks (their files' old chunks already deleted), with the vectors they have.
    fn write(&mut self, chunks: &[Chunk], vectors: &VectorsById<'_>) -> Result<(), IndexError>;
    /// Adds `vectors` to chunks already written by [`IndexSink::write`] (the vector phase);
    /// by chunk id, so writing the same vectors twice is one copy.
    fn write_vectors(
        &mut self,
        chunks: &[Chunk],
        vectors: &VectorsById<'_>,
    ) -> Result<(), IndexError>;
    /// Makes every write so far durable and visible.
    fn commit(&mut self) -> Result<(), IndexError>;
    /// Whether a phase commits now, with `pending` chunks (keyword phase) or vectors (vector
    /// phase) written or held `since` its last commit (or its start). Every phase also
    /// commits at its end.
    fn commit_due(&self, pending: usize, since: Duration) -> bool;
    /// Lets background work finish at the end of a run that wrote.
    fn finish(&mut self) -> Result<(), IndexError> {
        Ok(())
    }
}
