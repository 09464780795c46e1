//! Bringing a team index in step with a checkout.
//!
//! The same manifest logic as the local sync, with the manifest in the store's ledger: a
//! file whose size and mtime match its entry is skipped, one whose content hash matches
//! only gets its entry's mtime updated (a fresh CI checkout re-reads every file but
//! re-embeds nothing that did not change), and what changed is re-chunked, embedded and
//! replaced by path. The write order makes any interruption repairable by the next run:
//!
//! 1. the journal (every path about to change) goes into the ledger;
//! 2. per batch, the store deletes the files' points and upserts the new ones (by chunk
//!    id, so a batch written twice is still one copy), then the ledger takes their entries;
//! 3. the meta is updated and the journal removed.
//!
//! A run that stops anywhere leaves the ledger behind the points for journaled paths only,
//! and the next run re-reads (or deletes) each of those whatever the ledger says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use super::{
    FILE_PREFIX, JOURNAL_KEY, META_KEY, TEAM_SCHEMA, TeamMeta, TeamStore, repository_identity,
};
use crate::chunk::Chunk;
use crate::embed::Embedder;
use crate::layout::{IndexLayout, WriterLock};
use crate::manifest::{FileEntry, IndexSettings};
use crate::sync::{
    BATCH_FILES, Embedding, FileResult, SyncEvent, SyncOptions, SyncReport, embed_batch, read_batch,
};
use crate::tokens::ApproxTokenCounter;
use crate::vector::VectorPoint;
use crate::walk::{Candidate, walk};
use crate::{IndexError, failpoint};

/// The ledger as a sync reads it.
struct Ledger {
    meta: Option<TeamMeta>,
    files: BTreeMap<String, FileEntry>,
    journal: Vec<String>,
    /// Entries read, whatever they were.
    entries: usize,
}

impl Ledger {
    fn read(store: &dyn TeamStore) -> Result<Self, IndexError> {
        let raw = store.ledger()?;
        let mut ledger = Ledger {
            meta: None,
            files: BTreeMap::new(),
            journal: Vec::new(),
            entries: raw.len(),
        };
        for (key, value) in raw {
            if key == META_KEY {
                ledger.meta = serde_json::from_value(value).ok();
            } else if key == JOURNAL_KEY {
                ledger.journal = serde_json::from_value(value).unwrap_or_default();
            } else if let Some(path) = key.strip_prefix(FILE_PREFIX)
                && let Ok(entry) = serde_json::from_value(value)
            {
                ledger.files.insert(path.to_string(), entry);
            }
        }
        Ok(ledger)
    }
}

/// The meta of the team index in `store`, if it has one.
pub fn team_meta(store: &dyn TeamStore) -> Result<Option<TeamMeta>, IndexError> {
    Ok(store
        .ledger_entry(META_KEY)?
        .and_then(|meta| serde_json::from_value(meta).ok()))
}

/// Whether a sync of the team index in `store` is in flight or was interrupted.
pub fn sync_pending(store: &dyn TeamStore) -> Result<bool, IndexError> {
    Ok(store.ledger_entry(JOURNAL_KEY)?.is_some())
}

fn file_key(path: &str) -> String {
    format!("{FILE_PREFIX}{path}")
}

