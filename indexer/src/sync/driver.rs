//! The one sync driver, for the local and the team index alike, in named phases:
//!
//! 1. [`plan`]: load the manifest, decide whether the index must be rebuilt (and why), open
//!    or recreate the stores, and take the journal of an interrupted run as paths to redo;
//! 2. [`scan`]: walk the tree and compare it with the manifest (size and mtime first, with
//!    the racy-mtime guard; files skipped before stay skipped until they move);
//! 3. [`journal`]: record every path about to change, then delete what vanished;
//! 4. [`batches`], the keyword phase: read → chunk → write, committing (then checkpointing
//!    the manifest) when [`IndexSink::commit_due`] says so and once at the end, so the
//!    whole tree is searchable by keyword within seconds; files whose chunks want vectors
//!    are marked `vectors_pending`;
//! 5. [`super::vectors::embed_pending`], the vector phase: every pending file (of this run
//!    or one stopped earlier) embedded in groups and its vectors written, committing as it
//!    goes;
//! 6. [`finish`]: the last commit and checkpoint, the journal removed, then the git history.
//!
//! Cancellation stops either phase at a group boundary with everything done committed.

use std::collections::BTreeSet;
use std::time::Instant;

use super::batch::{Embedding, FileResult, read_batch};
use super::progress::ProgressFile;
use super::target::{IndexSink, Ledger, VectorsById};
use super::{BATCH_FILES, SyncEvent, SyncOptions, SyncReport, now_ns, now_secs, vectors};
use crate::embed::{Embedder, should_embed};
use crate::history;
use crate::layout::IndexLayout;
use crate::manifest::{FileEntry, IndexSettings, Manifest, SkippedEntry};
use crate::tokens::ApproxTokenCounter;
use crate::walk::{Candidate, walk};
use crate::{IndexError, failpoint};

/// A sync's state between phases.
pub(super) struct Run<'e> {
    /// The manifest being brought up to date; its settings are this run's.
    pub(super) manifest: Manifest,
    /// Paths an interrupted run may have half-written: re-read and replaced (or deleted)
    /// whatever the manifest says.
    forced: BTreeSet<String>,
    pub(super) embedding: Option<Embedding<'e>>,
    pub(super) report: SyncReport,
    started: Instant,
}

/// What the scan found to do.
struct Scan {
    to_read: Vec<Candidate>,
    /// Paths whose chunks must go without a file to replace them.
    deletes: Vec<String>,
    /// Indexed files that are gone.
    vanished: Vec<String>,
    started_ns: u64,
}

/// Brings `target` in step with the files under `layout.root`. With an embedder, chunks get
/// vectors too.
pub(crate) fn run<T: Ledger + IndexSink>(
    target: &mut T,
    layout: &IndexLayout,
    options: &SyncOptions,
    embedder: Option<&mut dyn Embedder>,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    let mut progress = ProgressFile::start(layout);
    let on_event = &mut |event: SyncEvent| {
        progress.record(&event);
        on_event(event);
    };
    let mut run = plan(target, layout, options, embedder, on_event)?;
    let scan = scan(&mut run, layout, on_event)?;
    let writes_pending = journal(target, &mut run, &scan)?;
    batches(target, &mut run, &scan, options, on_event)?;
    let embedded = vectors::embed_pending(target, &mut run, layout, options, on_event)?;
    finish(
        target,
        run,
        scan,
        layout,
        options,
        writes_pending || embedded,
    )
}

fn plan<'e, T: Ledger + IndexSink>(
    target: &mut T,
    layout: &IndexLayout,
    options: &SyncOptions,
    embedder: Option<&'e mut dyn Embedder>,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<Run<'e>, IndexError> {
    let started = Instant::now();
    let mut report = SyncReport::default();
    let loaded = target.load()?;
    let stored = loaded
        .manifest
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

    let mut rebuild = match (&loaded.manifest, &stored) {
        (Err(reason), _) => Some(reason.clone()),
        (_, Some(old)) => rebuild_reason(old, &settings, options.force_rebuild),
        _ => None,
    };
    let existing = stored.is_some() || loaded.manifest.is_err();
    let mut kept = match loaded.manifest {
        Ok(Some(m)) if rebuild.is_none() => Some(m),
        _ => None,
    };
    if let Some(manifest) = &kept {
        rebuild = target.open(manifest, loaded.journal.is_some())?;
        if rebuild.is_some() {
            kept = None;
        }
    }
    if let Some(reason) = &rebuild {
        if existing {
            on_event(SyncEvent::Rebuilding {
                reason: reason.clone(),
            });
        }
        report.rebuilt = Some(reason.clone());
    }
    let mut manifest = match kept {
        Some(manifest) => manifest,
        None => {
            let fresh = Manifest::new(settings.clone(), now_secs());
            target.forget()?;
            target.recreate(&fresh)?;
            fresh
        }
    };

    let mut forced = BTreeSet::new();
    if let Some(paths) = &loaded.journal {
        report.repaired = true;
        on_event(SyncEvent::Repairing { paths: paths.len() });
        if rebuild.is_none() {
            forced.extend(paths.iter().cloned());
        }
    }
    if manifest.settings.walk != settings.walk {
        manifest.skipped.clear();
    }
    manifest.settings = settings;
    let embedding = embedder.map(|embedder| Embedding {
        cache: None,
        cache_dir: layout.vector_dir(),
        embedder,
    });
    Ok(Run {
        manifest,
        forced,
        embedding,
        report,
        started,
    })
}

