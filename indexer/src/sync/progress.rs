//! What a sync in flight is doing, for other processes: `quarry status`, and searches that
//! run while an index is being built.
//!
//! The writer keeps `.quarry/progress.json` up to date from its [`SyncEvent`]s (at most a
//! few times a second, and at every change of phase) and removes it when the sync returns.
//! A reader believes the file only while the writer lock is held by another process
//! ([`SyncProgress::of_writer`]): a file left by a killed writer is never shown as a run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{SyncEvent, now_secs};
use crate::layout::{IndexLayout, remove_file_if_present, write_atomically};

/// Least time between two writes of the file within one phase.
const WRITE_EVERY: Duration = Duration::from_millis(500);

/// Which part of a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Walking the tree and comparing it with the manifest.
    Scanning,
    /// Chunking changed files into the keyword index (and the code graph).
    Keyword,
    /// Embedding the chunks that lack vectors; everything is searchable by keyword.
    Vectors,
}

impl Phase {
    /// The phase in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Scanning => "scanning",
            Phase::Keyword => "keyword",
            Phase::Vectors => "vectors",
        }
    }
}

/// A snapshot of a sync in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// The writing process.
    pub pid: u32,
    /// What it does now.
    pub phase: Phase,
    /// When the sync started and when this snapshot was taken, seconds since the epoch.
    pub started_at: u64,
    pub updated_at: u64,
    /// Files of the current phase done, and to do in all.
    pub files_done: usize,
    pub files_total: usize,
    /// Chunks written to the keyword index so far.
    pub chunks: usize,
    /// Chunks of the vector phase done, and to do in all (0 before it starts).
    pub vector_chunks_done: usize,
    pub vector_chunks_total: usize,
    /// Chunks per second in the current phase.
    pub rate: f64,
    /// Seconds the current phase still needs at that rate, when it can be told.
    pub eta_secs: Option<u64>,
}

impl SyncProgress {
    /// The progress of the sync another process is running on `layout`'s index, or `None`
    /// when no other process writes it (or it has not said yet).
    pub fn of_writer(layout: &IndexLayout) -> Option<SyncProgress> {
        if !layout.is_locked_by_another_process() {
            return None;
        }
        let bytes = std::fs::read(layout.progress_file()).ok()?;
        let progress: SyncProgress = serde_json::from_slice(&bytes).ok()?;
        (Some(progress.pid) == layout.lock_holder()).then_some(progress)
    }

    /// One line: `vectors phase: 1,200 of 4,000 chunks (45/s, about 1 min left)`.
    pub fn describe(&self) -> String {
        let (done, total, unit) = match self.phase {
            Phase::Scanning => return "scanning files".to_string(),
            Phase::Keyword => (self.files_done, self.files_total, "files"),
            Phase::Vectors => (self.vector_chunks_done, self.vector_chunks_total, "chunks"),
        };
        let mut line = format!("{} phase: {done} of {total} {unit}", self.phase.as_str());
        if self.rate > 0.0 {
            line.push_str(&format!(" ({:.0} chunks/s", self.rate));
            if let Some(eta) = self.eta_secs {
                line.push_str(&format!(", about {} left", human_secs(eta)));
            }
            line.push(')');
        }
        line
    }
}

