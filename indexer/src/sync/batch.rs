//! One batch of a sync: files read and chunked in parallel, then the vectors of their chunks
//! (from the cache, or from the model for what it lacks).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::Instant;

use rayon::prelude::*;

use super::{SyncOptions, SyncReport};
use crate::chunk::{Chunk, LineCoverage, chunk_file};
use crate::embed::cache::VectorCache;
use crate::embed::{Embedder, cache_key, embed_text, should_embed};
use crate::manifest::{FileEntry, IndexSettings};
use crate::secrets::{self, TextKind};
use crate::tokens::TokenCounter;
use crate::walk::{Candidate, SkipReason, classify_content};
use crate::{IndexError, lang};

/// Texts handed to the embedder at once; it batches them further by similar length.
const EMBED_GROUP: usize = 64;

/// The model and its vector cache, as a sync uses them.
pub(crate) struct Embedding<'e> {
    /// Opened on the first batch with something to embed: a sync with nothing to embed
    /// never reads the cache file (tens of MB on a large repository).
    pub(crate) cache: Option<VectorCache>,
    pub(crate) cache_dir: std::path::PathBuf,
    pub(crate) embedder: &'e mut dyn Embedder,
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
        if !cache.contains(key) && queued.insert(*key) {
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
            cache.put(*key, &vector)?;
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
        if let Some(vector) = cache.get(key)? {
            out.push((*chunk, vector));
        }
    }
    report.vectors_cached += out.len().saturating_sub(missing.len());
    Ok(Some(out))
}

/// Chunks with their vectors.
pub(crate) type Embedded<'c> = Vec<(&'c Chunk, Vec<f32>)>;

/// What reading one file gave.
pub(crate) enum FileResult {
    /// The content hash matches the manifest: only the mtime moved.
    Unchanged,
    /// Left out, for this reason.
    Skipped(SkipReason),
    /// Read and chunked.
    Indexed {
        /// Its manifest entry (`vectors` still 0).
        entry: FileEntry,
        /// Its chunks.
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
    let coverage = LineCoverage::of(&redacted.text, &chunks);
    FileResult::Indexed {
        entry: FileEntry {
            size: bytes.len() as u64,
            mtime_ns: candidate.mtime_ns,
            hash,
            lang: lang::language_name(&candidate.rel_path).to_string(),
            chunks: chunks.iter().map(|c| c.id.clone()).collect(),
            vectors: 0,
            vectors_pending: false,
            redactions: redacted.counts,
            lines: coverage.lines,
            symbol_lines: coverage.symbol_lines,
        },
        chunks,
    }
}
