//! Bringing an index in step with the files on disk.
//!
//! A sync takes the writer lock, compares the walk with the manifest (size and mtime first,
//! the blake3 hash only when those moved), chunks what changed in parallel, embeds the new
//! chunks (each vector computed once: see [`crate::embed::cache`]), replaces those files'
//! chunks in every store and deletes what vanished. The write order makes it crash-safe:
//!
//! 1. the [`Journal`] of every path about to change is written durably;
//! 2. the vector cache is flushed, then the stores (keyword, vectors) delete and add by path
//!    and commit;
//! 3. the manifest is rewritten atomically (it never runs ahead of the stores);
//! 4. the journal is removed.
//!
//! A crash before 3 leaves the stores ahead of the manifest for journaled paths only, and the
//! next run re-reads every journaled path and replaces (or deletes) it in every store: by-path
//! writes are idempotent, so either store being behind or ahead is repaired alike. A file that
//! was added and then removed while the index was broken never comes back as a ghost hit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, chunk_file};
use crate::embed::cache::VectorCache;
use crate::embed::{Embedder, cache_key, embed_text, should_embed};
use crate::failpoint;
use crate::history::{self, HistoryReport};
use crate::keyword::KeywordIndex;
use crate::layout::{IndexLayout, WriterLock, remove_file_if_present, write_atomically};
use crate::manifest::{
    FileEntry, IndexSettings, Journal, Manifest, RunStats, SCHEMA_VERSION, SkippedEntry,
};
use crate::secrets::{self, TextKind};
use crate::store::ChunkStore;
use crate::tokens::{ApproxTokenCounter, TokenCounter};
use crate::vector::edge::EdgeVectorStore;
use crate::vector::{VectorPoint, VectorStore};
use crate::walk::{Candidate, SkipReason, classify_content, walk};
use crate::{IndexError, lang};

/// Files chunked per batch: the unit of progress reporting and of memory held at once.
pub(crate) const BATCH_FILES: usize = 256;
/// Chunks written between commits (and manifest checkpoints) on a long first index.
const COMMIT_EVERY_CHUNKS: usize = 20_000;
/// Texts handed to the embedder at once; it batches them further by similar length.
const EMBED_GROUP: usize = 64;

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
    fn cancelled(&self) -> bool {
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
    /// Files have been chunked, embedded and written.
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

/// The model the vectors of an index were made with, written beside them for readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorModel {
    /// [`Embedder::model_id`] of the model.
    pub model_id: String,
    /// Vector length.
    pub dims: usize,
}

impl VectorModel {
    /// The model of the index at `layout`, if it has vectors.
    pub fn load(layout: &IndexLayout) -> Option<Self> {
        let bytes = fs::read(layout.vector_model_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The settings an existing index was built with, if it can be read.
pub fn stored_settings(layout: &IndexLayout) -> Option<IndexSettings> {
    Manifest::load(&layout.manifest())
        .ok()
        .flatten()
        .map(|m| m.settings)
}

/// Whether the index at `layout` exists and was built without vectors: a plain re-index
/// keeps it that way, so no model needs loading.
pub fn is_keyword_only(layout: &IndexLayout) -> bool {
    stored_settings(layout).is_some_and(|settings| settings.embed_model.is_none())
}

/// Everything a sync writes to, and the embedder feeding the vector side.
struct Stores<'e> {
    keyword: KeywordIndex,
    vectors: Option<VectorSide<'e>>,
}

struct VectorSide<'e> {
    store: EdgeVectorStore,
    embedding: Embedding<'e>,
}

/// The model and its vector cache, as a sync uses them.
pub(crate) struct Embedding<'e> {
    /// Opened on the first batch with something to embed: a sync with nothing to embed
    /// never reads the cache file (tens of MB on a large repository).
    pub(crate) cache: Option<VectorCache>,
    pub(crate) cache_dir: std::path::PathBuf,
    pub(crate) embedder: &'e mut dyn Embedder,
}