/// Why an index built with `old` settings cannot be kept under `new` ones.
fn rebuild_reason(old: &IndexSettings, new: &IndexSettings, forced: bool) -> Option<String> {
    if old.chunk != new.chunk {
        Some(format!(
            "chunk settings changed (max tokens {} → {})",
            old.chunk.max_tokens, new.chunk.max_tokens
        ))
    } else if old.embed_model != new.embed_model {
        Some(format!(
            "embedding model changed ({} → {})",
            old.embed_model.as_deref().unwrap_or("none"),
            new.embed_model.as_deref().unwrap_or("none")
        ))
    } else if forced {
        Some("rebuild requested".to_string())
    } else {
        None
    }
}

fn scan(
    run: &mut Run<'_>,
    layout: &IndexLayout,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<Scan, IndexError> {
    let started_ns = now_ns();
    let outcome = walk(&layout.root, &layout.dir, &run.manifest.settings.walk)?;
    let report = &mut run.report;
    let manifest = &mut run.manifest;
    for reason in outcome.skipped.values() {
        *report.skipped.entry(*reason).or_default() += 1;
    }
    let seen: BTreeSet<String> = outcome.files.iter().map(|c| c.rel_path.clone()).collect();
    let files_seen = outcome.files.len();
    let mut to_read = Vec::new();
    for candidate in outcome.files {
        let found = (candidate.size, candidate.mtime_ns);
        if !run.forced.contains(&candidate.rel_path) {
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
        }
        to_read.push(candidate);
    }
    let vanished: Vec<String> = manifest
        .files
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    manifest.skipped.retain(|p, _| seen.contains(p));
    let mut deletes = vanished.clone();
    deletes.extend(
        run.forced
            .iter()
            .filter(|p| !seen.contains(*p) && !manifest.files.contains_key(*p))
            .cloned(),
    );
    on_event(SyncEvent::Scanned {
        files: files_seen,
        to_index: to_read.len(),
    });
    Ok(Scan {
        to_read,
        deletes,
        vanished,
        started_ns,
    })
}

/// Journals everything that may change before the first store write, then deletes what has
/// no file any more. Returns whether the run writes at all.
fn journal<T: Ledger + IndexSink>(
    target: &mut T,
    run: &mut Run<'_>,
    scan: &Scan,
) -> Result<bool, IndexError> {
    let writes_pending = !scan.to_read.is_empty() || !scan.deletes.is_empty();
    if writes_pending {
        let mut paths: BTreeSet<String> = run.forced.clone();
        paths.extend(scan.to_read.iter().map(|c| c.rel_path.clone()));
        paths.extend(scan.deletes.iter().cloned());
        let paths: Vec<String> = paths.into_iter().collect();
        target.save_journal(&paths)?;
        failpoint::hit("after-journal");
    }
    if !scan.deletes.is_empty() {
        target.delete_paths(&scan.deletes)?;
    }
    for path in &scan.vanished {
        run.manifest.files.remove(path);
    }
    run.report.files_removed += scan.vanished.len();
    Ok(writes_pending)
}

/// What one batch changes.
#[derive(Default)]
struct BatchChanges {
    /// Paths whose chunks are replaced or removed.
    replaced: Vec<String>,
    added: Vec<crate::Chunk>,
    entries: Vec<(String, FileEntry)>,
}

/// The keyword phase: every file to read is chunked and written without vectors; a file
/// whose chunks want vectors is left `vectors_pending` for the vector phase.
fn batches<T: Ledger + IndexSink>(
    target: &mut T,
    run: &mut Run<'_>,
    scan: &Scan,
    options: &SyncOptions,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<(), IndexError> {
    let counter = ApproxTokenCounter;
    let total = scan.to_read.len();
    let wants_vectors = run.embedding.is_some();
    let mut pending_chunks = 0;
    let mut last_commit = Instant::now();
    let mut files_done = 0;
    for batch in scan.to_read.chunks(BATCH_FILES) {
        let batch: Vec<&Candidate> = batch.iter().collect();
        let changes = apply_reads(run, &batch, &counter);
        if !changes.replaced.is_empty() {
            target.delete_paths(&changes.replaced)?;
        }
        target.write(&changes.added, &VectorsById::new())?;
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        if wants_vectors {
            wanted.extend(
                changes
                    .added
                    .iter()
                    .filter(|c| should_embed(c))
                    .map(|c| c.id.as_str()),
            );
        }
        for (path, mut entry) in changes.entries {
            entry.vectors = 0;
            entry.vectors_pending = entry.chunks.iter().any(|id| wanted.contains(id.as_str()));
            run.manifest.files.insert(path, entry);
        }
        run.report.chunks_written += changes.added.len();
        pending_chunks += changes.added.len();
        files_done += batch.len();
        if target.commit_due(pending_chunks, last_commit.elapsed()) {
            commit(target, run, false)?;
            pending_chunks = 0;
            last_commit = Instant::now();
        }
        on_event(SyncEvent::Indexed {
            files_done,
            files_total: total,
            chunks: run.report.chunks_written,
            embedded: run.report.chunks_embedded,
            cached: run.report.vectors_cached,
        });
        if options.cancelled() && files_done < total {
            return interrupt(target, run, files_done, total);
        }
    }
    if pending_chunks > 0 {
        // The whole tree is searchable by keyword from here, while vectors are made.
        commit(target, run, false)?;
    }
    // What the keyword phase's reading and indexing threads freed goes back before the
    // vector phase grows the model's memory.
    crate::heap::release_freed();
    Ok(())
}

/// Reads and chunks one batch and records in the manifest what needs no store write.
fn apply_reads(
    run: &mut Run<'_>,
    batch: &[&Candidate],
    counter: &ApproxTokenCounter,
) -> BatchChanges {
    let results = read_batch(
        batch,
        &run.manifest.files,
        &run.forced,
        &run.manifest.settings,
        counter,
    );
    let manifest = &mut run.manifest;
    let report = &mut run.report;
    let mut changes = BatchChanges::default();
    for (candidate, result) in results {
        let path = &candidate.rel_path;
        // The stores hold chunks only of paths the manifest lists or the journal names: a
        // path new to both has nothing to delete (a first index deletes nothing, and never
        // opens the vector shard in its keyword phase).
        let stored = manifest.files.contains_key(path) || run.forced.contains(path);
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
                manifest.files.remove(path);
                if stored {
                    changes.replaced.push(path.clone());
                    report.files_removed += 1;
                }
            }
            FileResult::Indexed { entry, chunks } => {
                manifest.skipped.remove(path);
                if stored {
                    changes.replaced.push(path.clone());
                }
                report.files_indexed += 1;
                changes.entries.push((path.clone(), entry));
                changes.added.extend(chunks);
            }
        }
    }
    changes
}

