//! Reading a repository's first-parent history with gix: for each commit its id, date,
//! message and the paths it changed with their added and removed line counts.

use std::collections::HashSet;
use std::path::Path;

use gix::bstr::ByteSlice;

/// One changed path of a commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangedPath {
    /// Path relative to the repository root.
    pub path: String,
    /// Lines added (0 for binary files).
    pub added: u32,
    /// Lines removed (0 for binary files).
    pub removed: u32,
}

/// One commit as the history index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// Full hex id.
    pub id: String,
    /// Author date, seconds since the epoch.
    pub time: i64,
    /// The first line of the message.
    pub subject: String,
    /// The rest of the message.
    pub body: String,
    /// Paths changed against the first parent; empty for merges (message only).
    pub paths: Vec<ChangedPath>,
    /// Whether it has more than one parent.
    pub merge: bool,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The commit HEAD points to, if any.
    pub head: Option<String>,
    /// Commits not yet known, newest first.
    pub commits: Vec<CommitRecord>,
    /// The known commit the walk stopped at, if it met one.
    pub met_known: Option<String>,
    /// The walk stopped at a missing parent (a shallow clone's boundary).
    pub shallow: bool,
}

/// Why history could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read git history of {root}: {reason}")]
pub struct GitError {
    /// The repository.
    pub root: String,
    /// What failed.
    pub reason: String,
}

/// Whether `root` is (inside) a git repository's work tree.
pub fn has_repository(root: &Path) -> bool {
    gix::discover(root).is_ok()
}

/// Walks HEAD's first-parent history from the newest commit, at most `depth` commits, and
/// stops early at the first commit in `known` (already indexed).
pub fn walk_first_parent(
    root: &Path,
    depth: usize,
    known: &HashSet<String>,
) -> Result<Walk, GitError> {
    let error = |reason: String| GitError {
        root: root.display().to_string(),
        reason,
    };
    let repo = gix::discover(root).map_err(|e| error(e.to_string()))?;
    let mut walk = Walk::default();
    let head = match repo.head_commit() {
        Ok(commit) => commit,
        // An unborn branch: no history yet.
        Err(_) => return Ok(walk),
    };
    walk.head = Some(head.id.to_string());
    let mut cache = repo
        .diff_resource_cache_for_tree_diff()
        .map_err(|e| error(e.to_string()))?;
    let mut current = Some(head);
    while let Some(commit) = current.take() {
        let id = commit.id.to_string();
        if known.contains(&id) {
            walk.met_known = Some(id);
            break;
        }
        if walk.commits.len() >= depth {
            break;
        }
        let message = commit.message().map_err(|e| error(e.to_string()))?;
        let subject = message.summary().to_str_lossy().trim().to_string();
        let body = message
            .body()
            .map(|b| b.without_trailer().to_str_lossy().trim().to_string())
            .unwrap_or_default();
        let time = commit
            .author()
            .and_then(|a| a.time())
            .map(|t| t.seconds)
            .unwrap_or(0);
        let parents: Vec<gix::ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        let merge = parents.len() > 1;
        let parent = match parents.first() {
            Some(id) => match repo.find_commit(*id) {
                Ok(parent) => Some(parent),
                Err(_) => {
                    walk.shallow = true;
                    None
                }
            },
            None => None,
        };
        let paths = if merge {
            Vec::new()
        } else {
            let new_tree = commit.tree().map_err(|e| error(e.to_string()))?;
            let old_tree = match &parent {
                Some(parent) => parent.tree().map_err(|e| error(e.to_string()))?,
                None => repo.empty_tree(),
            };
            changed_paths(&old_tree, &new_tree, &mut cache).map_err(error)?
        };
        walk.commits.push(CommitRecord {
            id,
            time,
            subject,
            body,
            paths,
            merge,
        });
        current = parent;
    }
    Ok(walk)
}

fn changed_paths(
    old: &gix::Tree<'_>,
    new: &gix::Tree<'_>,
    cache: &mut gix::diff::blob::Platform,
) -> Result<Vec<ChangedPath>, String> {
    let mut paths = Vec::new();
    let mut changes = old.changes().map_err(|e| e.to_string())?;
    changes.options(|options| {
        options.track_path().track_rewrites(None);
    });
    changes
        .for_each_to_obtain_tree(new, |change| {
            if change.entry_mode().is_blob() {
                let counts = change
                    .diff(cache)
                    .ok()
                    .and_then(|mut platform| platform.line_counts().ok())
                    .flatten();
                paths.push(ChangedPath {
                    path: change.location().to_str_lossy().to_string(),
                    added: counts.map_or(0, |c| c.insertions),
                    removed: counts.map_or(0, |c| c.removals),
                });
            }
            cache.clear_resource_cache_keep_allocation();
            Ok::<_, gix::Error>(std::ops::ControlFlow::Continue(()))
        })
        .map_err(|e| e.to_string())?;
    Ok(paths)
}

/// The commit checked out at `root`, if it is a git work tree with one.
pub fn head_commit(root: &Path) -> Option<String> {
    let repo = gix::discover(root).ok()?;
    let id = repo.head_id().ok()?;
    Some(id.to_string())
}

/// How far the indexed commit is behind `root`'s HEAD, along first parents: `Some(0)` when
/// it is HEAD, `None` when it is not in the first 10,000 commits of HEAD's history.
pub fn commits_behind(root: &Path, indexed: &str) -> Option<usize> {
    let repo = gix::discover(root).ok()?;
    let mut current = repo.head_commit().ok()?;
    for behind in 0..10_000 {
        if current.id == indexed {
            return Some(behind);
        }
        let parent = current.parent_ids().next()?;
        current = parent.object().ok()?.try_into_commit().ok()?;
    }
    None
}
