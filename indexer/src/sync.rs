//! Bringing an index in step with the files on disk.
//!
//! A sync takes the writer lock, compares the walk with the manifest (size and mtime first,
//! the blake3 hash only when those moved), chunks what changed in parallel, replaces those
//! files' chunks in every store and deletes what vanished. The write order makes it
//! crash-safe:
//!
//! 1. the [`Journal`] of every path about to change is written durably;
//! 2. stores delete and add by path, then commit atomically;
//! 3. the manifest is rewritten atomically (it never runs ahead of the stores);
//! 4. the journal is removed.
//!
//! A crash before 2 commits leaves the old index; between 2 and 3 the next run sees the
//! changed files as changed again and replaces them (by-path writes are idempotent); and any
//! journaled path the manifest does not know is deleted from the stores, so a file that was
//! added and then removed while the index was broken never comes back as a ghost hit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::chunk::{Chunk, chunk_file};
use crate::failpoint;
use crate::keyword::KeywordIndex;
use crate::layout::{IndexLayout, WriterLock, write_atomically};
use crate::manifest::{
    FileEntry, IndexSettings, Journal, Manifest, RunStats, SCHEMA_VERSION, SkippedEntry,
};
use crate::store::ChunkStore;
use crate::tokens::{ApproxTokenCounter, TokenCounter};
use crate::walk::{Candidate, SkipReason, classify_content, walk};
use crate::{IndexError, lang};

/// Files chunked per batch: the unit of progress reporting and of memory held at once.
const BATCH_FILES: usize = 256;
/// Chunks written between commits (and manifest checkpoints) on a long first index.
const COMMIT_EVERY_CHUNKS: usize = 50_000;

/// What the caller wants from a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Settings to change; the rest are kept from the index (or defaulted for a new one).
    pub overrides: SettingsOverrides,
    /// Rebuild from scratch with default settings plus the overrides.
    pub force_rebuild: bool,
}

/// Settings the caller sets explicitly; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsOverrides {
    /// Largest file indexed, in bytes.
    pub max_file_size: Option<u64>,
    /// Largest chunk, in tokens.
    pub chunk_tokens: Option<usize>,
    /// Whether secret-looking files are indexed.
    pub include_secrets: Option<bool>,
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
    /// Files have been chunked and written.
    Indexed {
        /// Files done so far.
        files_done: usize,
        /// Files to do in all.
        files_total: usize,
        /// Chunks written so far.
        chunks: usize,
    },
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Files in the index after the sync.
    pub files: usize,
    /// Chunks in the index after the sync.
    pub chunks: usize,
    /// Files read and chunked because they were new or changed.
    pub files_indexed: usize,
    /// Files whose mtime moved but whose content did not.
    pub files_touched: usize,
    /// Files removed because they vanished or became skipped.
    pub files_removed: usize,
    /// Chunks written.
    pub chunks_written: usize,
    /// Files left out, by reason.
    pub skipped: BTreeMap<SkipReason, usize>,
    /// Why the index was rebuilt, if it was.
    pub rebuilt: Option<String>,
    /// Whether an interrupted sync was repaired.
    pub repaired: bool,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// Brings the index at `layout` in step with the files under its root.
