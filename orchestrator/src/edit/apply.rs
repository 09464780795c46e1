//! Applying a worker's answer to the files its task owns, all or none, in memory.
//!
//! This is the one rule for turning an answer into new file contents: the worker's tasks and
//! the fixer call it through the run's [`Workspace`](super::workspace::Workspace), and the
//! robustness suite calls it the same way on real files. Nothing here writes: the result is
//! the new text of each file, or a [`Refusal`] saying why the answer was sent back, named by
//! [`RefusalReason`] and worded for the worker (with the closest lines when a SEARCH missed).
//!
//! What is tolerated, beyond [`matching`](super::matching)'s tiers for each block:
//! - a path written `./x`, or relative to a subfolder, or under extra leading folders, when
//!   it names exactly one file the task owns (`..` and absolute paths are never reinterpreted);
//! - an empty SEARCH on a file with content: the REPLACE is appended, unless it restates the
//!   file, which makes it a whole-file answer;
//! - an answer with no blocks, only fenced whole files, for files of up to
//!   [`ApplyOptions::whole_file_lines`] lines that the task owns, when the new text keeps most
//!   of the old one and leaves nothing out with `...`.
//!
//! Invariant: a block either lands at the one place its SEARCH names or the whole answer is
//! refused. A refusal never leaves a partial change behind, because nothing is written until
//! every block has applied.

use std::collections::BTreeMap;
use std::fmt;

use quarry_indexer::secrets;
use serde::Serialize;

use super::blocks::{EditBlock, FencedFile, WorkerReply, fenced_files, parse_reply};
use super::matching::{self, MatchError, MatchKind, is_elision};
use super::nearest::Region;
use super::workspace::leaves_root;

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

/// Share of an old file's non-blank lines a whole-file answer must keep (in order) to be
/// taken as the file rather than as a snippet of it.
const WHOLE_FILE_KEEPS: f64 = 0.6;

/// How one block was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockMatch {
    /// 1-based block number.
    pub block: usize,
    /// The file it changed.
    pub path: String,
    /// How its SEARCH was found.
    pub kind: MatchKind,
    /// The path as the worker wrote it, when that was not the repository's spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_path: Option<String>,
}

/// An answer that applied: the new contents and how each block was placed.
#[derive(Debug, Clone)]
pub struct Applied {
    /// New text per file.
    pub changes: FileChanges,
    /// The parsed answer (summary and facts).
    pub reply: WorkerReply,
    /// One entry per block (or whole file), in order.
    pub matches: Vec<BlockMatch>,
}

/// Why an answer was sent back, for traces and the robustness suite's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The answer is not well-formed blocks.
    Malformed,
    /// The answer holds no blocks (and no whole file that could be taken).
    NoBlocks,
    /// A block names a path the run may never write.
    PathRefused,
    /// A block's path could be more than one file the task owns.
    PathAmbiguous,
    /// A block names a file this task does not own.
    NotOwned,
    /// A block edits a file that does not exist.
    Missing,
    /// A SEARCH is nowhere in its file.
    NotFound,
    /// A SEARCH fits more than one place.
    Ambiguous,
    /// A `...` in a SEARCH that cannot be placed safely.
    Elision,
    /// A SEARCH found at another indentation whose REPLACE cannot follow.
    Reindent,
    /// A block that changes nothing (empty SEARCH and REPLACE).
    EmptyBlock,
    /// A whole-file answer that cannot be taken (too large, not the whole file, parts left out).
    WholeFile,
}

impl RefusalReason {
    /// The reason's name, as traces and the suite print it.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::NoBlocks => "no_blocks",
            RefusalReason::PathRefused => "path_refused",
            RefusalReason::PathAmbiguous => "path_ambiguous",
            RefusalReason::NotOwned => "not_owned",
            RefusalReason::Missing => "missing",
            RefusalReason::NotFound => "not_found",
            RefusalReason::Ambiguous => "ambiguous",
            RefusalReason::Elision => "elision",
            RefusalReason::Reindent => "reindent",
            RefusalReason::EmptyBlock => "empty_block",
            RefusalReason::WholeFile => "whole_file",
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
    /// For a SEARCH that matched nowhere: its file and the lines most like it.
    pub closest: Option<(String, Region)>,
}

