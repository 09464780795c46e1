//! The indexer's typed errors. Each message names the thing that went wrong and, where the
//! user can do something about it, what to do.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while indexing or opening an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The path to index or search does not exist.
    #[error("path does not exist: {}", .0.display())]
    NotFound(PathBuf),
    /// The path to index is a file, not a directory.
    #[error("not a directory: {}; point quarry at the repository's root folder", .0.display())]
    NotADirectory(PathBuf),
    /// No index has been built for this root yet.
    #[error("no index at {}; run `quarry index {}` first", .index_dir.display(), .root.display())]
    NoIndex {
        /// The repository root searched from.
        root: PathBuf,
        /// Where the index was expected.
        index_dir: PathBuf,
    },
    /// The index exists but cannot be read as it is.
    #[error("index at {} is corrupt ({reason}); run `quarry index` to rebuild it", .index_dir.display())]
    Corrupt {
        /// The index directory.
        index_dir: PathBuf,
        /// What was found to be wrong.
        reason: String,
    },
    /// The index exists but this user or this file system cannot open it as needed: a
    /// read-only mount, another user's index. Nothing is wrong with it; rebuilding would not
    /// help and could destroy a shared index.
    #[error("index at {} cannot be opened: {reason}", .index_dir.display())]
    Unreadable {
        /// The index directory.
        index_dir: PathBuf,
        /// What the system refused, and what to do.
        reason: String,
    },
    /// An index directory that cannot hold an index for this root.
    #[error("--index-dir {}: {reason}", .dir.display())]
    BadIndexDir {
        /// The directory given.
        dir: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The index was written by a Quarry with another schema.
    #[error(
        "index at {} has schema version {found}, this quarry needs {expected}; run `quarry index` to rebuild it",
        .index_dir.display()
    )]
    SchemaMismatch {
        /// The index directory.
        index_dir: PathBuf,
        /// The version on disk.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// Another process holds the writer lock.
    #[error(
        "index at {} is being written by another quarry process{}; wait for it to finish or stop it",
        .index_dir.display(),
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The index directory.
        index_dir: PathBuf,
        /// The holder's pid, when it wrote one.
        pid: Option<u32>,
    },
    /// Another process kept the vector shard open past a sync's wait for its lease.
    #[error(
        "the vector store of the index at {} is held open by another quarry process (a search, or an MCP server); try again when it is done",
        .index_dir.display()
    )]
    ShardBusy {
        /// The index directory.
        index_dir: PathBuf,
    },
    /// A file system operation failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done (`reading`, `creating`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The sync was cancelled; what it finished is committed.
    #[error(
        "interrupted after {files_done} of {files_total} files; run `quarry index` again to finish (finished work is kept)"
    )]
    Interrupted {
        /// Files committed.
        files_done: usize,
        /// Files the sync had to do.
        files_total: usize,
    },
    /// Embedding chunks failed.
    #[error("{reason}")]
    Embed {
        /// What the embedder said.
        reason: String,
    },
    /// A Qdrant server could not do what was asked (down, unreachable, silent, refusing).
    #[error("Qdrant server at {url}: {action} failed: {reason}")]
    Server {
        /// The server's URL.
        url: String,
        /// What was being done (`connecting`, `writing points`, ...).
        action: String,
        /// What went wrong.
        reason: String,
    },
    /// A team index's collection does not fit this index (another model, other dims, not
    /// written by Quarry), or does not exist where it must.
    #[error("{0}")]
    Collection(String),
    /// The keyword index reported an error.
    #[error("keyword index: {0}")]
    Keyword(#[from] tantivy::TantivyError),
}

impl IndexError {
    /// The error for a store of the index at `index_dir` that failed to open with `cause`:
    /// [`IndexError::Unreadable`] when the system refused access (permissions, a read-only
    /// file system), [`IndexError::Corrupt`] for anything else.
    pub fn opening(index_dir: &std::path::Path, what: &str, cause: impl std::fmt::Display) -> Self {
        let text = cause.to_string();
        let lower = text.to_ascii_lowercase();
        let refused = if lower.contains("read-only file system")
            || lower.contains("readonlyfilesystem")
            || lower.contains("os error 30")
        {
            Some(
                "it is on a read-only file system and this search needs to write beside it; use --mode keyword, or copy the index somewhere writable",
            )
        } else if lower.contains("permission denied")
            || lower.contains("permissiondenied")
            || lower.contains("os error 13")
        {
            Some(
                "permission denied (is it another user's index?); ask its owner for access, or index the repository with an --index-dir of your own",
            )
        } else {
            None
        };
        match refused {
            Some(advice) => IndexError::Unreadable {
                index_dir: index_dir.to_path_buf(),
                reason: format!("{what}: {advice}"),
            },
            None => IndexError::Corrupt {
                index_dir: index_dir.to_path_buf(),
                reason: format!("{what} unreadable: {text}"),
            },
        }
    }

    /// Wraps an I/O error with what was being done to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| IndexError::Io {
            action,
            path,
            source,
        }
    }
}