/// Commits the stores, then checkpoints the manifest: never the other way round.
pub(super) fn commit<T: Ledger + IndexSink>(
    target: &mut T,
    run: &mut Run<'_>,
    done: bool,
) -> Result<(), IndexError> {
    if let Some(cache) = run.embedding.as_mut().and_then(|e| e.cache.as_mut()) {
        cache.flush()?;
    }
    failpoint::hit("before-commit");
    target.commit()?;
    failpoint::hit("after-commit");
    target.checkpoint(&run.manifest, done)?;
    failpoint::hit("after-manifest");
    Ok(())
}

/// Stops at a batch boundary: what is written is committed and recorded, nothing is left
/// to repair.
pub(super) fn interrupt<T: Ledger + IndexSink>(
    target: &mut T,
    run: &mut Run<'_>,
    files_done: usize,
    files_total: usize,
) -> Result<(), IndexError> {
    commit(target, run, false)?;
    target.clear_journal()?;
    Err(IndexError::Interrupted {
        files_done,
        files_total,
    })
}

fn finish<T: Ledger + IndexSink>(
    target: &mut T,
    mut run: Run<'_>,
    scan: Scan,
    layout: &IndexLayout,
    options: &SyncOptions,
    writes_pending: bool,
) -> Result<SyncReport, IndexError> {
    run.manifest.scan_started_ns = scan.started_ns;
    let report = &mut run.report;
    report.files = run.manifest.files.len();
    report.chunks = run.manifest.chunk_count();
    report.vectors = run.manifest.vector_count();
    report.elapsed_ms = run.started.elapsed().as_millis() as u64;
    run.manifest.last_run = Some(report.run_stats());
    if writes_pending || report.rebuilt.is_some() {
        commit(target, &mut run, true)?;
        target.finish()?;
    } else {
        target.checkpoint(&run.manifest, true)?;
    }
    target.clear_journal()?;

    // The history beside the code, with the same model; its failure never fails the sync.
    let mut report = run.report;
    let embedder = run.embedding.map(|embedding| embedding.embedder);
    match history::sync_history(layout, options.overrides.history_depth, embedder) {
        Ok(history) => report.history = history,
        Err(e) => {
            tracing::warn!("git history not indexed: {e}");
            report.history_error = Some(e.to_string());
        }
    }
    Ok(report)
}
