//! The vector phase of a sync: vectors for the files the keyword phase left
//! `vectors_pending`, this run's or an earlier, stopped run's.
//!
//! The keyword phase has already committed every pending file's chunks, so the tree is
//! searchable while this phase runs; it only adds vectors. A pending file is read and
//! chunked again (chunking is deterministic, so its chunk ids are the ones written) and kept
//! only if its content hash is still the manifest's: a file that changed since is left
//! pending with its recorded mtime cleared, so the next sync's scan re-reads it and the
//! keyword phase replaces it. Vectors are written by chunk id ([`IndexSink::write_vectors`]
//! is idempotent), then committed group by group, then the files' entries say their vectors
//! are in.
//!
//! Crash safety needs nothing new: a killed run leaves its journal, so the next run re-reads
//! every journaled path in the keyword phase (deleting this run's vectors with their
//! chunks) and embeds it again, from the vector cache where this run got that far.

use std::collections::BTreeSet;
use std::time::Instant;

use super::batch::{FileResult, embed_batch, read_batch};
use super::driver::{Run, commit, interrupt};
use super::target::{IndexSink, Ledger, VectorsById};
use super::{SyncEvent, SyncOptions};
use crate::chunk::Chunk;
use crate::layout::IndexLayout;
use crate::tokens::ApproxTokenCounter;
use crate::walk::Candidate;
use crate::{IndexError, failpoint};

/// Files embedded per group: the unit of progress and of cancellation in this phase, and of
/// commits where the sink wants one per group (a team store). The local index commits the
/// first group at once and then every [`IndexSink::commit_due`] interval; the sink holds
/// the vector shard only while it writes, so searches in other processes open it in between.
/// A stop loses nothing embedded: vectors are in the vector cache before they are written.
const GROUP_FILES: usize = 32;

/// Embeds every pending file of `run`'s manifest and writes its vectors. Returns whether it
/// wrote anything.
pub(super) fn embed_pending<T: Ledger + IndexSink>(
    target: &mut T,
    run: &mut Run<'_>,
    layout: &IndexLayout,
    options: &SyncOptions,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<bool, IndexError> {
    if run.embedding.is_none() {
        return Ok(false);
    }
    let pending: Vec<Candidate> = run
        .manifest
        .files
        .iter()
        .filter(|(_, entry)| entry.vectors_pending)
        .map(|(path, entry)| Candidate {
            rel_path: path.clone(),
            abs_path: layout.root.join(path),
            size: entry.size,
            mtime_ns: entry.mtime_ns,
        })
        .collect();
    if pending.is_empty() {
        return Ok(false);
    }
    let files_total = pending.len();
    let chunks_total: usize = pending
        .iter()
        .filter_map(|c| run.manifest.files.get(&c.rel_path))
        .map(|e| e.chunks.len())
        .sum();
    on_event(SyncEvent::Embedding {
        files_done: 0,
        files_total,
        chunks_done: 0,
        chunks_total,
        embedded: run.report.chunks_embedded,
        cached: run.report.vectors_cached,
    });
    let (mut files_done, mut chunks_done) = (0, 0);
    let mut unwritten = Unwritten::default();
    let mut last_commit: Option<Instant> = None;
    for group in pending.chunks(GROUP_FILES) {
        let chunks = reread(run, group);
        let Some(embedding) = run.embedding.as_mut() else {
            return Ok(false);
        };
        let Some(vectors) = embed_batch(embedding, &chunks, options, &mut run.report)? else {
            unwritten.write(target, run)?;
            return interrupt(target, run, files_done, files_total).map(|()| true);
        };
        let embedded: BTreeSet<&str> = vectors.iter().map(|(chunk, _)| chunk.id.as_str()).collect();
        let written: BTreeSet<&str> = chunks.iter().map(|c| c.path.as_str()).collect();
        for candidate in group {
            let Some(entry) = run.manifest.files.get_mut(&candidate.rel_path) else {
                continue;
            };
            chunks_done += entry.chunks.len();
            if written.contains(candidate.rel_path.as_str()) {
                entry.vectors = entry
                    .chunks
                    .iter()
                    .filter(|id| embedded.contains(id.as_str()))
                    .count();
                entry.vectors_pending = false;
            }
        }
        unwritten.add(vectors);
        files_done += group.len();
        // The first group is committed at once, so vector search works early; later ones
        // when the sink says a commit is due.
        let due = last_commit.is_none_or(|at| target.commit_due(unwritten.len(), at.elapsed()));
        if due {
            unwritten.write(target, run)?;
            commit(target, run, false)?;
            last_commit = Some(Instant::now());
        }
        on_event(SyncEvent::Embedding {
            files_done,
            files_total,
            chunks_done,
            chunks_total,
            embedded: run.report.chunks_embedded,
            cached: run.report.vectors_cached,
        });
        if options.cancelled() && files_done < files_total {
            unwritten.write(target, run)?;
            return interrupt(target, run, files_done, files_total).map(|()| true);
        }
    }
    unwritten.write(target, run)?;
    Ok(true)
}

/// Vectors made since the last commit, not yet written: they go to the sink together just
/// before a commit, so the vector shard is opened once per commit rather than once per
/// group (a local shard's open reads its segments: tens to hundreds of ms on a large index).
/// The files they belong to already say their vectors are in, which only a commit records.
#[derive(Default)]
struct Unwritten {
    chunks: Vec<Chunk>,
    /// `vectors[i]` is the vector of `chunks[i]`.
    vectors: Vec<Vec<f32>>,
}

impl Unwritten {
    fn add(&mut self, embedded: Vec<(&Chunk, Vec<f32>)>) {
        for (chunk, vector) in embedded {
            self.chunks.push(chunk.clone());
            self.vectors.push(vector);
        }
    }

    fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Writes every vector held to `target` (uncommitted) and lets go of them.
    fn write<T: Ledger + IndexSink>(
        &mut self,
        target: &mut T,
        run: &mut Run<'_>,
    ) -> Result<(), IndexError> {
        if self.chunks.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.chunks);
        let vectors = std::mem::take(&mut self.vectors);
        let by_id: VectorsById<'_> = chunks
            .iter()
            .zip(&vectors)
            .map(|(chunk, vector)| (chunk.id.as_str(), vector.as_slice()))
            .collect();
        target.write_vectors(&chunks, &by_id)?;
        failpoint::hit("vector-phase-write");
        run.report.vectors_written += by_id.len();
        Ok(())
    }
}

/// The chunks of `group`'s files as they were written, from the files that still hold the
/// content the manifest records. A file that changed (or went) since is left pending with
/// its mtime cleared, so the next scan re-reads it.
fn reread(run: &mut Run<'_>, group: &[Candidate]) -> Vec<Chunk> {
    let candidates: Vec<&Candidate> = group.iter().collect();
    let results = read_batch(
        &candidates,
        &Default::default(),
        &BTreeSet::new(),
        &run.manifest.settings,
        &ApproxTokenCounter,
    );
    let mut chunks = Vec::new();
    for (candidate, result) in results {
        let Some(entry) = run.manifest.files.get_mut(&candidate.rel_path) else {
            continue;
        };
        match result {
            FileResult::Indexed {
                entry: fresh,
                chunks: read,
            } if fresh.hash == entry.hash && fresh.chunks == entry.chunks => chunks.extend(read),
            _ => entry.mtime_ns = 0,
        }
    }
    chunks
}