impl Stores<'_> {
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        self.keyword.delete_paths(paths)?;
        if let Some(side) = self.vectors.as_mut() {
            side.store.delete_paths(paths)?;
        }
        Ok(())
    }

    /// Commits the stores, then checkpoints the manifest: never the other way round.
    fn commit(&mut self, layout: &IndexLayout, manifest: &Manifest) -> Result<(), IndexError> {
        if let Some(cache) = self
            .vectors
            .as_mut()
            .and_then(|side| side.embedding.cache.as_mut())
        {
            cache.flush()?;
        }
        failpoint::hit("before-commit");
        self.keyword.commit()?;
        failpoint::hit("between-stores");
        if let Some(side) = self.vectors.as_mut() {
            side.store.commit()?;
        }
        failpoint::hit("after-commit");
        manifest.save(&layout.manifest())?;
        failpoint::hit("after-manifest");
        Ok(())
    }
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
    let started = Instant::now();
    let mut report = SyncReport::default();

    let loaded = match Manifest::load(&layout.manifest()) {
        Ok(manifest) => Ok(manifest),
        Err(IndexError::SchemaMismatch { found, .. }) => Err(format!(
            "index schema changed (version {found} → {SCHEMA_VERSION})"
        )),
        Err(IndexError::Corrupt { reason, .. }) => Err(reason),
        Err(other) => return Err(other),
    };
    let stored = loaded
        .as_ref()
        .ok()
        .and_then(|m| m.as_ref())
        .map(|m| m.settings.clone());
    let base = if options.force_rebuild {
        IndexSettings::default()
    } else {
        stored.clone().unwrap_or_default()
    };
    let mut settings = options.overrides.apply(base);
    settings.embed_model = embedder.as_ref().map(|e| e.model_id().to_string());

    let mut rebuild_reason = match (&loaded, &stored) {
        (Err(reason), _) => Some(reason.clone()),
        (_, Some(old)) if old.chunk != settings.chunk => Some(format!(
            "chunk settings changed (max tokens {} → {})",
            old.chunk.max_tokens, settings.chunk.max_tokens
        )),
        (_, Some(old)) if old.embed_model != settings.embed_model => Some(format!(
            "embedding model changed ({} → {})",
            old.embed_model.as_deref().unwrap_or("none"),
            settings.embed_model.as_deref().unwrap_or("none")
        )),
        (_, Some(_)) if options.force_rebuild => Some("rebuild requested".to_string()),
        _ => None,
    };
    let existing = stored.is_some();
    let mut manifest = match loaded {
        Ok(Some(m)) if rebuild_reason.is_none() => m,
        _ => Manifest::new(settings.clone(), now_secs()),
    };

    let journal = Journal::load(&layout.journal());
    let mut opened = None;
    if rebuild_reason.is_none() && existing {
        match open_stores(layout, &manifest, journal.is_some(), embedder.is_some()) {
            Ok(Ok(keyword_and_vectors)) => opened = Some(keyword_and_vectors),
            Ok(Err(reason)) | Err(IndexError::Corrupt { reason, .. }) => {
                rebuild_reason = Some(reason)
            }
            Err(other) => return Err(other),
        }
    }
    if let Some(reason) = &rebuild_reason {
        if existing || layout.manifest().exists() {
            on_event(SyncEvent::Rebuilding {
                reason: reason.clone(),
            });
        }
        report.rebuilt = Some(reason.clone());
    }
    let (keyword, vector_store) = match opened {
        Some(stores) => stores,
        None => {
            // The manifest goes first: a crash after it leaves stores the next run sees as
            // unlisted (and rebuilds), never a manifest vouching for a wiped store.
            manifest = Manifest::new(settings.clone(), now_secs());
            remove_file_if_present(&layout.manifest())?;
            Journal::clear(&layout.journal())?;
            remove_dir_if_present(&layout.vector_shard_dir())?;
            remove_file_if_present(&layout.vector_model_file())?;
            (KeywordIndex::create(&layout.keyword_dir())?, None)
        }
    };
    let vectors = match embedder {
        Some(embedder) => {
            let store = match vector_store {
                Some(store) => store,
                None => EdgeVectorStore::open_or_create(
                    &layout.vector_shard_dir(),
                    &layout.dir,
                    embedder.dims(),
                )?,
            };
            let model = VectorModel {
                model_id: embedder.model_id().to_string(),
                dims: embedder.dims(),
            };
            if VectorModel::load(layout).as_ref() != Some(&model) {
                let bytes = serde_json::to_vec(&model).unwrap_or_default();
                write_atomically(&layout.vector_model_file(), &bytes)?;
            }
            Some(VectorSide {
                store,
                embedding: Embedding {
                    cache: None,
                    cache_dir: layout.vector_dir(),
                    embedder,
                },
            })
        }
        None => {
            remove_dir_if_present(&layout.vector_shard_dir())?;
            remove_file_if_present(&layout.vector_model_file())?;
            None
        }
    };
    let mut stores = Stores { keyword, vectors };

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
    manifest.settings = settings.clone();

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
        let found = (candidate.size, candidate.mtime_ns);
        if let Some(entry) = manifest.files.get(&candidate.rel_path)
            && manifest.is_fresh(found, entry.size, entry.mtime_ns)
        {
            continue;
        }
        if let Some(entry) = manifest.skipped.get(&candidate.rel_path)
            && manifest.is_fresh(found, entry.size, entry.mtime_ns)
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
        stores.delete_paths(&deletes)?;
    }
    for path in &vanished {
        manifest.files.remove(path);
    }
    report.files_removed += vanished.len();

    // Read, chunk, embed and write in batches.
    let counter = ApproxTokenCounter;
    let mut pending_chunks = 0;
    let mut files_done = 0;
    for batch in to_read.chunks(BATCH_FILES) {
        let results = read_batch(batch, &manifest.files, &forced, &settings, &counter);
        let mut replaced: Vec<String> = Vec::new();
        let mut added: Vec<Chunk> = Vec::new();
        let mut entries: Vec<(String, FileEntry)> = Vec::new();
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
                    replaced.push(path.clone());
                    report.files_indexed += 1;
                    entries.push((path.clone(), entry));
                    added.extend(chunks);
                }
            }
        }
        // Vectors first: an interruption while embedding leaves this batch unwritten.
        let vectors = match stores.vectors.as_mut() {
            Some(side) => embed_batch(&mut side.embedding, &added, options, &mut report)?,
            None => Some(Vec::new()),
        };
        let Some(vectors) = vectors else {
            // This batch's files leave the index (the next run sees them as new), so the
            // stores and the manifest agree when we stop.
            stores.delete_paths(&replaced)?;
            for path in &replaced {
                manifest.files.remove(path);
            }
            stores.commit(layout, &manifest)?;
            Journal::clear(&layout.journal())?;
            return Err(IndexError::Interrupted {
                files_done,
                files_total: to_read.len(),
            });
        };
        stores.delete_paths(&replaced)?;
        stores.keyword.add_chunks(&added)?;
        if let Some(side) = stores.vectors.as_mut() {
            let points: Vec<VectorPoint<'_>> = vectors
                .iter()
                .map(|(chunk, vector)| VectorPoint {
                    chunk,
                    vector: vector.as_slice(),
                })
                .collect();
            side.store.upsert(&points)?;
            let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
            for (chunk, _) in &vectors {
                *per_path.entry(chunk.path.as_str()).or_default() += 1;
            }
            for (path, entry) in &mut entries {
                entry.vectors = per_path.get(path.as_str()).copied().unwrap_or(0);
            }
        }
        for (path, entry) in entries {
            manifest.files.insert(path, entry);
        }
        report.chunks_written += added.len();
        pending_chunks += added.len();
        files_done += batch.len();
        if pending_chunks >= COMMIT_EVERY_CHUNKS {
            stores.commit(layout, &manifest)?;
            pending_chunks = 0;
        }
        on_event(SyncEvent::Indexed {
            files_done,
            files_total: to_read.len(),
            chunks: report.chunks_written,
            embedded: report.chunks_embedded,
            cached: report.vectors_cached,
        });
        if options.cancelled() && files_done < to_read.len() {
            stores.commit(layout, &manifest)?;
            Journal::clear(&layout.journal())?;
            return Err(IndexError::Interrupted {
                files_done,
                files_total: to_read.len(),
            });
        }
    }

    manifest.scan_started_ns = scan_started_ns;
    report.files = manifest.files.len();
    report.chunks = manifest.chunk_count();
    report.vectors = manifest.vector_count();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    manifest.last_run = Some(report.run_stats());
    if writes_pending || rebuild_reason.is_some() {
        stores.commit(layout, &manifest)?;
        stores.keyword.finish()?;
    } else {
        manifest.save(&layout.manifest())?;
    }
    Journal::clear(&layout.journal())?;

    // The history beside the code, with the same model; its failure never fails the sync.
    let embedder = stores.vectors.take().map(|side| side.embedding.embedder);
    drop(stores);
    match history::sync_history(layout, options.overrides.history_depth, embedder) {
        Ok(history) => report.history = history,
        Err(e) => {
            tracing::warn!("git history not indexed: {e}");
            report.history_error = Some(e.to_string());
        }
    }
    Ok(report)
}

