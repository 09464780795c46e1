//! Long-term memory: project notes and the outcomes of past edit runs, recalled into later
//! prompts when they bear on the request.
//!
//! Notes live in `.quarry/memory/notes.json` (the source of truth, small and readable) and,
//! when the index has an embedding model, as vectors in their own Qdrant Edge collection
//! beside the code's (`.quarry/memory/vectors`). Recall takes the notes nearest to the
//! request by embedding and adds those that share words with it, so it works on a
//! keyword-only index too. A user adds conventions with `quarry memory add`; every edit run
//! adds its summary and the facts its tasks recorded.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use quarry_indexer::embed::Embedder;
use quarry_indexer::vector::edge::EdgeVectorStore;
use quarry_indexer::vector::{VectorFilter, VectorPoint, VectorStore};
use quarry_indexer::{Chunk, ChunkKind};
use serde::{Deserialize, Serialize};

use quarry_indexer::layout::replace_file;

/// Cosine similarity above which a note counts as relevant.
const MIN_SIMILARITY: f32 = 0.35;
/// Longest note kept, in characters.
const MAX_NOTE_CHARS: usize = 1200;

/// Why memory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A file could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The vector collection failed.
    #[error("memory vectors: {0}")]
    Vectors(String),
    /// No note has that id.
    #[error("no memory note `{0}`; `quarry memory list` shows them")]
    NoSuchNote(String),
    /// An empty note.
    #[error("empty note; say what Quarry should remember")]
    Empty,
}

/// Who wrote a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteSource {
    /// `quarry memory add`.
    User,
    /// An edit run's summary.
    Run,
}

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Short id (8 hex digits).
    pub id: String,
    /// What to remember.
    pub text: String,
    /// Who wrote it.
    pub source: NoteSource,
    /// The run it came from.
    pub run: Option<String>,
    /// When it was written (RFC 3339).
    pub created_at: String,
}

