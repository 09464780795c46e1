//! What the orchestrator needs from the index: context for a prompt, a map of the
//! repository, the code graph, and a refresh after a task wrote files, so the tasks that start later retrieve
//! the code as it is now.
//!
//! [`CodeIndex`] is the seam. [`LocalIndex`] is the index's [`IndexOwner`] in this process
//! (writer lock, model, search handle) for the run; the CLI puts a running daemon behind the
//! same trait.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use quarry_indexer::IndexLayout;
use quarry_indexer::embed::{SharedEmbedder, VectorModel};
use quarry_indexer::sync::SyncOptions;
use quarry_retriever::{
    ContextPack, FileHit, GraphAnswer, GraphRequest, IndexOwner, Mode, SearchRequest,
};

use super::EditError;

/// The index as the orchestrator uses it.
#[async_trait]
pub trait CodeIndex: Send + Sync {
    /// The best context for `request`, packed into `budget` estimated tokens.
    async fn pack(&self, request: SearchRequest, budget: usize) -> Result<ContextPack, EditError>;
    /// The files that best match `request`, ranked by all their chunks (the file view).
    async fn files(&self, request: SearchRequest) -> Result<Vec<FileHit>, EditError>;
    /// Files with the names they define, `priority` first, within `budget` tokens.
    async fn repo_map(&self, priority: Vec<String>, budget: usize) -> Result<String, EditError>;
    /// A code-graph lookup (definitions, references, callers, callees), exhaustive.
    async fn graph(&self, request: GraphRequest) -> Result<GraphAnswer, EditError>;
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

/// The index opened in this process, its writer lock held until dropped.
pub struct LocalIndex {
    owner: Arc<Mutex<IndexOwner>>,
}

impl LocalIndex {
    /// Opens the index at `layout`: takes its writer lock, loads the embedding model when
    /// the index has vectors, and brings it up to date.
    pub async fn open(layout: IndexLayout) -> Result<Self, EditError> {
        let owner = tokio::task::spawn_blocking(move || -> Result<IndexOwner, EditError> {
            layout.check_readable().map_err(index_error)?;
            let embedder = match VectorModel::load(&layout) {
                Some(_) => Some(SharedEmbedder::configured().map_err(index_error)?),
                None => None,
            };
            IndexOwner::acquire(&layout, embedder).map_err(index_error)
        })
        .await
        .map_err(index_error)??;
        let index = LocalIndex {
            owner: Arc::new(Mutex::new(owner)),
        };
        index.refresh().await?;
        Ok(index)
    }

    /// Runs `work` on the owner in the blocking pool, then closes the search handle: the run
    /// holds the vector shard only while it searches or syncs, never while its model thinks,
    /// so searches in other processes get it in between.
    async fn with_owner<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut IndexOwner) -> Result<T, EditError> + Send + 'static,
    ) -> Result<T, EditError> {
        let owner = Arc::clone(&self.owner);
        tokio::task::spawn_blocking(move || {
            let mut owner = owner.lock().unwrap_or_else(|p| p.into_inner());
            let done = work(&mut owner);
            owner.close_reader();
            done
        })
        .await
        .map_err(index_error)?
    }
}

#[async_trait]
impl CodeIndex for LocalIndex {
    async fn pack(&self, request: SearchRequest, budget: usize) -> Result<ContextPack, EditError> {
        self.with_owner(move |owner| {
            let mode = if owner.embedder().is_some() {
                request.mode
            } else {
                Mode::Keyword
            };
            owner
                .reader()
                .map_err(index_error)?
                .pack_context(&SearchRequest { mode, ..request }, budget)
                .map_err(index_error)
        })
        .await
    }

    async fn files(&self, request: SearchRequest) -> Result<Vec<FileHit>, EditError> {
        self.with_owner(move |owner| {
            let mode = if owner.embedder().is_some() {
                request.mode
            } else {
                Mode::Keyword
            };
            owner
                .reader()
                .map_err(index_error)?
                .search_files(&SearchRequest { mode, ..request })
                .map_err(index_error)
        })
        .await
    }

    async fn repo_map(&self, priority: Vec<String>, budget: usize) -> Result<String, EditError> {
        self.with_owner(move |owner| {
            owner
                .reader()
                .map_err(index_error)?
                .repo_map(&priority, budget)
                .map_err(index_error)
        })
        .await
    }

    async fn graph(&self, request: GraphRequest) -> Result<GraphAnswer, EditError> {
        self.with_owner(move |owner| {
            owner
                .reader()
                .map_err(index_error)?
                .graph(&request)
                .map_err(index_error)
        })
        .await
    }

    fn embedder(&self) -> Option<SharedEmbedder> {
        self.owner
            .lock()
            .ok()
            .and_then(|owner| owner.embedder().cloned())
    }

    async fn refresh(&self) -> Result<(), EditError> {
        self.with_owner(|owner| {
            owner
                .sync(&SyncOptions::default(), &mut |_| {})
                .map_err(index_error)?;
            owner.reader().map_err(index_error).map(|_| ())
        })
        .await
    }
}