/// Opens the stores of an existing index and checks they hold what the manifest says. The
/// inner `Err` is a reason to rebuild.
#[allow(clippy::type_complexity)]
fn open_stores(
    layout: &IndexLayout,
    manifest: &Manifest,
    journaled: bool,
    with_vectors: bool,
) -> Result<Result<(KeywordIndex, Option<EdgeVectorStore>), String>, IndexError> {
    let mut keyword = KeywordIndex::open(&layout.keyword_dir(), &layout.dir)?;
    let count = keyword.count()?;
    let expected = manifest.chunk_count() as u64;
    if !journaled && count != expected {
        return Ok(Err(format!(
            "keyword index holds {count} chunks where the manifest lists {expected}"
        )));
    }
    if !with_vectors {
        return Ok(Ok((keyword, None)));
    }
    let vectors = EdgeVectorStore::open(&layout.vector_shard_dir(), &layout.dir)?;
    let count = vectors.count()?;
    let expected = manifest.vector_count() as u64;
    if !journaled && count != expected {
        return Ok(Err(format!(
            "vector store holds {count} vectors where the manifest lists {expected}"
        )));
    }
    Ok(Ok((keyword, Some(vectors))))
}

/// The vector of every embeddable chunk: from the cache, or from the model for what the
/// cache lacks (shortest texts together, so batches pad little). New vectors are flushed to
/// the cache before returning, so an interrupted run never computes them again. `None` when
/// the sync was cancelled before every vector was there.
pub(crate) fn embed_batch<'c>(
    side: &mut Embedding<'_>,
    chunks: &'c [Chunk],
    options: &SyncOptions,
    report: &mut SyncReport,
) -> Result<Option<Embedded<'c>>, IndexError> {
    let model_id = side.embedder.model_id().to_string();
    let wanted: Vec<(&Chunk, [u8; 16])> = chunks
        .iter()
        .filter(|c| should_embed(c))
        .map(|c| (c, cache_key(&model_id, c)))
        .collect();
    if wanted.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let Embedding {
        cache,
        cache_dir,
        embedder,
    } = side;
    let cache = match cache {
        Some(cache) => cache,
        None => cache.insert(VectorCache::open(cache_dir, &model_id, embedder.dims())?),
    };
    let mut missing: Vec<(String, [u8; 16])> = Vec::new();
    let mut queued: BTreeSet<[u8; 16]> = BTreeSet::new();
    for (chunk, key) in &wanted {
        if cache.get(key).is_none() && queued.insert(*key) {
            missing.push((embed_text(chunk), *key));
        }
    }
    missing.sort_by_key(|(text, _)| text.len());
    let started = Instant::now();
    let mut cut_short = false;
    for group in missing.chunks(EMBED_GROUP) {
        if options.cancelled() {
            cut_short = true;
            break;
        }
        let texts: Vec<&str> = group.iter().map(|(text, _)| text.as_str()).collect();
        let vectors = embedder.embed(&texts).map_err(|e| IndexError::Embed {
            reason: e.to_string(),
        })?;
        for ((_, key), vector) in group.iter().zip(vectors) {
            cache.put(*key, vector)?;
        }
        report.chunks_embedded += group.len();
    }
    report.embed_ms += started.elapsed().as_millis() as u64;
    cache.flush()?;
    if cut_short {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (chunk, key) in &wanted {
        if let Some(vector) = cache.get(key) {
            out.push((*chunk, vector.to_vec()));
        }
    }
    report.vectors_cached += out.len().saturating_sub(missing.len());
    Ok(Some(out))
}