/// The memory of one index.
pub struct Memory {
    dir: PathBuf,
    index_dir: PathBuf,
    _lock: File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MemoryError + '_ {
    move |e| MemoryError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn words(text: &str) -> BTreeSet<String> {
    const STOP: [&str; 24] = [
        "the", "a", "an", "and", "or", "to", "of", "in", "on", "for", "with", "is", "are", "be",
        "it", "this", "that", "use", "add", "make", "from", "by", "as", "all",
    ];
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// A note as a chunk, so it can live in a vector store.
fn as_chunk(note: &Note) -> Chunk {
    Chunk {
        graph: Default::default(),
        id: blake3::hash(format!("{}\n{}", note.id, note.text).as_bytes()).to_hex()[..32]
            .to_string(),
        path: format!("memory/{}", note.id),
        lang: "memory".to_string(),
        kind: ChunkKind::Text,
        symbol: None,
        signature: None,
        doc: None,
        context: None,
        start_line: 1,
        end_line: 1,
        start_byte: 0,
        end_byte: note.text.len(),
        text: note.text.clone(),
    }
}

impl Memory {
    /// Opens (creating) the memory of the index at `index_dir`, holding its lock until
    /// dropped so two processes never write it at once.
    pub fn open(index_dir: &Path) -> Result<Self, MemoryError> {
        let dir = index_dir.join("memory");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        Ok(Memory {
            dir,
            index_dir: index_dir.to_path_buf(),
            _lock: lock,
        })
    }

    fn notes_file(&self) -> PathBuf {
        self.dir.join("notes.json")
    }

    /// Every note, oldest first.
    pub fn list(&self) -> Result<Vec<Note>, MemoryError> {
        let path = self.notes_file();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| MemoryError::Io {
                path,
                reason: format!("not a notes file Quarry can read: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn save(&self, notes: &[Note]) -> Result<(), MemoryError> {
        let path = self.notes_file();
        let text = serde_json::to_vec_pretty(notes).map_err(|e| MemoryError::Io {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        replace_file(&path, &text).map_err(io(&path))
    }

    fn vectors(&self, dims: usize) -> Result<EdgeVectorStore, MemoryError> {
        EdgeVectorStore::open_or_create(&self.dir.join("vectors"), &self.index_dir, dims)
            .map_err(|e| MemoryError::Vectors(e.to_string()))
    }

    /// Adds a note (embedded when `embedder` is given) and returns it.
    pub fn add(
        &self,
        text: &str,
        source: NoteSource,
        run: Option<&str>,
        embedder: Option<&mut dyn Embedder>,
    ) -> Result<Note, MemoryError> {
        let text: String = text.trim().chars().take(MAX_NOTE_CHARS).collect();
        if text.is_empty() {
            return Err(MemoryError::Empty);
        }
        let mut notes = self.list()?;
        let now = crate::llm::trace::now_rfc3339();
        let id = blake3::hash(format!("{now}\n{text}\n{}", notes.len()).as_bytes()).to_hex()[..8]
            .to_string();
        let note = Note {
            id,
            text,
            source,
            run: run.map(str::to_string),
            created_at: now,
        };
        notes.push(note.clone());
        self.save(&notes)?;
        if let Some(embedder) = embedder {
            self.embed(std::slice::from_ref(&note), embedder)?;
        }
        Ok(note)
    }

    fn embed(&self, notes: &[Note], embedder: &mut dyn Embedder) -> Result<(), MemoryError> {
        let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
        let vectors = embedder
            .embed(&texts)
            .map_err(|e| MemoryError::Vectors(e.to_string()))?;
        let chunks: Vec<Chunk> = notes.iter().map(as_chunk).collect();
        let points: Vec<VectorPoint<'_>> = chunks
            .iter()
            .zip(&vectors)
            .map(|(chunk, vector)| VectorPoint { chunk, vector })
            .collect();
        let mut store = self.vectors(embedder.dims())?;
        store
            .upsert(&points)
            .and_then(|()| store.commit())
            .map_err(|e| MemoryError::Vectors(e.to_string()))
    }

    /// Removes the note `id`.
    pub fn forget(&self, id: &str) -> Result<Note, MemoryError> {
        let mut notes = self.list()?;
        let at = notes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| MemoryError::NoSuchNote(id.to_string()))?;
        let note = notes.remove(at);
        self.save(&notes)?;
        if self.dir.join("vectors").join("edge_config.json").is_file() {
            let mut store = EdgeVectorStore::open(&self.dir.join("vectors"), &self.index_dir)
                .map_err(|e| MemoryError::Vectors(e.to_string()))?;
            store
                .delete_paths(&[format!("memory/{id}")])
                .and_then(|()| store.commit())
                .map_err(|e| MemoryError::Vectors(e.to_string()))?;
        }
        Ok(note)
    }

    /// The notes that bear on `query`, most relevant first, at most `limit`.
    pub fn recall(
        &self,
        query: &str,
        limit: usize,
        embedder: Option<&mut dyn Embedder>,
    ) -> Result<Vec<Note>, MemoryError> {
        let notes = self.list()?;
        if notes.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(f32, &Note)> = Vec::new();
        if let Some(embedder) = embedder {
            let dims = embedder.dims();
            let mut store = self.vectors(dims)?;
            // Notes added without a model (or by another model) are embedded now.
            if store.count().unwrap_or(0) as usize != notes.len() {
                drop(store);
                let _ = fs::remove_dir_all(self.dir.join("vectors"));
                self.embed(&notes, embedder)?;
                store = self.vectors(dims)?;
            }
            let query_vector = embedder
                .embed(&[query])
                .map_err(|e| MemoryError::Vectors(e.to_string()))?
                .pop()
                .unwrap_or_default();
            let hits = store
                .search(&query_vector, &VectorFilter::default(), limit)
                .map_err(|e| MemoryError::Vectors(e.to_string()))?;
            for hit in hits.into_iter().filter(|h| h.score >= MIN_SIMILARITY) {
                let id = hit.path.trim_start_matches("memory/");
                if let Some(note) = notes.iter().find(|n| n.id == id) {
                    scored.push((1.0 + hit.score, note));
                }
            }
        }
        let wanted = words(query);
        for note in &notes {
            if scored.iter().any(|(_, n)| n.id == note.id) {
                continue;
            }
            let shared = words(&note.text).intersection(&wanted).count();
            if shared > 0 {
                scored.push((shared as f32 / (1.0 + wanted.len() as f32), note));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(scored
            .into_iter()
            .take(limit)
            .map(|(_, n)| n.clone())
            .collect())
    }
}

/// Notes relevant to `query` as prompt lines, recalled in the blocking pool. Memory is a help,
/// never a reason to fail: problems are logged and give no notes.
pub async fn recall_notes(
    index_dir: PathBuf,
    query: String,
    embedder: Option<quarry_indexer::embed::SharedEmbedder>,
) -> Vec<String> {
    let recalled = tokio::task::spawn_blocking(move || {
        let memory = Memory::open(&index_dir)?;
        let mut embedder = embedder;
        memory.recall(&query, 5, embedder.as_mut().map(|e| e as &mut dyn Embedder))
    })
    .await;
    match recalled {
        Ok(Ok(notes)) => notes.into_iter().map(|n| n.text).collect(),
        Ok(Err(e)) => {
            tracing::warn!("memory not recalled: {e}");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!("memory not recalled: {e}");
            Vec::new()
        }
    }
}

/// Stores what a finished run did, so later runs can recall it. Dry runs and runs that
/// changed nothing leave no note.
pub async fn remember_run(
    index_dir: PathBuf,
    state: crate::edit::run::RunState,
    embedder: Option<quarry_indexer::embed::SharedEmbedder>,
) {
    if state.settings.dry_run || state.touched.is_empty() {
        return;
    }
    let status = serde_json::to_value(state.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut text = format!(
        "Edit run {} ({status}): {}.",
        state.id,
        state.request.trim()
    );
    if let Some(summary) = &state.summary {
        text.push_str(&format!(" {}", summary.replace('\n', "; ")));
    }
    let facts: Vec<&String> = state.tasks.values().flat_map(|t| &t.facts).collect();
    if !facts.is_empty() {
        let facts: Vec<&str> = facts.iter().map(|f| f.as_str()).collect();
        text.push_str(&format!(" Facts: {}.", facts.join("; ")));
    }
    let id = state.id.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let memory = Memory::open(&index_dir)?;
        let mut embedder = embedder;
        memory.add(
            &text,
            NoteSource::Run,
            Some(&id),
            embedder.as_mut().map(|e| e as &mut dyn Embedder),
        )
    })
    .await;
    if let Ok(Err(e)) = stored {
        tracing::warn!("run not remembered: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_added_listed_recalled_by_words_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::open(dir.path()).unwrap();
        let anyhow = memory
            .add(
                "Binaries use anyhow for errors; libraries use thiserror.",
                NoteSource::User,
                None,
                None,
            )
            .unwrap();
        memory
            .add(
                "Run 1 renamed load_config to read_config.",
                NoteSource::Run,
                Some("1"),
                None,
            )
            .unwrap();
        assert_eq!(memory.list().unwrap().len(), 2);
        let recalled = memory
            .recall("report errors from the binary", 5, None)
            .unwrap();
        assert_eq!(recalled.len(), 1);
        assert_eq!(recalled[0].id, anyhow.id);
        assert!(
            memory
                .recall("speed up the cache", 5, None)
                .unwrap()
                .is_empty()
        );
        memory.forget(&anyhow.id).unwrap();
        assert_eq!(memory.list().unwrap().len(), 1);
        assert!(matches!(
            memory.forget("nope"),
            Err(MemoryError::NoSuchNote(_))
        ));
        assert!(matches!(
            memory.add("  ", NoteSource::User, None, None),
            Err(MemoryError::Empty)
        ));
    }
}