pub fn sync(
    layout: &IndexLayout,
    options: &SyncOptions,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    let started = Instant::now();
    let _lock = WriterLock::acquire(layout)?;
    let mut report = SyncReport::default();

    let loaded = match Manifest::load(&layout.manifest()) {
        Ok(manifest) => Ok(manifest),
        Err(IndexError::SchemaMismatch { found, .. }) => Err(format!(
            "index schema changed (version {found} → {SCHEMA_VERSION})"
        )),
        Err(IndexError::Corrupt { reason, .. }) => Err(reason),
        Err(other) => return Err(other),
    };
    let stored_settings = loaded
        .as_ref()
        .ok()
        .and_then(|m| m.as_ref())
        .map(|m| m.settings);
    let base = if options.force_rebuild {
        IndexSettings::default()
    } else {
        stored_settings.unwrap_or_default()
    };
    let settings = options.overrides.apply(base);

    let mut rebuild_reason = match &loaded {
        Err(reason) => Some(reason.clone()),
        Ok(Some(m)) if m.settings.chunk != settings.chunk => Some(format!(
            "chunk settings changed (max tokens {} → {})",
            m.settings.chunk.max_tokens, settings.chunk.max_tokens
        )),
        Ok(Some(_)) if options.force_rebuild => Some("rebuild requested".to_string()),
        _ => None,
    };
    let existing = matches!(loaded, Ok(Some(_)));
    let mut manifest = match loaded {
        Ok(Some(m)) if rebuild_reason.is_none() => m,
        _ => Manifest::new(settings, now_secs()),
    };

    let journal = Journal::load(&layout.journal());
    let mut store = if rebuild_reason.is_some() || !existing {
        None
    } else {
        match KeywordIndex::open(&layout.keyword_dir(), &layout.dir) {
            Ok(mut store) => {
                let count = store.count()?;
                let expected = manifest.chunk_count() as u64;
                if journal.is_none() && count != expected {
                    rebuild_reason = Some(format!(
                        "keyword index holds {count} chunks where the manifest lists {expected}"
                    ));
                    None
                } else {
                    Some(store)
                }
            }
            Err(IndexError::Corrupt { reason, .. }) => {
                rebuild_reason = Some(reason);
                None
            }
            Err(other) => return Err(other),
        }
    };
    if let Some(reason) = &rebuild_reason {
        if existing || layout.manifest().exists() {
            on_event(SyncEvent::Rebuilding {
                reason: reason.clone(),
            });
        }
        report.rebuilt = Some(reason.clone());
    }
    let mut store = match store.take() {
        Some(store) => store,
        None => {
            // The manifest goes first: a crash after it leaves stores the next run sees as
            // unlisted (and rebuilds), never a manifest vouching for a wiped store.
            manifest = Manifest::new(settings, now_secs());
            remove_if_present(&layout.manifest())?;
            Journal::clear(&layout.journal())?;
            KeywordIndex::create(&layout.keyword_dir())?
        }
    };

    // Paths an interrupted sync may have half-written: each is re-read and replaced (or
    // deleted) whatever the manifest says, since the stores may hold a version of it the
    // manifest does not describe.
    let mut forced: BTreeSet<String> = BTreeSet::new();
    if let Some(journal) = &journal {
        report.repaired = true;
        on_event(SyncEvent::Repairing {
            paths: journal.paths.len(),
        });
        if rebuild_reason.is_none() {
            forced.extend(journal.paths.iter().cloned());
        }
    }
    let version = SCHEMA_VERSION.to_string();
    if fs::read_to_string(layout.version_file()).ok().as_deref() != Some(version.as_str()) {
        write_atomically(&layout.version_file(), version.as_bytes())?;
    }
    if manifest.settings.walk != settings.walk {
        manifest.skipped.clear();
    }
    manifest.settings = settings;

    // Scan.
    let scan_started_ns = now_ns();
    let outcome = walk(&layout.root, &layout.dir, &settings.walk)?;
    for reason in outcome.skipped.values() {
        *report.skipped.entry(*reason).or_default() += 1;
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut to_read: Vec<&Candidate> = Vec::new();
    for candidate in &outcome.files {
        seen.insert(candidate.rel_path.as_str());
        if forced.contains(&candidate.rel_path) {
            to_read.push(candidate);
            continue;
        }
        if let Some(entry) = manifest.files.get(&candidate.rel_path)
            && manifest.is_fresh(
                candidate.size,
                candidate.mtime_ns,
                entry.size,
                entry.mtime_ns,
            )
        {
            continue;
        }
        if let Some(entry) = manifest.skipped.get(&candidate.rel_path)
            && manifest.is_fresh(
                candidate.size,
                candidate.mtime_ns,
                entry.size,
                entry.mtime_ns,
            )
        {
            *report.skipped.entry(entry.reason).or_default() += 1;
            continue;
        }
        to_read.push(candidate);
    }
    let vanished: Vec<String> = manifest
        .files
        .keys()
        .filter(|p| !seen.contains(p.as_str()))
        .cloned()
        .collect();
    manifest.skipped.retain(|p, _| seen.contains(p.as_str()));
    on_event(SyncEvent::Scanned {
        files: outcome.files.len(),
        to_index: to_read.len(),
    });

    // Journal everything that may change before the first store write.
    let mut deletes: Vec<String> = vanished.clone();
    deletes.extend(
        forced
            .iter()
            .filter(|p| !seen.contains(p.as_str()) && !manifest.files.contains_key(*p))
            .cloned(),
    );
    let writes_pending = !to_read.is_empty() || !deletes.is_empty();
    if writes_pending {
        let mut paths: Vec<String> = to_read.iter().map(|c| c.rel_path.clone()).collect();
        paths.extend(deletes.iter().cloned());
        if let Some(old) = &journal {
            paths.extend(old.paths.iter().cloned());
        }
        paths.sort();
        paths.dedup();
        Journal { paths }.save(&layout.journal())?;
        failpoint::hit("after-journal");
    }

    if !deletes.is_empty() {
        store.delete_paths(&deletes)?;
    }
    for path in &vanished {
        manifest.files.remove(path);
    }
    report.files_removed += vanished.len();

    // Read, chunk and write in batches.
    let counter = ApproxTokenCounter;
    let mut pending_chunks = 0;
    let mut files_done = 0;
    for batch in to_read.chunks(BATCH_FILES) {
        let results: Vec<(&Candidate, FileResult)> = batch
            .par_iter()
            .map(|candidate| {
                let previous = manifest
                    .files
                    .get(&candidate.rel_path)
                    .filter(|_| !forced.contains(&candidate.rel_path));
                (
                    *candidate,
                    read_file(candidate, previous, &settings, &counter),
                )
            })
            .collect();
        let mut replaced: Vec<String> = Vec::new();
        let mut added: Vec<Chunk> = Vec::new();
        for (candidate, result) in results {
            let path = &candidate.rel_path;
            match result {
                FileResult::Unchanged => {
                    if let Some(entry) = manifest.files.get_mut(path) {
                        entry.size = candidate.size;
                        entry.mtime_ns = candidate.mtime_ns;
                    }
                    report.files_touched += 1;
                }
                FileResult::Skipped(reason) => {
                    *report.skipped.entry(reason).or_default() += 1;
                    manifest.skipped.insert(
                        path.clone(),
                        SkippedEntry {
                            size: candidate.size,
                            mtime_ns: candidate.mtime_ns,
                            reason,
                        },
                    );
                    if manifest.files.remove(path).is_some() || forced.contains(path) {
                        replaced.push(path.clone());
                        report.files_removed += 1;
                    }
                }
                FileResult::Indexed { entry, chunks } => {
                    manifest.skipped.remove(path);
                    manifest.files.insert(path.clone(), entry);
                    replaced.push(path.clone());
                    report.files_indexed += 1;
                    added.extend(chunks);
                }
            }
        }
        store.delete_paths(&replaced)?;
        store.add_chunks(&added)?;
        report.chunks_written += added.len();
        pending_chunks += added.len();
        files_done += batch.len();
        if pending_chunks >= COMMIT_EVERY_CHUNKS {
            commit(layout, &mut store, &mut manifest)?;
            pending_chunks = 0;
        }
        on_event(SyncEvent::Indexed {
            files_done,
            files_total: to_read.len(),
            chunks: report.chunks_written,
        });
    }

    manifest.scan_started_ns = scan_started_ns;
    report.files = manifest.files.len();
    report.chunks = manifest.chunk_count();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    manifest.last_run = Some(RunStats {
        finished_at: now_secs(),
        elapsed_ms: report.elapsed_ms,
        files_indexed: report.files_indexed,
        files_removed: report.files_removed,
        chunks_written: report.chunks_written,
        skipped: report.skipped.clone(),
    });
    if writes_pending || rebuild_reason.is_some() {
        commit(layout, &mut store, &mut manifest)?;
        store.finish()?;
    } else {
        manifest.save(&layout.manifest())?;
    }
    Journal::clear(&layout.journal())?;
    Ok(report)
}

/// Commits the stores, then checkpoints the manifest: never the other way round.
fn commit(
    layout: &IndexLayout,
    store: &mut dyn ChunkStore,
    manifest: &mut Manifest,
) -> Result<(), IndexError> {
    failpoint::hit("before-commit");
    store.commit()?;
    failpoint::hit("after-commit");
    manifest.save(&layout.manifest())?;
    failpoint::hit("after-manifest");
    Ok(())
}

enum FileResult {
    /// The content hash matches the manifest: only the mtime moved.
    Unchanged,
    Skipped(SkipReason),
    Indexed {
        entry: FileEntry,
        chunks: Vec<Chunk>,
    },
}

fn read_file(
    candidate: &Candidate,
    previous: Option<&FileEntry>,
    settings: &IndexSettings,
    counter: &dyn TokenCounter,
) -> FileResult {
    let Ok(bytes) = fs::read(&candidate.abs_path) else {
        return FileResult::Skipped(SkipReason::Unreadable);
    };
    if bytes.len() as u64 > settings.walk.max_file_size {
        return FileResult::Skipped(SkipReason::TooLarge);
    }
    let hash = blake3::hash(&bytes).to_hex().to_string();
    if previous.is_some_and(|p| p.hash == hash) {
        return FileResult::Unchanged;
    }
    let text = match classify_content(&bytes, &settings.walk) {
        Ok(text) => text,
        Err(reason) => return FileResult::Skipped(reason),
    };
    let chunks = chunk_file(&candidate.rel_path, text, &settings.chunk, counter);
    let lang = lang::language_name(&candidate.rel_path);
    FileResult::Indexed {
        entry: FileEntry {
            size: bytes.len() as u64,
            mtime_ns: candidate.mtime_ns,
            hash,
            lang: lang.to_string(),
            chunks: chunks.iter().map(|c| c.id.clone()).collect(),
        },
        chunks,
    }
}

fn remove_if_present(path: &std::path::Path) -> Result<(), IndexError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IndexError::io("removing", path)(e)),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
