//! Applying a worker's answer to the files its task owns, all or none, in memory.
//!
//! This is the one rule for turning an answer into new file contents: the worker's tasks and
//! the fixer call it through the run's [`Workspace`](super::workspace::Workspace), and the
//! robustness suite calls it against files in memory. Nothing here writes: the result is the
//! new text of each file, or a [`Refusal`] saying why the answer was sent back, named by
//! [`RefusalReason`] and worded for the worker.
//!
//! Invariant: a block either lands at the one place its SEARCH names or the whole answer is
//! refused. A refusal never leaves a partial change behind, because nothing is written until
//! every block has applied.

use std::collections::BTreeMap;
use std::fmt;

use quarry_indexer::secrets;
use serde::Serialize;

use super::blocks::{EditBlock, MatchError, MatchKind, WorkerReply, apply_block, parse_reply};

/// New file contents, by path (`None`: removed).
pub type FileChanges = BTreeMap<String, Option<String>>;

/// What an answer is applied against: which paths may be written, and what they hold now.
pub trait EditTarget {
    /// `path` as the repository names it (`./a//b.rs` → `a/b.rs`) if it may be written;
    /// `is_new`: it may not exist yet. The error says why not, in one line.
    fn check_path(&self, path: &str, is_new: bool) -> Result<String, String>;
    /// What `path` holds now (`None`: it does not exist).
    fn read(&self, path: &str) -> Result<Option<String>, String>;
}

/// The files one answer may touch.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Files the answer may edit (repository paths).
    pub owned: &'a [String],
    /// Of those, the ones that may not exist yet.
    pub new_files: &'a [String],
}

/// How tolerant applying is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// An answer that is a whole new file instead of blocks is taken for files of up to this
    /// many lines (0: never).
    pub whole_file_lines: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whole_file_lines: DEFAULT_WHOLE_FILE_LINES,
        }
    }
}

/// The default of [`ApplyOptions::whole_file_lines`] (`[edit] whole_file_lines`).
pub const DEFAULT_WHOLE_FILE_LINES: usize = 300;

/// How one block was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockMatch {
    /// 1-based block number.
    pub block: usize,
    /// The file it changed.
    pub path: String,
    /// How its SEARCH was found.
    pub kind: MatchKind,
}

/// An answer that applied: the new contents and how each block was placed.
#[derive(Debug, Clone)]
pub struct Applied {
    /// New text per file.
    pub changes: FileChanges,
    /// The parsed answer (summary and facts).
    pub reply: WorkerReply,
    /// One entry per block, in order.
    pub matches: Vec<BlockMatch>,
}

/// Why an answer was sent back, for traces and the robustness suite's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The answer is not well-formed blocks.
    Malformed,
    /// The answer holds no blocks.
    NoBlocks,
    /// A block names a path the run may never write.
    PathRefused,
    /// A block names a file this task does not own.
    NotOwned,
    /// A block edits a file that does not exist.
    Missing,
    /// A SEARCH is nowhere in its file.
    NotFound,
    /// A SEARCH fits more than one place.
    Ambiguous,
    /// An empty SEARCH on a file that has content.
    EmptySearch,
}

impl RefusalReason {
    /// The reason's name, as traces and the suite print it.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::NoBlocks => "no_blocks",
            RefusalReason::PathRefused => "path_refused",
            RefusalReason::NotOwned => "not_owned",
            RefusalReason::Missing => "missing",
            RefusalReason::NotFound => "not_found",
            RefusalReason::Ambiguous => "ambiguous",
            RefusalReason::EmptySearch => "empty_search",
        }
    }
}

/// An answer sent back: why, and the message the worker gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The kind of problem.
    pub reason: RefusalReason,
    /// What the worker is told.
    pub message: String,
}

impl Refusal {
    fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses `answer` and applies its blocks to `target` in memory, all or none.
pub fn apply_answer(
    answer: &str,
    target: &dyn EditTarget,
    scope: Scope<'_>,
    _options: &ApplyOptions,
) -> Result<Applied, Refusal> {
    let reply =
        parse_reply(answer).map_err(|e| Refusal::new(RefusalReason::Malformed, e.to_string()))?;
    if reply.blocks.is_empty() {
        return Err(Refusal::new(
            RefusalReason::NoBlocks,
            "the answer has no SEARCH/REPLACE blocks",
        ));
    }
    let mut changes = FileChanges::new();
    let mut matches = Vec::new();
    for (n, block) in reply.blocks.iter().enumerate() {
        let number = n + 1;
        let path = resolve_path(block, number, target, scope)?;
        let current = match changes.get(&path) {
            Some(text) => text.clone(),
            None => target.read(&path).map_err(|e| {
                Refusal::new(RefusalReason::Missing, format!("block {number}: {e}"))
            })?,
        };
        let is_new = scope.new_files.contains(&path);
        if current.is_none() && !is_new && !block.search.trim().is_empty() {
            return Err(Refusal::new(
                RefusalReason::Missing,
                format!("block {number}: {path} does not exist"),
            ));
        }
        let text = current.as_deref().unwrap_or("");
        let (new_text, kind) = apply_one(text, block, &path)
            .map_err(|e| Refusal::new(reason_of(&e), format!("block {number}: {e}")))?;
        matches.push(BlockMatch {
            block: number,
            path: path.clone(),
            kind,
        });
        changes.insert(path, Some(new_text));
    }
    Ok(Applied {
        changes,
        reply,
        matches,
    })
}

/// The repository path a block edits, if the task may edit it.
fn resolve_path(
    block: &EditBlock,
    number: usize,
    target: &dyn EditTarget,
    scope: Scope<'_>,
) -> Result<String, Refusal> {
    let path = target.check_path(&block.path, true).map_err(|reason| {
        Refusal::new(
            RefusalReason::PathRefused,
            format!(
                "block {number} targets {}, which is refused: {reason}",
                block.path
            ),
        )
    })?;
    if !scope.owned.contains(&path) {
        return Err(Refusal::new(
            RefusalReason::NotOwned,
            format!(
                "block {number} edits {path}, but this task may only edit {}",
                scope.owned.join(", ")
            ),
        ));
    }
    Ok(path)
}

/// One block applied to `text`, with the secrets the worker saw redacted put back first.
fn apply_one(text: &str, block: &EditBlock, path: &str) -> Result<(String, MatchKind), MatchError> {
    let unredacted = secrets::unredact_edit(
        text,
        secrets::TextKind::of_path(path),
        &block.search,
        &block.replace,
    );
    let (search, replace) = match &unredacted {
        Some((search, replace)) => (search.as_str(), replace.as_str()),
        None => (block.search.as_str(), block.replace.as_str()),
    };
    apply_block(text, search, replace, path)
}

fn reason_of(error: &MatchError) -> RefusalReason {
    match error {
        MatchError::NotFound { .. } => RefusalReason::NotFound,
        MatchError::Ambiguous { .. } => RefusalReason::Ambiguous,
        MatchError::EmptySearch { .. } => RefusalReason::EmptySearch,
    }
}
