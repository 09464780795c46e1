//! What the orchestrator needs from the index: context for a prompt, a map of the
//! repository, and a refresh after a task wrote files, so the tasks that start later retrieve
//! the code as it is now.
//!
//! [`CodeIndex`] is the seam. [`LocalIndex`] opens the index in this process and holds its
//! writer lock for the run; the CLI puts a running daemon behind the same trait.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use quarry_indexer::IndexLayout;
use quarry_indexer::embed::onnx::{ModelSource, OnnxEmbedder};
use quarry_indexer::embed::{Embedder, SharedEmbedder};
use quarry_indexer::layout::WriterLock;
use quarry_indexer::sync::{SyncOptions, VectorModel, sync_holding};
use quarry_retriever::{ContextPack, Mode, Retriever, SearchRequest};

use super::EditError;

/// The index as the orchestrator uses it.
#[async_trait]
pub trait CodeIndex: Send + Sync {
    /// The best context for `request`, packed into `budget` estimated tokens.
    async fn pack(&self, request: SearchRequest, budget: usize) -> Result<ContextPack, EditError>;
    /// Files with the names they define, `priority` first, within `budget` tokens.
    async fn repo_map(&self, priority: Vec<String>, budget: usize) -> Result<String, EditError>;
    /// Re-indexes what changed on disk.
    async fn refresh(&self) -> Result<(), EditError>;
    /// The embedding model, when this process holds one (for long-term memory).
    fn embedder(&self) -> Option<SharedEmbedder> {
        None
    }
}

fn index_error(e: impl std::fmt::Display) -> EditError {
    EditError::Index(e.to_string())
}

struct LocalState {
    lock: WriterLock,
    embedder: Option<SharedEmbedder>,
    retriever: Option<Retriever>,
}

/// The index opened in this process, its writer lock held until dropped.
pub struct LocalIndex {
    layout: IndexLayout,
    state: Arc<Mutex<LocalState>>,
}

impl LocalIndex {
    /// Opens the index at `layout`: takes its writer lock, loads the embedding model when
    /// the index has vectors, and brings it up to date.
    pub async fn open(layout: IndexLayout) -> Result<Self, EditError> {
        let opened = layout.clone();
        let state = tokio::task::spawn_blocking(move || -> Result<LocalState, EditError> {
            opened.check_readable().map_err(index_error)?;
            let lock = WriterLock::acquire(&opened).map_err(index_error)?;
            let embedder = match VectorModel::load(&opened) {
                Some(_) => Some(SharedEmbedder::new(Box::new(
                    OnnxEmbedder::load(&ModelSource::from_env()).map_err(index_error)?,
                ))),
                None => None,
            };
            Ok(LocalState {
                lock,
                embedder,
                retriever: None,
            })
        })
        .await
        .map_err(index_error)??;
        let index = LocalIndex {
            layout,
            state: Arc::new(Mutex::new(state)),
        };
        index.refresh().await?;
        Ok(index)
    }

    /// Runs `work` on the state in the blocking pool.
    async fn with_state<T: Send + 'static>(
        &self,
        work: impl FnOnce(&IndexLayout, &mut LocalState) -> Result<T, EditError> + Send + 'static,
    ) -> Result<T, EditError> {
        let state = Arc::clone(&self.state);
        let layout = self.layout.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            work(&layout, &mut state)
        })
        .await
        .map_err(index_error)?
    }
}

fn open_retriever(layout: &IndexLayout, state: &mut LocalState) -> Result<(), EditError> {
    let retriever = Retriever::open(layout).map_err(index_error)?;
    state.retriever = Some(match &state.embedder {
        Some(embedder) => retriever
            .with_embedder(Box::new(embedder.clone()))
            .map_err(index_error)?,
        None => retriever,
    });
    Ok(())
}

#[async_trait]
impl CodeIndex for LocalIndex {
    async fn pack(&self, request: SearchRequest, budget: usize) -> Result<ContextPack, EditError> {
        self.with_state(move |layout, state| {
            if state.retriever.is_none() {
                open_retriever(layout, state)?;
            }
            let mode = if state.embedder.is_some() {
                request.mode
            } else {
                Mode::Keyword
            };
            let retriever = state
                .retriever
                .as_mut()
                .ok_or_else(|| EditError::Index("the index is not open".to_string()))?;
            retriever
                .pack_context(&SearchRequest { mode, ..request }, budget)
                .map_err(index_error)
        })
        .await
    }

    async fn repo_map(&self, priority: Vec<String>, budget: usize) -> Result<String, EditError> {
        self.with_state(move |layout, state| {
            if state.retriever.is_none() {
                open_retriever(layout, state)?;
            }
            let retriever = state
                .retriever
                .as_ref()
                .ok_or_else(|| EditError::Index("the index is not open".to_string()))?;
            retriever.repo_map(&priority, budget).map_err(index_error)
        })
        .await
    }

    fn embedder(&self) -> Option<SharedEmbedder> {
        self.state
            .lock()
            .ok()
            .and_then(|state| state.embedder.clone())
    }

    async fn refresh(&self) -> Result<(), EditError> {
        self.with_state(|layout, state| {
            // The vector shard has one owner at a time: close the search handle first.
            state.retriever = None;
            let mut embedder = state.embedder.clone();
            sync_holding(
                &state.lock,
                layout,
                &SyncOptions::default(),
                embedder.as_mut().map(|e| e as &mut dyn Embedder),
                &mut |_| {},
            )
            .map_err(index_error)?;
            open_retriever(layout, state)
        })
        .await
    }
}
