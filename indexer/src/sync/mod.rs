//! Bringing an index in step with the files on disk: one driver for the local and the team
//! index.
//!
//! A sync compares the walk with the manifest (size and mtime first, the blake3 hash only
//! when those moved), chunks what changed in parallel, embeds the new chunks (each vector
//! computed once: see [`crate::embed::cache`]), replaces those files' chunks in every store
//! and deletes what vanished. [`driver`] holds every rule of it, in named phases; it writes
//! through two seams ([`target`]): a ledger (manifest, journal) and an index sink (the
//! stores), implemented for the local index ([`local`]) and a team store
//! ([`crate::team::sync`]). The write order makes it crash-safe:
//!
//! 1. the journal of every path about to change is written durably;
//! 2. the vector cache is flushed, then the stores delete and add by path and commit;
//! 3. the manifest is checkpointed (it never runs ahead of the stores);
//! 4. the journal is removed.
//!
//! A crash before 3 leaves the stores ahead of the manifest for journaled paths only, and the
//! next run re-reads every journaled path and replaces (or deletes) it in every store: by-path
//! writes are idempotent, so either store being behind or ahead is repaired alike. A file that
//! was added and then removed while the index was broken never comes back as a ghost hit.

mod batch;
mod driver;
mod local;
pub mod progress;
pub(crate) mod target;
mod vectors;

pub(crate) use driver::run as driver_run;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::IndexError;
use crate::embed::{Embedder, VectorModel};
use crate::history::HistoryReport;
use crate::layout::{IndexLayout, WriterLock};
use crate::manifest::{IndexSettings, Manifest, RunStats};
use crate::walk::SkipReason;

/// Files chunked per batch: the unit of progress reporting and of memory held at once.
pub(crate) const BATCH_FILES: usize = 256;

/// What the caller wants from a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Settings to change; the rest are kept from the index (or defaulted for a new one).
    pub overrides: SettingsOverrides,
    /// Rebuild from scratch with default settings plus the overrides.
    pub force_rebuild: bool,
    /// Set (by a Ctrl-C handler) to stop early: the sync commits what it finished and
    /// returns [`IndexError::Interrupted`]; the next sync carries on from there.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl SyncOptions {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }
}

/// Settings the caller sets explicitly; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsOverrides {
    /// Largest file indexed, in bytes.
    pub max_file_size: Option<u64>,
    /// Largest chunk, in tokens.
    pub chunk_tokens: Option<usize>,
    /// Whether secret-looking files are indexed.
    pub include_secrets: Option<bool>,
    /// Commits of history indexed (0: none); kept in the history state, not the manifest.
    #[serde(default)]
    pub history_depth: Option<usize>,
}

impl SettingsOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, mut base: IndexSettings) -> IndexSettings {
        if let Some(size) = self.max_file_size {
            base.walk.max_file_size = size;
        }
        if let Some(tokens) = self.chunk_tokens {
            base.chunk.max_tokens = tokens;
        }
        if let Some(include) = self.include_secrets {
            base.walk.include_secrets = include;
        }
        base
    }
}