/// Chunks with their vectors.
pub(crate) type Embedded<'c> = Vec<(&'c Chunk, Vec<f32>)>;

pub(crate) enum FileResult {
    /// The content hash matches the manifest: only the mtime moved.
    Unchanged,
    Skipped(SkipReason),
    Indexed {
        entry: FileEntry,
        chunks: Vec<Chunk>,
    },
}

/// Reads and chunks a batch of files in parallel. A file's entry in `indexed` lets an
/// unchanged hash skip chunking, unless the file is `forced` (journaled by an interrupted
/// sync, so the stores may hold another version of it).
pub(crate) fn read_batch<'c>(
    batch: &[&'c Candidate],
    indexed: &BTreeMap<String, FileEntry>,
    forced: &BTreeSet<String>,
    settings: &IndexSettings,
    counter: &dyn TokenCounter,
) -> Vec<(&'c Candidate, FileResult)> {
    batch
        .par_iter()
        .map(|candidate| {
            let previous = indexed
                .get(&candidate.rel_path)
                .filter(|_| !forced.contains(&candidate.rel_path));
            (
                *candidate,
                read_file(candidate, previous, settings, counter),
            )
        })
        .collect()
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
    let text = match classify_content(&candidate.rel_path, &bytes, &settings.walk) {
        Ok(text) => text,
        Err(reason) => return FileResult::Skipped(reason),
    };
    // Secrets inside the file never reach a store, a model or a reader: the chunks are cut
    // from the redacted text, whose lines are the file's lines.
    let redacted = secrets::redact(text, TextKind::of_path(&candidate.rel_path));
    let chunks = chunk_file(
        &candidate.rel_path,
        &redacted.text,
        &settings.chunk,
        counter,
    );
    FileResult::Indexed {
        entry: FileEntry {
            size: bytes.len() as u64,
            mtime_ns: candidate.mtime_ns,
            hash,
            lang: lang::language_name(&candidate.rel_path).to_string(),
            chunks: chunks.iter().map(|c| c.id.clone()).collect(),
            vectors: 0,
            redactions: redacted.counts,
        },
        chunks,
    }
}

fn remove_dir_if_present(path: &std::path::Path) -> Result<(), IndexError> {
    match fs::remove_dir_all(path) {
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