fn human_secs(secs: u64) -> String {
    if secs < 90 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

/// Keeps a sync's progress file in step with its events; removes it when dropped.
pub(crate) struct ProgressFile {
    path: PathBuf,
    progress: SyncProgress,
    phase_started: Instant,
    /// Chunks counted at the start of the phase, so the rate is this phase's.
    phase_base: usize,
    last_write: Option<Instant>,
}

impl ProgressFile {
    pub(crate) fn start(layout: &IndexLayout) -> Self {
        let now = now_secs();
        let mut file = ProgressFile {
            path: layout.progress_file(),
            progress: SyncProgress {
                pid: std::process::id(),
                phase: Phase::Scanning,
                started_at: now,
                updated_at: now,
                files_done: 0,
                files_total: 0,
                chunks: 0,
                vector_chunks_done: 0,
                vector_chunks_total: 0,
                rate: 0.0,
                eta_secs: None,
            },
            phase_started: Instant::now(),
            phase_base: 0,
            last_write: None,
        };
        file.write();
        file
    }

    /// Records `event`; writes the file on a change of phase or when the last write is old.
    pub(crate) fn record(&mut self, event: &SyncEvent) {
        let p = &mut self.progress;
        let before = p.phase;
        let (phase, done) = match *event {
            SyncEvent::Scanned { to_index, .. } => {
                p.files_total = to_index;
                (Phase::Keyword, 0)
            }
            SyncEvent::Indexed {
                files_done,
                files_total,
                chunks,
                ..
            } => {
                (p.files_done, p.files_total, p.chunks) = (files_done, files_total, chunks);
                (Phase::Keyword, chunks)
            }
            SyncEvent::Embedding {
                files_done,
                files_total,
                chunks_done,
                chunks_total,
                ..
            } => {
                (p.files_done, p.files_total) = (files_done, files_total);
                (p.vector_chunks_done, p.vector_chunks_total) = (chunks_done, chunks_total);
                (Phase::Vectors, chunks_done)
            }
            SyncEvent::Rebuilding { .. } | SyncEvent::Repairing { .. } => return,
        };
        if phase != before {
            p.phase = phase;
            self.phase_started = Instant::now();
            self.phase_base = done;
        }
        let secs = self.phase_started.elapsed().as_secs_f64();
        let p = &mut self.progress;
        p.rate = if secs > 0.5 {
            (done - self.phase_base.min(done)) as f64 / secs
        } else {
            0.0
        };
        p.eta_secs = (p.phase == Phase::Vectors && p.rate > 0.0).then(|| {
            let left = p.vector_chunks_total.saturating_sub(p.vector_chunks_done);
            (left as f64 / p.rate).ceil() as u64
        });
        let due = self.last_write.is_none_or(|at| at.elapsed() >= WRITE_EVERY);
        if phase != before || due {
            self.write();
        }
    }

    fn write(&mut self) {
        self.progress.updated_at = now_secs();
        if let Ok(bytes) = serde_json::to_vec(&self.progress) {
            // Progress is a courtesy to other processes: failing to write it never fails a sync.
            if let Err(e) = write_atomically(&self.path, &bytes) {
                tracing::debug!("progress not written: {e}");
            }
        }
        self.last_write = Some(Instant::now());
    }
}

impl Drop for ProgressFile {
    fn drop(&mut self) {
        let _ = remove_file_if_present(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, IndexLayout) {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = IndexLayout::new(dir.path(), None).expect("layout");
        std::fs::create_dir_all(&layout.dir).expect("index dir");
        (dir, layout)
    }

    fn read(layout: &IndexLayout) -> SyncProgress {
        let bytes = std::fs::read(layout.progress_file()).expect("progress file");
        serde_json::from_slice(&bytes).expect("progress json")
    }

    #[test]
    fn phases_follow_the_events_and_the_file_goes_with_the_sync() {
        let (_dir, layout) = layout();
        let mut file = ProgressFile::start(&layout);
        assert_eq!(read(&layout).phase, Phase::Scanning);
        file.record(&SyncEvent::Scanned {
            files: 10,
            to_index: 8,
        });
        let seen = read(&layout);
        assert_eq!((seen.phase, seen.files_total), (Phase::Keyword, 8));
        file.record(&SyncEvent::Embedding {
            files_done: 2,
            files_total: 8,
            chunks_done: 30,
            chunks_total: 120,
            embedded: 30,
            cached: 0,
        });
        let seen = read(&layout);
        assert_eq!(seen.phase, Phase::Vectors);
        assert_eq!(
            (seen.vector_chunks_done, seen.vector_chunks_total),
            (30, 120)
        );
        assert!(
            seen.describe()
                .starts_with("vectors phase: 30 of 120 chunks")
        );
        drop(file);
        assert!(!layout.progress_file().exists());
    }

    #[test]
    fn a_file_without_a_live_writer_is_not_a_run() {
        let (_dir, layout) = layout();
        let file = ProgressFile::start(&layout);
        // This process writes it but holds no lock: nobody else is writing.
        assert!(SyncProgress::of_writer(&layout).is_none());
        std::mem::forget(file);
    }
}