/// Progress of a sync, for the caller to show.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// The existing index is being thrown away; the reason says why.
    Rebuilding {
        /// Why, in words a user understands.
        reason: String,
    },
    /// The last sync did not finish; its leftovers are being cleaned up.
    Repairing {
        /// Paths the interrupted sync may have half-written.
        paths: usize,
    },
    /// The walk is done.
    Scanned {
        /// Files seen (not counting those skipped by name or size).
        files: usize,
        /// Files that must be read and chunked.
        to_index: usize,
    },
    /// Files have been chunked and written to the keyword index (the keyword phase).
    Indexed {
        /// Files done so far.
        files_done: usize,
        /// Files to do in all.
        files_total: usize,
        /// Chunks written so far.
        chunks: usize,
        /// Chunks embedded by the model so far.
        embedded: usize,
        /// Vectors taken from the cache so far.
        cached: usize,
    },
    /// Files' vectors have been written (the vector phase, after every file is searchable
    /// by keyword).
    Embedding {
        /// Files whose vectors are in so far.
        files_done: usize,
        /// Files waiting for vectors when the phase began.
        files_total: usize,
        /// Their chunks done so far (some chunks never get a vector).
        chunks_done: usize,
        /// Their chunks in all.
        chunks_total: usize,
        /// Chunks embedded by the model so far, this run.
        embedded: usize,
        /// Vectors taken from the cache so far, this run.
        cached: usize,
    },
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Files in the index after the sync.
    pub files: usize,
    /// Chunks in the index after the sync.
    pub chunks: usize,
    /// Vectors in the index after the sync.
    pub vectors: usize,
    /// Files read and chunked because they were new or changed.
    pub files_indexed: usize,
    /// Files whose mtime moved but whose content did not.
    pub files_touched: usize,
    /// Files removed because they vanished or became skipped.
    pub files_removed: usize,
    /// Chunks written.
    pub chunks_written: usize,
    /// Vectors written by the vector phase (of this run's files, or an earlier run's that
    /// stopped before its vectors were in).
    #[serde(default)]
    pub vectors_written: usize,
    /// Chunks the model embedded (cache misses).
    pub chunks_embedded: usize,
    /// Vectors reused from the cache.
    pub vectors_cached: usize,
    /// Milliseconds spent in the model.
    pub embed_ms: u64,
    /// Files left out, by reason.
    pub skipped: BTreeMap<SkipReason, usize>,
    /// Why the index was rebuilt, if it was.
    pub rebuilt: Option<String>,
    /// Whether an interrupted sync was repaired.
    pub repaired: bool,
    /// Wall time.
    pub elapsed_ms: u64,
    /// What the git history sync did (`None`: not a git repository, or it failed).
    #[serde(default)]
    pub history: Option<HistoryReport>,
    /// Why the git history could not be indexed; the code index is fine regardless.
    #[serde(default)]
    pub history_error: Option<String>,
}

impl SyncReport {
    /// The figures of this run kept for `quarry status`, finished now.
    pub(crate) fn run_stats(&self) -> RunStats {
        RunStats {
            finished_at: now_secs(),
            elapsed_ms: self.elapsed_ms,
            files_indexed: self.files_indexed,
            files_removed: self.files_removed,
            chunks_written: self.chunks_written,
            chunks_embedded: self.chunks_embedded,
            vectors_cached: self.vectors_cached,
            embed_ms: self.embed_ms,
            skipped: self.skipped.clone(),
        }
    }
}

/// Whether the index at `layout` exists and was built without vectors: a plain re-index
/// keeps it that way, so no model needs loading.
pub fn is_keyword_only(layout: &IndexLayout) -> bool {
    Manifest::load(&layout.manifest())
        .ok()
        .flatten()
        .is_some_and(|m| m.settings.embed_model.is_none())
}

/// Brings the index at `layout` in step with the files under its root. With an embedder,
/// chunks get vectors too; without one, the index is keyword-only.
pub fn sync(
    layout: &IndexLayout,
    options: &SyncOptions,
    embedder: Option<&mut dyn Embedder>,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    let lock = WriterLock::acquire(layout)?;
    sync_holding(&lock, layout, options, embedder, on_event)
}

/// [`sync`] for a caller that already holds the index's writer lock and keeps it between
/// syncs (the daemon).
pub fn sync_holding(
    lock: &WriterLock,
    layout: &IndexLayout,
    options: &SyncOptions,
    embedder: Option<&mut dyn Embedder>,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    if !lock.guards(layout) {
        return Err(IndexError::Corrupt {
            index_dir: layout.dir.clone(),
            reason: "sync called with the writer lock of another index".to_string(),
        });
    }
    let model = embedder.as_deref().map(VectorModel::of);
    let mut target = local::LocalTarget::new(layout, model);
    driver::run(&mut target, layout, options, embedder, on_event)
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
