//! Quarry's indexer: from a repository on disk to an index that stays in step with it.
//!
//! The pipeline, in the order data flows:
//!
//! - [`walk`] finds the files worth indexing (honouring `.gitignore`, skipping binaries,
//!   secrets and oversized files, with a reason for each skip);
//! - [`chunk`] cuts each file into chunks: functions, methods, classes and impls by
//!   tree-sitter for languages in [`lang`], headings or line windows for other text;
//! - [`graph`] finds each chunk's definitions and references (the code graph), stored with
//!   the chunk;
//! - [`embed`] turns chunks into vectors (ONNX Runtime, a content-addressed vector cache);
//! - [`keyword`] is the keyword index (tantivy) and [`vector`] the seam of vector stores
//!   (Qdrant Edge in process by default);
//! - [`manifest`] remembers what was indexed from which file version, and [`sync`] uses it
//!   to re-index only what changed, in an order that survives a crash at any point;
//! - [`team`] keeps a whole index in one shared store (a Qdrant server) for a team, with
//!   the manifest in the store's ledger and BM25 as sparse vectors beside the dense ones.
//!
//! The crate never prints and never exits: it returns [`IndexError`]s and reports progress
//! through a callback, and the binary decides how to show both.

pub mod chunk;
pub mod config;
pub mod embed;
pub mod error;
pub mod graph;
pub mod heap;
pub mod keyword;
pub mod lang;
pub mod layout;
pub mod manifest;
pub mod secrets;
pub mod sync;
pub mod team;
pub mod tokens;
pub mod vector;
pub mod walk;
pub mod watch;

pub mod failpoint;
pub mod history;

pub use chunk::{Chunk, ChunkKind, ChunkSettings};
pub use error::IndexError;
pub use layout::IndexLayout;