impl Refusal {
    fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
            closest: None,
        }
    }

    fn of_block(number: usize, error: MatchError) -> Self {
        let reason = match &error {
            MatchError::NotFound { .. } => RefusalReason::NotFound,
            MatchError::Ambiguous { .. } => RefusalReason::Ambiguous,
            MatchError::Elision { .. } => RefusalReason::Elision,
            MatchError::Reindent { .. } => RefusalReason::Reindent,
        };
        let closest = match &error {
            MatchError::NotFound {
                path,
                closest: Some(region),
            } => Some((path.clone(), region.clone())),
            _ => None,
        };
        Refusal {
            reason,
            message: format!("block {number}: {error}"),
            closest,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses `answer` and applies its blocks (or, with none, its whole files) to `target` in
/// memory, all or none.
pub fn apply_answer(
    answer: &str,
    target: &dyn EditTarget,
    scope: Scope<'_>,
    options: &ApplyOptions,
) -> Result<Applied, Refusal> {
    let reply =
        parse_reply(answer).map_err(|e| Refusal::new(RefusalReason::Malformed, e.to_string()))?;
    if reply.blocks.is_empty() {
        return apply_whole_files(reply, &fenced_files(answer), target, scope, options);
    }
    let mut changes = FileChanges::new();
    let mut matches = Vec::new();
    for (n, block) in reply.blocks.iter().enumerate() {
        let number = n + 1;
        let path = resolve_path(&block.path, number, target, scope)?;
        let current = current_text(&changes, &path, number, target)?;
        let is_new = scope.new_files.contains(&path);
        if current.is_none() && !is_new && !block.search.trim().is_empty() {
            return Err(Refusal::new(
                RefusalReason::Missing,
                format!("block {number}: {path} does not exist"),
            ));
        }
        let text = current.as_deref().unwrap_or("");
        let (new_text, kind) = apply_one(text, block, &path, number, options)?;
        matches.push(BlockMatch {
            block: number,
            written_path: (block.path != path).then(|| block.path.clone()),
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

fn current_text(
    changes: &FileChanges,
    path: &str,
    number: usize,
    target: &dyn EditTarget,
) -> Result<Option<String>, Refusal> {
    match changes.get(path) {
        Some(text) => Ok(text.clone()),
        None => target
            .read(path)
            .map_err(|e| Refusal::new(RefusalReason::Missing, format!("block {number}: {e}"))),
    }
}

/// The repository path `written` names, if the task may edit it: as written, or else the one
/// owned file it names relative to a subfolder (`src/x.rs` for `crate/src/x.rs`) or under
/// extra leading folders. `..` and absolute paths are checked as written and never
/// reinterpreted.
fn resolve_path(
    written: &str,
    number: usize,
    target: &dyn EditTarget,
    scope: Scope<'_>,
) -> Result<String, Refusal> {
    let as_written = target.check_path(written, true);
    if let Ok(path) = &as_written
        && scope.owned.contains(path)
    {
        return Ok(path.clone());
    }
    let cleaned = written.trim().replace('\\', "/");
    let escapes = leaves_root(&cleaned).is_some();
    let tail = cleaned.trim_start_matches("./");
    let candidates: Vec<&String> = if escapes || tail.is_empty() {
        Vec::new()
    } else {
        scope
            .owned
            .iter()
            .filter(|owned| {
                owned.ends_with(&format!("/{tail}")) || tail.ends_with(&format!("/{owned}"))
            })
            .collect()
    };
    match candidates.as_slice() {
        [one] => target.check_path(one, true).map_err(|reason| {
            Refusal::new(
                RefusalReason::PathRefused,
                format!("block {number} targets {one}, which is refused: {reason}"),
            )
        }),
        [] => Err(match as_written {
            Err(reason) => Refusal::new(
                RefusalReason::PathRefused,
                format!("block {number} targets {written}, which is refused: {reason}"),
            ),
            Ok(path) => Refusal::new(
                RefusalReason::NotOwned,
                format!(
                    "block {number} edits {path}, but this task may only edit {}",
                    scope.owned.join(", ")
                ),
            ),
        }),
        many => Err(Refusal::new(
            RefusalReason::PathAmbiguous,
            format!(
                "block {number} names {written}, which could be any of {}; write the path from the repository root",
                many.iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// One block applied to `text`, with the secrets the worker saw redacted put back first.
fn apply_one(
    text: &str,
    block: &EditBlock,
    path: &str,
    number: usize,
    options: &ApplyOptions,
) -> Result<(String, MatchKind), Refusal> {
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
    if !search.trim().is_empty() {
        return matching::apply_block(text, search, replace, path)
            .map_err(|e| Refusal::of_block(number, e));
    }
    if text.trim().is_empty() {
        return Ok((replace.to_string(), MatchKind::NewFile));
    }
    if replace.trim().is_empty() {
        return Err(Refusal::new(
            RefusalReason::EmptyBlock,
            format!("block {number} has an empty SEARCH and an empty REPLACE: it changes nothing"),
        ));
    }
    // An empty SEARCH adds to the file, unless the REPLACE is the file again.
    if kept_share(text, replace) >= WHOLE_FILE_KEEPS {
        let new_text = whole_file(Some(text), replace, path, options)?;
        return Ok((new_text, MatchKind::WholeFile));
    }
    Ok((matching::append(text, replace), MatchKind::Append))
}

/// An answer of fenced whole files: each one's path must name a file the task owns (a lone
/// fence with no path is the task's one file).
fn apply_whole_files(
    reply: WorkerReply,
    fenced: &[FencedFile],
    target: &dyn EditTarget,
    scope: Scope<'_>,
    options: &ApplyOptions,
) -> Result<Applied, Refusal> {
    let no_blocks = || {
        Refusal::new(
            RefusalReason::NoBlocks,
            "the answer has no SEARCH/REPLACE blocks",
        )
    };
    if fenced.is_empty() || options.whole_file_lines == 0 {
        return Err(no_blocks());
    }
    let mut changes = FileChanges::new();
    let mut matches = Vec::new();
    for (n, file) in fenced.iter().enumerate() {
        let number = n + 1;
        let written = match (&file.path, scope.owned) {
            (Some(path), _) => path.clone(),
            (None, [only]) if fenced.len() == 1 => only.clone(),
            (None, _) => return Err(no_blocks()),
        };
        let path = resolve_path(&written, number, target, scope)?;
        let current = current_text(&changes, &path, number, target)?;
        if current.is_none() && !scope.new_files.contains(&path) {
            return Err(Refusal::new(
                RefusalReason::Missing,
                format!("{path} does not exist"),
            ));
        }
        let new_text = whole_file(current.as_deref(), &file.content, &path, options)?;
        matches.push(BlockMatch {
            block: number,
            written_path: (written != path).then_some(written),
            path: path.clone(),
            kind: MatchKind::WholeFile,
        });
        changes.insert(path, Some(new_text));
    }
    Ok(Applied {
        changes,
        reply,
        matches,
    })
}

/// `new` as the whole new text of a file that holds `old`, if it may be taken as that.
fn whole_file(
    old: Option<&str>,
    new: &str,
    path: &str,
    options: &ApplyOptions,
) -> Result<String, Refusal> {
    let refuse = |why: String| {
        Refusal::new(
            RefusalReason::WholeFile,
            format!(
                "the whole new {path} cannot be taken: {why}; answer with SEARCH/REPLACE blocks"
            ),
        )
    };
    let Some(old) = old else {
        return Ok(new.to_string());
    };
    let lines = old.lines().count();
    if lines > options.whole_file_lines {
        return Err(refuse(format!(
            "it has {lines} lines, and whole files are taken only up to {}",
            options.whole_file_lines
        )));
    }
    let old_lines: Vec<&str> = old.lines().map(str::trim).collect();
    if new
        .lines()
        .any(|l| is_elision(l) && !old_lines.contains(&l.trim()))
    {
        return Err(refuse("it leaves lines out with `...`".to_string()));
    }
    let kept = kept_share(old, new);
    if kept < WHOLE_FILE_KEEPS {
        return Err(refuse(format!(
            "it keeps {:.0}% of the file's lines, so it looks like a part of the file",
            kept * 100.0
        )));
    }
    Ok(if old.contains("\r\n") {
        new.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        new.to_string()
    })
}

/// Share of `old`'s non-blank lines that `new` keeps, in order.
fn kept_share(old: &str, new: &str) -> f64 {
    let old: Vec<&str> = old
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let new: Vec<&str> = new
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if old.is_empty() {
        return 0.0;
    }
    let kept: usize = similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new)
        .iter()
        .map(|op| match op {
            similar::DiffOp::Equal { len, .. } => *len,
            _ => 0,
        })
        .sum();
    kept as f64 / old.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files in memory; any relative path without `..` may be written.
    struct Memory(BTreeMap<String, String>);

    impl EditTarget for Memory {
        fn check_path(&self, path: &str, _is_new: bool) -> Result<String, String> {
            let path = path.trim().trim_start_matches("./");
            if path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err("refused".to_string());
            }
            Ok(path.to_string())
        }

        fn read(&self, path: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(path).cloned())
        }
    }

    fn repo(files: &[(&str, &str)]) -> Memory {
        Memory(
            files
                .iter()
                .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
                .collect(),
        )
    }

    fn owned(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_string()).collect()
    }

    fn run(target: &Memory, own: &[String], answer: &str) -> Result<Applied, Refusal> {
        let scope = Scope {
            owned: own,
            new_files: &[],
        };
        apply_answer(answer, target, scope, &ApplyOptions::default())
    }

    fn block(path: &str, search: &str, replace: &str) -> String {
        format!("{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
    }

    #[test]
    fn a_path_relative_to_a_subfolder_resolves_to_the_one_owned_file() {
        let target = repo(&[("shop/src/cart.rs", "fn a() {}\n")]);
        let own = owned(&["shop/src/cart.rs"]);
        let applied = run(
            &target,
            &own,
            &block("src/cart.rs", "fn a() {}\n", "fn b() {}\n"),
        )
        .unwrap();
        assert_eq!(
            applied.changes["shop/src/cart.rs"].as_deref(),
            Some("fn b() {}\n")
        );
        assert_eq!(
            applied.matches[0].written_path.as_deref(),
            Some("src/cart.rs")
        );
        // Extra leading folders work too.
        let applied = run(
            &target,
            &own,
            &block("repo/shop/src/cart.rs", "fn a() {}\n", "x\n"),
        )
        .unwrap();
        assert!(applied.changes.contains_key("shop/src/cart.rs"));
    }

    #[test]
    fn a_path_that_fits_two_owned_files_or_escapes_is_refused() {
        let target = repo(&[("a/src/lib.rs", "x\n"), ("b/src/lib.rs", "x\n")]);
        let own = owned(&["a/src/lib.rs", "b/src/lib.rs"]);
        let refusal = run(&target, &own, &block("src/lib.rs", "x\n", "y\n")).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::PathAmbiguous);
        let refusal = run(&target, &own, &block("../a/src/lib.rs", "x\n", "y\n")).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::PathRefused);
        let refusal = run(&target, &own, &block("/abs/a/src/lib.rs", "x\n", "y\n")).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::PathRefused);
    }

    #[test]
    fn a_block_for_a_file_not_owned_is_refused_and_nothing_applies() {
        let target = repo(&[("a.rs", "x\n"), ("b.rs", "y\n")]);
        let own = owned(&["a.rs"]);
        let answer = format!(
            "{}{}",
            block("a.rs", "x\n", "z\n"),
            block("b.rs", "y\n", "z\n")
        );
        let refusal = run(&target, &own, &answer).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::NotOwned);
    }

    #[test]
    fn an_empty_search_appends_unless_it_restates_the_file() {
        let text = "def a():\n    return 1\n\n\ndef b():\n    return 2\n";
        let target = repo(&[("m.py", text)]);
        let own = owned(&["m.py"]);
        let applied = run(
            &target,
            &own,
            &block("m.py", "", "\n\ndef c():\n    return 3\n"),
        )
        .unwrap();
        assert_eq!(applied.matches[0].kind, MatchKind::Append);
        assert_eq!(
            applied.changes["m.py"].as_deref(),
            Some(format!("{text}\n\ndef c():\n    return 3\n").as_str())
        );
        let rewritten = text.replace("return 2", "return 20");
        let applied = run(&target, &own, &block("m.py", "", &rewritten)).unwrap();
        assert_eq!(applied.matches[0].kind, MatchKind::WholeFile);
        assert_eq!(applied.changes["m.py"].as_deref(), Some(rewritten.as_str()));
    }

    #[test]
    fn a_whole_file_answer_is_taken_only_when_it_is_the_whole_file() {
        let text: String = (1..=20).map(|i| format!("line_{i} = {i}\n")).collect();
        let target = repo(&[("m.py", &text)]);
        let own = owned(&["m.py"]);
        let new = text.replace("line_7 = 7", "line_7 = 70");
        let applied = run(&target, &own, &format!("m.py\n```python\n{new}```\n")).unwrap();
        assert_eq!(applied.changes["m.py"].as_deref(), Some(new.as_str()));
        // A lone fence for a task's only file needs no path.
        assert!(run(&target, &own, &format!("```python\n{new}```\n")).is_ok());
        // A snippet, a file with parts left out, a file over the limit: refused.
        let snippet = run(&target, &own, "m.py\n```python\nline_7 = 70\n```\n").unwrap_err();
        assert_eq!(snippet.reason, RefusalReason::WholeFile);
        let gutted = new.replace("line_12 = 12\nline_13 = 13\n", "# ... unchanged ...\n");
        let elided = run(&target, &own, &format!("m.py\n```\n{gutted}```\n")).unwrap_err();
        assert_eq!(elided.reason, RefusalReason::WholeFile);
        let scope = Scope {
            owned: &own,
            new_files: &[],
        };
        let small = ApplyOptions {
            whole_file_lines: 10,
        };
        let large = apply_answer(&format!("m.py\n```\n{new}```\n"), &target, scope, &small);
        assert_eq!(large.unwrap_err().reason, RefusalReason::WholeFile);
        // Not owned.
        let other = repo(&[("m.py", &text), ("n.py", &text)]);
        let refusal = run(&other, &own, &format!("n.py\n```\n{new}```\n")).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::NotOwned);
    }

    #[test]
    fn a_miss_carries_the_closest_region() {
        let target = repo(&[("m.py", "def a():\n    return 1\n")]);
        let own = owned(&["m.py"]);
        let refusal = run(
            &target,
            &own,
            &block("m.py", "def a():\n    return 2\n", "x\n"),
        )
        .unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::NotFound);
        let (path, region) = refusal.closest.unwrap();
        assert_eq!(path, "m.py");
        assert_eq!((region.first_line, region.last_line), (1, 2));
        assert!(refusal.message.contains("the most similar lines are 1-2"));
    }
}
