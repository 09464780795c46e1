//! Opening an index: the one reader policy, and the one owner of an index a process writes.
//!
//! [`open_reader`] is how every command, the MCP server and the daemon's clients open a
//! local index for reading in a mode: vectors (and the model) only when the index has them
//! and the mode uses them; while another process syncs, the vectors are read between its
//! commits (a sync holds the shard's lease only from a write to the next commit) and the
//! note says how far it is ([`Fallback`]); only a shard held past the wait makes hybrid
//! answer from BM25, and vector mode refuse in one line.
//!
//! [`IndexOwner`] is what a process that writes an index holds (the daemon, an edit run):
//! the writer lock, the embedding model its syncs and searches share, and the search
//! handle. Invariant: the search handle and a sync never hold the Qdrant Edge shard at once
//! (a shard has one owner): [`IndexOwner::sync`] closes the handle, syncs, and reopens it.

use std::fmt;

use quarry_indexer::embed::{EmbedError, Embedder, ModelSlot, SharedEmbedder};
use quarry_indexer::layout::WriterLock;
use quarry_indexer::sync::progress::SyncProgress;
use quarry_indexer::sync::{SyncEvent, SyncOptions, SyncReport, sync_holding};
use quarry_indexer::team::TeamStore;
use quarry_indexer::{IndexError, IndexLayout};

use crate::{Mode, Retriever, SearchError};

/// Why a reader answers in another mode than asked, or over less than the whole index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Another process writes the index (its vector shard is the writer's until it ends):
    /// hybrid answers from BM25 alone.
    WriterBusy {
        /// What the writer said it is doing (`vectors phase: 1,200 of 4,000 chunks ...`).
        progress: Option<String>,
    },
    /// Another process writes the index and let go of its vector shard between commits:
    /// hybrid over the chunks embedded so far, keyword alone for the rest.
    PartialVectors {
        /// What the writer said it is doing.
        progress: Option<String>,
    },
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::WriterBusy { progress: None } => {
                write!(
                    f,
                    "the index is being updated; showing keyword results only"
                )
            }
            Fallback::WriterBusy {
                progress: Some(progress),
            } => write!(
                f,
                "the index is being updated ({progress}); showing keyword results over every indexed file"
            ),
            Fallback::PartialVectors { progress } => {
                write!(f, "the index is being updated")?;
                if let Some(progress) = progress {
                    write!(f, " ({progress})")?;
                }
                write!(
                    f,
                    "; hybrid over the chunks embedded so far, keyword alone for the rest"
                )
            }
        }
    }
}

/// An index opened for reading, and the mode it can serve now.
pub struct Reader {
    /// The handle.
    pub retriever: Retriever,
    /// The mode searches run in: the one asked, or keyword after a [`Fallback`].
    pub mode: Mode,
    /// Why the mode is not the one asked.
    pub fallback: Option<Fallback>,
}

impl Reader {
    /// Ends the reader of a process that exits next without closing its stores: closing the
    /// vector shard flushes and syncs its files although a reader wrote nothing (20-40 ms
    /// on Django's shard, a tenth of a cold search). The process's exit releases the shard's
    /// lease and the memory. Never for a process that goes on (a daemon, an MCP server).
    pub fn end_with_process(self) {
        std::mem::forget(self);
    }
}

/// Opens the local index at `layout` for searching in `mode`. The model comes from
/// `models` (loaded there on first use) only when the index has vectors and the mode uses
/// them; it loads on a thread of its own while the vector shard opens, so a cold search
/// pays for the slower of the two, not both. While a sync in another
/// process runs, the vectors are read between its commits (with a note of its progress); if
/// it keeps the shard longer than a search waits, hybrid falls back to keyword and vector
/// mode is [`SearchError::Busy`]. A first index that has not committed yet is
/// [`SearchError::FirstIndexRunning`], not "no index".
pub fn open_reader(
    layout: &IndexLayout,
    mode: Mode,
    models: &ModelSlot,
) -> Result<Reader, SearchError> {
    let retriever = match Retriever::open(layout) {
        Err(SearchError::Index(IndexError::NoIndex { .. }))
            if layout.is_locked_by_another_process() =>
        {
            return Err(SearchError::FirstIndexRunning {
                index_dir: layout.dir.display().to_string(),
                progress: SyncProgress::of_writer(layout)
                    .map(|p| format!(" ({})", p.describe()))
                    .unwrap_or_default(),
            });
        }
        opened => opened?,
    };
    if mode == Mode::Keyword || retriever.vector_model().is_none() {
        return Ok(Reader {
            retriever,
            mode,
            fallback: None,
        });
    }
    // A sync in another process: say what it has done (a writer that is not syncing, an edit
    // run waiting on its model, changes nothing a search sees).
    let progress = SyncProgress::of_writer(layout).map(|p| p.describe());
    // The model loads beside the shard's open, once the keyword index opened: the thread is
    // joined on every path from here, so no process exits while ONNX Runtime initialises on
    // another thread (it prints schema-registration errors under the command's own if so).
    let loading = {
        let models = models.clone();
        std::thread::spawn(move || models.get())
    };
    let opened = retriever.with_vectors();
    let embedder = loading
        .join()
        .unwrap_or_else(|_| {
            Err(EmbedError::Inference(
                "the model's loader stopped".to_string(),
            ))
        })
        .map_err(|e| SearchError::NoEmbedder(e.to_string()))?;
    match opened.and_then(|retriever| retriever.with_embedder(Box::new(embedder))) {
        Ok(retriever) => Ok(Reader {
            retriever,
            mode,
            fallback: progress.map(|progress| Fallback::PartialVectors {
                progress: Some(progress),
            }),
        }),
        Err(SearchError::Busy { .. }) if mode == Mode::Hybrid => Ok(Reader {
            retriever: Retriever::open(layout)?,
            mode: Mode::Keyword,
            fallback: Some(Fallback::WriterBusy { progress }),
        }),
        Err(e) => Err(e),
    }
}