fn to_value(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Brings the team index in `store` in step with the checkout at `layout.root`. The local
/// index directory only holds the vector cache (so a warm CI cache embeds nothing twice)
/// and the writer lock that keeps two syncs on this machine apart.
pub fn sync_team(
    layout: &IndexLayout,
    store: &mut dyn TeamStore,
    options: &SyncOptions,
    embedder: &mut dyn Embedder,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    std::fs::create_dir_all(&layout.dir).map_err(IndexError::io("creating", &layout.dir))?;
    let _lock = WriterLock::acquire(layout)?;
    let started = Instant::now();
    let mut report = SyncReport::default();
    let dims = embedder.dims();
    let model_id = embedder.model_id().to_string();
    let location = store.location();

    let mut ledger = Ledger::read(store)?;
    let facts = store.facts()?;
    let base = match (&ledger.meta, options.force_rebuild) {
        (Some(meta), false) => meta.settings.clone(),
        _ => IndexSettings::default(),
    };
    let mut settings = options.overrides.apply(base);
    settings.embed_model = Some(model_id.clone());

    let mut rebuild: Option<String> = None;
    match (&facts, &ledger.meta) {
        (None, _) => {}
        (Some(facts), None) if facts.points > 0 => {
            return Err(IndexError::Collection(format!(
                "collection `{}` at {} holds {} points that Quarry did not write; refusing to mix them with an index (set [store] collection to another name)",
                location.collection, location.address, facts.points
            )));
        }
        (Some(_), None) => rebuild = Some("collection without a ledger".to_string()),
        (Some(facts), Some(meta)) => {
            let other_dims = facts.dims != 0 && facts.dims != dims as u64;
            if meta.model_id != model_id || meta.dims != dims || other_dims {
                if !options.force_rebuild {
                    return Err(IndexError::Collection(format!(
                        "collection `{}` at {} holds vectors of {} ({} dims), but this quarry embeds with {} ({} dims); never mixing them: set [store] collection to another name, or rebuild it with `quarry index --force`",
                        location.collection,
                        location.address,
                        meta.model_id,
                        meta.dims,
                        model_id,
                        dims
                    )));
                }
                rebuild = Some(format!(
                    "embedding model changed ({} → {model_id})",
                    meta.model_id
                ));
            } else if meta.schema != TEAM_SCHEMA {
                rebuild = Some(format!(
                    "collection layout changed (version {} → {TEAM_SCHEMA})",
                    meta.schema
                ));
            } else if meta.settings.chunk != settings.chunk {
                rebuild = Some(format!(
                    "chunk settings changed (max tokens {} → {})",
                    meta.settings.chunk.max_tokens, settings.chunk.max_tokens
                ));
            } else if options.force_rebuild {
                rebuild = Some("rebuild requested".to_string());
            }
        }
    }
    if let Some(reason) = &rebuild {
        on_event(SyncEvent::Rebuilding {
            reason: reason.clone(),
        });
        report.rebuilt = Some(reason.clone());
        store.drop_all()?;
        ledger = Ledger {
            meta: None,
            files: BTreeMap::new(),
            journal: Vec::new(),
            entries: 0,
        };
    }
    if facts.is_none() || rebuild.is_some() {
        if facts.is_none() && ledger.entries > 0 {
            // A ledger left without its collection: start over.
            store.drop_all()?;
            ledger.files.clear();
            ledger.journal.clear();
        }
        store.create(dims)?;
    }
    let mut meta = ledger.meta.clone().unwrap_or_else(|| TeamMeta {
        schema: TEAM_SCHEMA,
        repository: repository_identity(&layout.root),
        model_id: model_id.clone(),
        dims,
        distance: "cosine".to_string(),
        settings: settings.clone(),
        head: None,
        files: 0,
        chunks: 0,
        last_run: None,
    });
    meta.settings = settings.clone();
    if ledger.meta.is_none() {
        // The meta goes in before any point: points never sit in a collection without one.
        store.write_ledger(&[(META_KEY.to_string(), to_value(&meta))], &[])?;
    }
    let mut files = ledger.files;
    let forced: BTreeSet<String> = ledger.journal.iter().cloned().collect();
    if !forced.is_empty() {
        report.repaired = true;
        on_event(SyncEvent::Repairing {
            paths: forced.len(),
        });
    }

    // Scan.
    let outcome = walk(&layout.root, &layout.dir, &settings.walk)?;
    for reason in outcome.skipped.values() {
        *report.skipped.entry(*reason).or_default() += 1;
    }
    let seen: BTreeSet<&str> = outcome.files.iter().map(|c| c.rel_path.as_str()).collect();
    let to_read: Vec<&Candidate> = outcome
        .files
        .iter()
        .filter(|candidate| {
            forced.contains(&candidate.rel_path)
                || files.get(&candidate.rel_path).is_none_or(|entry| {
                    entry.size != candidate.size || entry.mtime_ns != candidate.mtime_ns
                })
        })
        .collect();
    let mut deletes: Vec<String> = files
        .keys()
        .filter(|p| !seen.contains(p.as_str()))
        .cloned()
        .collect();
    deletes.extend(
        forced
            .iter()
            .filter(|p| !seen.contains(p.as_str()) && !files.contains_key(*p))
            .cloned(),
    );
    on_event(SyncEvent::Scanned {
        files: outcome.files.len(),
        to_index: to_read.len(),
    });

    let writes_pending = !to_read.is_empty() || !deletes.is_empty();
    if writes_pending {
        let mut journal: BTreeSet<String> = forced.clone();
        journal.extend(to_read.iter().map(|c| c.rel_path.clone()));
        journal.extend(deletes.iter().cloned());
        let journal: Vec<String> = journal.into_iter().collect();
        store.write_ledger(&[(JOURNAL_KEY.to_string(), to_value(&journal))], &[])?;
        failpoint::hit("team-after-journal");
    }
    if !deletes.is_empty() {
        store.delete_paths(&deletes)?;
        let keys: Vec<String> = deletes.iter().map(|p| file_key(p)).collect();
        store.write_ledger(&[], &keys)?;
        for path in &deletes {
            if files.remove(path).is_some() {
                report.files_removed += 1;
            }
        }
    }

    let mut embedding = Embedding {
        cache: None,
        cache_dir: layout.vector_dir(),
        embedder,
    };
    let counter = ApproxTokenCounter;
    let mut files_done = 0;
    for batch in to_read.chunks(BATCH_FILES) {
        let results = read_batch(batch, &files, &forced, &settings, &counter);
        let mut replaced: Vec<String> = Vec::new();
        let mut added: Vec<Chunk> = Vec::new();
        let mut upserts: Vec<(String, serde_json::Value)> = Vec::new();
        let mut removals: Vec<String> = Vec::new();
        let mut entries: Vec<(String, FileEntry)> = Vec::new();
        for (candidate, result) in results {
            let path = &candidate.rel_path;
            match result {
                FileResult::Unchanged => {
                    if let Some(entry) = files.get_mut(path) {
                        entry.size = candidate.size;
                        entry.mtime_ns = candidate.mtime_ns;
                        upserts.push((file_key(path), to_value(entry)));
                    }
                    report.files_touched += 1;
                }
                FileResult::Skipped(reason) => {
                    *report.skipped.entry(reason).or_default() += 1;
                    if files.remove(path).is_some() || forced.contains(path) {
                        replaced.push(path.clone());
                        removals.push(file_key(path));
                        report.files_removed += 1;
                    }
                }
                FileResult::Indexed { entry, chunks } => {
                    replaced.push(path.clone());
                    report.files_indexed += 1;
                    entries.push((path.clone(), entry));
                    added.extend(chunks);
                }
            }
        }
        let Some(vectors) = embed_batch(&mut embedding, &added, options, &mut report)? else {
            return Err(IndexError::Interrupted {
                files_done,
                files_total: to_read.len(),
            });
        };
        let by_id: BTreeMap<&str, &[f32]> = vectors
            .iter()
            .map(|(chunk, vector)| (chunk.id.as_str(), vector.as_slice()))
            .collect();
        // Every chunk becomes a point: those without a vector are found by their terms.
        let points: Vec<VectorPoint<'_>> = added
            .iter()
            .map(|chunk| VectorPoint {
                chunk,
                vector: by_id.get(chunk.id.as_str()).copied().unwrap_or(&[]),
            })
            .collect();
        if !replaced.is_empty() {
            store.delete_paths(&replaced)?;
        }
        store.upsert(&points)?;
        store.commit()?;
        failpoint::hit("team-after-points");
        for (path, mut entry) in entries {
            entry.vectors = entry
                .chunks
                .iter()
                .filter(|id| by_id.contains_key(id.as_str()))
                .count();
            upserts.push((file_key(&path), to_value(&entry)));
            files.insert(path, entry);
        }
        store.write_ledger(&upserts, &removals)?;
        report.chunks_written += added.len();
        files_done += batch.len();
        on_event(SyncEvent::Indexed {
            files_done,
            files_total: to_read.len(),
            chunks: report.chunks_written,
            embedded: report.chunks_embedded,
            cached: report.vectors_cached,
        });
        if options
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
            && files_done < to_read.len()
        {
            return Err(IndexError::Interrupted {
                files_done,
                files_total: to_read.len(),
            });
        }
    }
    if let Some(cache) = embedding.cache.as_mut() {
        cache.flush()?;
    }

    report.files = files.len();
    report.chunks = files.values().map(|e| e.chunks.len()).sum();
    report.vectors = files.values().map(|e| e.vectors).sum();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    meta.files = report.files;
    meta.chunks = report.chunks;
    meta.head = head_commit(&layout.root);
    if writes_pending || meta.last_run.is_none() || report.rebuilt.is_some() {
        meta.last_run = Some(report.run_stats());
    }
    failpoint::hit("team-before-meta");
    store.write_ledger(
        &[(META_KEY.to_string(), to_value(&meta))],
        &[JOURNAL_KEY.to_string()],
    )?;
    Ok(report)
}

/// The commit checked out at `root`, if it is a git work tree with one.
pub fn head_commit(root: &Path) -> Option<String> {
    let repo = gix::discover(root).ok()?;
    let id = repo.head_id().ok()?;
    Some(id.to_string())
}

/// How far the indexed commit is behind `root`'s HEAD, along first parents: `Some(0)` when
/// it is HEAD, `None` when it is not in the first 10,000 commits of HEAD's history.
pub fn commits_behind(root: &Path, indexed: &str) -> Option<usize> {
    let repo = gix::discover(root).ok()?;
    let mut current = repo.head_commit().ok()?;
    for behind in 0..10_000 {
        if current.id == indexed {
            return Some(behind);
        }
        let parent = current.parent_ids().next()?;
        current = parent.object().ok()?.try_into_commit().ok()?;
    }
    None
}
