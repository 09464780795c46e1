//! The daemon's wire protocol: JSON lines over a Unix socket, one request and one response
//! per line, each carrying the protocol version so a client and a daemon of different
//! versions refuse each other clearly instead of misreading.

use std::path::PathBuf;

use quarry_indexer::IndexLayout;
use quarry_indexer::sync::{SettingsOverrides, SyncReport};
use quarry_retriever::{ContextPack, FileHit, GraphAnswer, GraphRequest, Hit, SearchRequest};
use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Longest socket path the OS accepts is 107 bytes; longer index paths use the temp folder.
const MAX_SOCKET_PATH: usize = 100;

/// Where the daemon of `layout` listens: `.quarry/daemon.sock`, or a per-index name in the
/// temp folder when that path is too long for a Unix socket.
pub fn socket_path(layout: &IndexLayout) -> PathBuf {
    let beside = layout.dir.join("daemon.sock");
    if beside.as_os_str().len() <= MAX_SOCKET_PATH {
        return beside;
    }
    let digest = blake3::hash(layout.dir.as_os_str().as_encoded_bytes()).to_hex();
    std::env::temp_dir().join(format!("quarry-{}.sock", &digest[..16]))
}

/// The daemon's log file.
pub fn log_path(layout: &IndexLayout) -> PathBuf {
    layout.dir.join("daemon.log")
}

/// A request, with its version.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestLine {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub v: u32,
    /// What is asked.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client can ask.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Who are you, and how fresh is the index?
    Status,
    /// Search the index.
    Search {
        /// The search.
        request: SearchRequest,
    },
    /// Rank files by their chunks (`quarry search --files`).
    SearchFiles {
        /// The search.
        request: SearchRequest,
    },
    /// Look names up in the code graph.
    Graph {
        /// The lookup.
        request: GraphRequest,
    },
    /// Retrieve and pack context for a prompt.
    Pack {
        /// The retrieval.
        request: SearchRequest,
        /// Token budget.
        budget: usize,
    },
    /// Bring the index up to date now (what `quarry index` sends while a daemon runs).
    Index {
        /// Setting changes.
        overrides: SettingsOverrides,
        /// Rebuild from scratch.
        rebuild: bool,
        /// `Some(true)`: drop vectors; `Some(false)`: build them; `None`: keep the index as
        /// it is.
        keyword_only: Option<bool>,
    },
    /// Finish the work in flight and exit.
    Stop,
}

/// A response, with its version.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseLine {
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub v: u32,
    /// The answer.
    #[serde(flatten)]
    pub response: Response,
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The daemon's state.
    Status(DaemonInfo),
    /// Search hits, with a note to show (keyword only while a long update runs).
    Hits {
        /// The hits.
        hits: Vec<Hit>,
        /// A note for stderr.
        note: Option<String>,
    },
    /// Ranked files, with a note to show (as for [`Response::Hits`]).
    Files {
        /// The files.
        files: Vec<FileHit>,
        /// A note for stderr.
        note: Option<String>,
    },
    /// What a graph lookup found.
    Graph {
        /// The answer.
        answer: GraphAnswer,
    },
    /// Packed context.
    Pack {
        /// The pack.
        pack: ContextPack,
    },
    /// What an index request did.
    Indexed {
        /// The sync's report.
        report: SyncReport,
    },
    /// The daemon is stopping.
    Stopping,
    /// The request failed; the message is one line for the user.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// What `quarry status` shows about a running daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaemonInfo {
    /// Its process id.
    pub pid: u32,
    /// The quarry version it runs.
    pub version: String,
    /// The repository it watches.
    pub root: PathBuf,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Changed paths seen but not indexed yet.
    pub pending_changes: usize,
    /// When the index was last brought up to date (Unix seconds).
    pub last_update: Option<u64>,
    /// How long the oldest pending change has waited, in milliseconds (0 when none).
    pub stale_ms: u64,
    /// Updates run since start.
    pub updates: u64,
    /// Whether the watcher works (false: the daemon rescans on a timer instead).
    pub watching: bool,
    /// The last update's error, if it failed.
    pub last_error: Option<String>,
    /// The embedding model kept loaded, if any.
    pub model: Option<String>,
    /// Where it logs.
    pub log: PathBuf,
}