/// Opens the team index in `store` for searching in `mode` with the model it is named
/// after (keyword mode leaves the model alone).
pub fn open_team_reader(
    layout: &IndexLayout,
    store: Box<dyn TeamStore>,
    embedder: Box<dyn Embedder>,
    mode: Mode,
) -> Result<Reader, SearchError> {
    let retriever = Retriever::open_team(layout, store)?;
    let retriever = match mode {
        Mode::Keyword => retriever,
        _ => retriever.with_embedder(embedder)?,
    };
    Ok(Reader {
        retriever,
        mode,
        fallback: None,
    })
}

/// The writer of a local index in this process: its lock, its model and its search handle.
pub struct IndexOwner {
    layout: IndexLayout,
    lock: WriterLock,
    /// The model syncs embed with and vector searches use; `None`: keyword-only.
    embedder: Option<SharedEmbedder>,
    reader: Option<Retriever>,
}

impl IndexOwner {
    /// Takes the writer lock of the index at `layout` (refused while another process holds
    /// it). `embedder` is the model of its vectors, `None` for a keyword-only index.
    pub fn acquire(
        layout: &IndexLayout,
        embedder: Option<SharedEmbedder>,
    ) -> Result<Self, IndexError> {
        let lock = WriterLock::acquire(layout)?;
        Ok(IndexOwner {
            layout: layout.clone(),
            lock,
            embedder,
            reader: None,
        })
    }

    /// The model, when the index has vectors.
    pub fn embedder(&self) -> Option<&SharedEmbedder> {
        self.embedder.as_ref()
    }

    /// Changes the model the next sync embeds with (`None`: drop the vectors).
    pub fn set_embedder(&mut self, embedder: Option<SharedEmbedder>) {
        self.embedder = embedder;
    }

    /// Brings the index up to date: the search handle is closed while the sync writes, and
    /// reopened after (whatever the sync's outcome).
    pub fn sync(
        &mut self,
        options: &SyncOptions,
        on_event: &mut dyn FnMut(SyncEvent),
    ) -> Result<SyncReport, IndexError> {
        self.reader = None;
        let mut embedder = self.embedder.clone();
        let result = sync_holding(
            &self.lock,
            &self.layout,
            options,
            embedder.as_mut().map(|e| e as &mut dyn Embedder),
            on_event,
        );
        match self.opened() {
            Ok(reader) => self.reader = Some(reader),
            Err(e) => tracing::warn!("cannot open the index for searching: {e}"),
        }
        result
    }

    /// The search handle, opened now if it is not: with vectors when the index has them and
    /// this owner holds the model.
    pub fn reader(&mut self) -> Result<&mut Retriever, SearchError> {
        let reader = match self.reader.take() {
            Some(reader) => reader,
            None => self.opened()?,
        };
        Ok(self.reader.insert(reader))
    }

    /// Closes the search handle (before the lock goes, so the next writer finds the stores
    /// flushed).
    pub fn close_reader(&mut self) {
        self.reader = None;
    }

    /// A new search handle; vector search is left out (and said in the log) when the model
    /// does not fit the index, so keyword search still answers.
    fn opened(&self) -> Result<Retriever, SearchError> {
        let retriever = Retriever::open(&self.layout)?;
        let Some(embedder) = self
            .embedder
            .as_ref()
            .filter(|_| retriever.vector_model().is_some())
        else {
            return Ok(retriever);
        };
        match retriever.with_embedder(Box::new(embedder.clone())) {
            Ok(retriever) => Ok(retriever),
            Err(e) => {
                tracing::warn!("vector search unavailable: {e}");
                Retriever::open(&self.layout)
            }
        }
    }
}
