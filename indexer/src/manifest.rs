//! The manifest: what the index holds, from which version of each file.
//!
//! Per indexed file it records size, modification time, blake3 hash and the ids of its
//! chunks; per skipped file the reason (so unchanged skipped files are not read again); and
//! the schema version and settings the index was built with. It is rewritten atomically
//! after the stores commit, so it never claims more than the stores hold.
//!
//! The [`Journal`] lists the paths a sync is about to touch. It is written before the first
//! store write and removed after the last manifest write, so after a crash the next sync
//! knows which paths may have store entries the manifest does not mention.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::IndexError;
use crate::chunk::ChunkSettings;
use crate::layout::{remove_file_if_present, write_atomically};
use crate::walk::{SkipReason, WalkSettings};

/// Version of everything on disk: manifest, keyword schema, tokenizer and chunker output.
/// Bump it when any of them changes shape; an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 6;

/// Settings an index is built with. Chunk settings and the embedding model change what is
/// stored, so a change rebuilds; walk settings only change which files are taken.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexSettings {
    /// How files are cut into chunks.
    pub chunk: ChunkSettings,
    /// Which files are indexed.
    pub walk: WalkSettings,
    /// The embedding model's id, or `None` for a keyword-only index.
    #[serde(default)]
    pub embed_model: Option<String>,
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes when indexed.
    pub size: u64,
    /// Modification time when indexed, ns since the epoch.
    pub mtime_ns: u64,
    /// blake3 of the content, hex.
    pub hash: String,
    /// Language name.
    pub lang: String,
    /// Ids of the file's chunks.
    pub chunks: Vec<String>,
    /// How many of them have a vector.
    #[serde(default)]
    pub vectors: usize,
    /// Its chunks are in the keyword index but their vectors are not yet in the vector
    /// store: a sync's second phase (or the next sync) embeds them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vectors_pending: bool,
    /// Secrets redacted from the file's chunks, by rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redactions: BTreeMap<String, u32>,
    /// Non-blank lines of the file (0 in manifests written before it was recorded).
    #[serde(default)]
    pub lines: u32,
    /// Of those, the lines inside a symbol's chunk: what `status` reports as how much of a
    /// language the chunker understood.
    #[serde(default)]
    pub symbol_lines: u32,
}

/// One file skipped for its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    /// Size in bytes when examined.
    pub size: u64,
    /// Modification time when examined.
    pub mtime_ns: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Figures of the last sync, kept for `quarry status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// When it finished, seconds since the epoch.
    pub finished_at: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Files read and chunked.
    pub files_indexed: usize,
    /// Files removed from the index.
    pub files_removed: usize,
    /// Chunks written.
    pub chunks_written: usize,
    /// Chunks embedded by the model (cache misses).
    #[serde(default)]
    pub chunks_embedded: usize,
    /// Vectors taken from the cache.
    #[serde(default)]
    pub vectors_cached: usize,
    /// Milliseconds spent in the embedding model.
    #[serde(default)]
    pub embed_ms: u64,
    /// Files skipped, by reason.
    pub skipped: BTreeMap<SkipReason, usize>,
}

/// What the index holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Settings the index was built with.
    pub settings: IndexSettings,
    /// When the index was first built, seconds since the epoch.
    pub created_at: u64,
    /// When the last sync started scanning, ns since the epoch. A file modified within two
    /// seconds of it may have changed without its mtime moving, so it is hashed again.
    pub scan_started_ns: u64,
    /// Indexed files by relative path.
    pub files: BTreeMap<String, FileEntry>,
    /// Files skipped for their content, by relative path.
    pub skipped: BTreeMap<String, SkippedEntry>,
    /// Figures of the last sync.
    pub last_run: Option<RunStats>,
}

/// How close to the last scan an mtime must be for the file to be re-hashed regardless.
const RACY_WINDOW_NS: u64 = 2_000_000_000;

impl Manifest {
    /// An empty manifest for a new index.
    pub fn new(settings: IndexSettings, now_secs: u64) -> Self {
        Manifest {
            schema_version: SCHEMA_VERSION,
            settings,
            created_at: now_secs,
            scan_started_ns: 0,
            files: BTreeMap::new(),
            skipped: BTreeMap::new(),
            last_run: None,
        }
    }

    /// Reads the manifest; `Ok(None)` when there is none, [`IndexError::Corrupt`] when it
    /// cannot be parsed.
    pub fn load(path: &Path) -> Result<Option<Self>, IndexError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IndexError::io("reading", path)(e)),
        };
        let index_dir = path.parent().unwrap_or(path).to_path_buf();
        let version: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                index_dir: index_dir.clone(),
                reason: format!("manifest is not valid JSON: {e}"),
            })?;
        let found = version.get("schema_version").and_then(|v| v.as_u64());
        if found != Some(u64::from(SCHEMA_VERSION)) {
            return Err(IndexError::SchemaMismatch {
                index_dir,
                found: found.unwrap_or(0) as u32,
                expected: SCHEMA_VERSION,
            });
        }
        serde_json::from_value(version)
            .map(Some)
            .map_err(|e| IndexError::Corrupt {
                index_dir,
                reason: format!("manifest does not match the schema: {e}"),
            })
    }

    /// Writes the manifest atomically.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        save_json(self, path, "manifest")
    }

    /// Total chunks over all files.
    pub fn chunk_count(&self) -> usize {
        self.files.values().map(|f| f.chunks.len()).sum()
    }

    /// Total vectors over all files.
    pub fn vector_count(&self) -> usize {
        self.files.values().map(|f| f.vectors).sum()
    }

    /// Files whose vectors are still to be embedded, and their chunks.
    pub fn pending_vectors(&self) -> (usize, usize) {
        self.files
            .values()
            .filter(|f| f.vectors_pending)
            .fold((0, 0), |(files, chunks), f| {
                (files + 1, chunks + f.chunks.len())
            })
    }

    /// Whether a file found with this size and mtime can be trusted to be the version
    /// recorded (`recorded_size`, `recorded_mtime`) without reading it.
    pub fn is_fresh(&self, found: (u64, u64), recorded_size: u64, recorded_mtime: u64) -> bool {
        let (size, mtime_ns) = found;
        size == recorded_size
            && mtime_ns == recorded_mtime
            && mtime_ns.saturating_add(RACY_WINDOW_NS) < self.scan_started_ns
    }
}

/// The paths a sync in flight may have written to the stores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Relative paths whose store entries may change.
    pub paths: Vec<String>,
}

impl Journal {
    /// Reads the journal; `None` when there is none or it is unreadable (a journal cut short
    /// by a crash before it was complete means no store write happened after it).
    pub fn load(path: &Path) -> Option<Self> {
        let bytes = fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the journal atomically and durably.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        save_json(self, path, "journal")
    }

    /// Removes the journal: the sync it described is complete.
    pub fn clear(path: &Path) -> Result<(), IndexError> {
        remove_file_if_present(path)
    }
}

/// Serialises `value` as JSON and writes it atomically to `path`.
fn save_json<T: Serialize>(value: &T, path: &Path, what: &str) -> Result<(), IndexError> {
    let bytes = serde_json::to_vec(value).map_err(|e| IndexError::Corrupt {
        index_dir: path.to_path_buf(),
        reason: format!("{what} could not be serialised: {e}"),
    })?;
    write_atomically(path, &bytes)
}
