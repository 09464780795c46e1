//! The repository's git history beside the code: each commit of HEAD's first-parent history
//! (the last 5,000 by default) becomes a `commit` chunk (subject, body and changed paths) in
//! keyword and vector stores of its own under `.quarry/history/`, so "why is this like this"
//! and "which commit introduced that" can be searched like code.
//!
//! The commit stores are separate from the code's so the code index's invariants (every
//! chunk belongs to a file in the manifest) stay untouched and the history can be rebuilt
//! alone. `state.json` lists the indexed commits, newest first, with their changed paths; a
//! sync walks from HEAD until it meets an indexed commit, adds what is new, and drops indexed
//! commits that are no longer in HEAD's history (a rebase, an amend, a force push). No
//! repository, an unborn branch or a shallow clone are all fine: the code index does not
//! care, and the state says what history there is.

pub mod git;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::embed::Embedder;
use crate::keyword::KeywordIndex;
use crate::layout::write_atomically;
use crate::vector::edge::EdgeVectorStore;
use crate::vector::{VectorPoint, VectorStore};
use crate::{Chunk, ChunkKind, IndexError, IndexLayout};

/// Commits indexed at most, newest first.
pub const DEFAULT_DEPTH: usize = 5000;
/// Commits touching more files than this add no co-change pairs (mass renames, formatting).
const CO_CHANGE_MAX_FILES: usize = 20;
/// Texts embedded at once.
const EMBED_BATCH: usize = 64;

/// One indexed commit, as `state.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedCommit {
    /// Full hex id.
    pub id: String,
    /// Author date, seconds since the epoch.
    pub time: i64,
    /// Paths it changed (relative to the indexed root).
    pub paths: Vec<String>,
    /// Whether it is a merge (message only).
    pub merge: bool,
}

/// What the history index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryState {
    /// HEAD when last synced.
    pub head: Option<String>,
    /// Indexed commits, newest first.
    pub commits: Vec<IndexedCommit>,
    /// The walk stopped at a shallow clone's boundary.
    pub shallow: bool,
    /// The embedding model of the commit vectors, if any.
    pub embed_model: Option<String>,
    /// Most commits kept (`--history-depth`; 0 turns history off).
    #[serde(default)]
    pub depth: Option<usize>,
    /// The commit chunks had their secrets redacted; a state written before redaction is
    /// rebuilt, so no secret from an old commit message survives.
    #[serde(default)]
    pub redacted: bool,
}

/// What a history sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// Commits indexed after the sync.
    pub commits: usize,
    /// Commits added.
    pub added: usize,
    /// Commits dropped (rewritten history, or beyond the depth).
    pub removed: usize,
    /// The history was rewritten since the last sync.
    pub rewritten: bool,
    /// The history ends at a shallow clone's boundary.
    pub shallow: bool,
    /// Milliseconds the sync took.
    pub elapsed_ms: u64,
}

/// A pair of files that often change in the same commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoChange {
    /// One file.
    pub a: String,
    /// The other.
    pub b: String,
    /// Commits that changed both.
    pub commits: usize,
}

/// Where the history index lives.
pub fn history_dir(layout: &IndexLayout) -> PathBuf {
    layout.dir.join("history")
}

fn state_file(layout: &IndexLayout) -> PathBuf {
    history_dir(layout).join("state.json")
}

/// The keyword store of the commits.
pub fn keyword_dir(layout: &IndexLayout) -> PathBuf {
    history_dir(layout).join("keyword")
}

/// The vector store of the commits.
pub fn vector_dir(layout: &IndexLayout) -> PathBuf {
    history_dir(layout).join("vectors")
}

/// The history index's state, if there is one.
pub fn load_state(layout: &IndexLayout) -> Option<HistoryState> {
    let text = std::fs::read_to_string(state_file(layout)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The RFC 3339 date of a commit time.
pub fn format_date(time: i64) -> String {
    let secs = u64::try_from(time).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// A commit as a chunk: what the stores hold and search. `path` is the commit's full id (the
/// stores delete by path), `symbol` its subject, `signature` "short-id date", `doc` the body,
/// `context` the changed paths one per line.
/// A secret in a message (a token pasted into a commit body) is redacted like one in a file.
pub fn commit_chunk(commit: &git::CommitRecord) -> Chunk {
    let paths: Vec<String> = commit.paths.iter().map(|p| p.path.clone()).collect();
    let subject = crate::secrets::redact_outgoing(&commit.subject).into_owned();
    let body = crate::secrets::redact_outgoing(&commit.body).into_owned();
    let mut text = subject.clone();
    if !body.is_empty() {
        text.push_str("\n\n");
        text.push_str(&body);
    }
    if !commit.paths.is_empty() {
        text.push_str("\n\nChanged:\n");
        for path in &commit.paths {
            text.push_str(&format!(
                "{} (+{} -{})\n",
                path.path, path.added, path.removed
            ));
        }
    }
    Chunk {
        graph: Default::default(),
        id: blake3::hash(format!("commit\n{}", commit.id).as_bytes()).to_hex()[..32].to_string(),
        path: commit.id.clone(),
        lang: "git".to_string(),
        kind: ChunkKind::Commit,
        symbol: Some(subject),
        signature: Some(format!(
            "{} {}",
            &commit.id[..commit.id.len().min(10)],
            format_date(commit.time)
        )),
        doc: (!body.is_empty()).then_some(body),
        context: (!paths.is_empty()).then(|| paths.join("\n")),
        start_line: 0,
        end_line: 0,
        start_byte: 0,
        end_byte: text.len(),
        text,
    }
}

/// A commit chunk's id, date and changed paths; `None` for any other chunk.
pub fn commit_fields(chunk: &Chunk) -> Option<(String, String, Vec<String>)> {
    if chunk.kind != ChunkKind::Commit {
        return None;
    }
    let date = chunk
        .signature
        .as_deref()
        .and_then(|s| s.split_once(' '))
        .map(|(_, date)| date.to_string())
        .unwrap_or_default();
    let paths = chunk
        .context
        .as_deref()
        .map(|c| c.lines().map(str::to_string).collect())
        .unwrap_or_default();
    Some((chunk.path.clone(), date, paths))
}

/// Brings the history index in step with HEAD's first-parent history: at most `depth`
/// commits (`None` keeps the last depth, by default [`DEFAULT_DEPTH`]; 0 turns history off).
/// `None` when the root is not in a git repository. The caller holds the index's writer lock.
pub fn sync_history(
    layout: &IndexLayout,
    depth: Option<usize>,
    embedder: Option<&mut dyn Embedder>,
) -> Result<Option<HistoryReport>, IndexError> {
    if !git::has_repository(&layout.root) {
        return Ok(None);
    }
    let started = Instant::now();
    let model = embedder.as_ref().map(|e| e.model_id().to_string());
    let mut state = load_state(layout).unwrap_or_default();
    let depth = depth.or(state.depth).unwrap_or(DEFAULT_DEPTH);
    if depth == 0 {
        let dir = history_dir(layout);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(IndexError::io("removing", &dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(IndexError::io("creating", &dir))?;
        let off = HistoryState {
            depth: Some(0),
            ..HistoryState::default()
        };
        let text = serde_json::to_vec(&off).unwrap_or_default();
        write_atomically(&state_file(layout), &text)?;
        return Ok(Some(HistoryReport {
            removed: state.commits.len(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..HistoryReport::default()
        }));
    }
    let stores_exist = keyword_dir(layout).join("meta.json").is_file();
    if state.embed_model != model || !stores_exist || !state.redacted {
        // A new model (or none) means new vectors for every commit, and stores from before
        // redaction may hold secrets: start over.
        let dir = history_dir(layout);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(IndexError::io("removing", &dir))?;
        }
        state = HistoryState {
            embed_model: model.clone(),
            redacted: true,
            ..HistoryState::default()
        };
    }
    let known: HashSet<String> = state.commits.iter().map(|c| c.id.clone()).collect();
    let walk =
        git::walk_first_parent(&layout.root, depth, &known).map_err(|e| IndexError::Corrupt {
            index_dir: layout.dir.clone(),
            reason: e.to_string(),
        })?;

    // Indexed commits newer than the one the walk met are no longer in HEAD's history.
    let keep_from = match &walk.met_known {
        Some(id) => state.commits.iter().position(|c| &c.id == id).unwrap_or(0),
        None => state.commits.len(),
    };
    let rewritten = keep_from > 0;
    let mut dropped: Vec<String> = state.commits.drain(..keep_from).map(|c| c.id).collect();
    let mut commits: Vec<IndexedCommit> = walk
        .commits
        .iter()
        .map(|c| IndexedCommit {
            id: c.id.clone(),
            time: c.time,
            paths: c.paths.iter().map(|p| p.path.clone()).collect(),
            merge: c.merge,
        })
        .collect();
    commits.append(&mut state.commits);
    if commits.len() > depth {
        dropped.extend(commits.drain(depth..).map(|c| c.id));
    }

    let keyword_path = keyword_dir(layout);
    let mut keyword = if keyword_path.join("meta.json").is_file() {
        KeywordIndex::open(&keyword_path, &layout.dir)?
    } else {
        KeywordIndex::create(&keyword_path)?
    };
    let chunks: Vec<Chunk> = walk.commits.iter().map(commit_chunk).collect();
    keyword.delete_paths(&dropped)?;
    keyword.add_chunks(&chunks)?;
    if let Some(embedder) = embedder {
        let mut vectors =
            EdgeVectorStore::open_or_create(&vector_dir(layout), &layout.dir, embedder.dims())?;
        vectors.delete_paths(&dropped)?;
        for batch in chunks.chunks(EMBED_BATCH) {
            let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
            let embedded = embedder.embed(&texts).map_err(|e| IndexError::Corrupt {
                index_dir: layout.dir.clone(),
                reason: format!("embedding commits: {e}"),
            })?;
            let points: Vec<VectorPoint<'_>> = batch
                .iter()
                .zip(&embedded)
                .map(|(chunk, vector)| VectorPoint { chunk, vector })
                .collect();
            vectors.upsert(&points)?;
        }
        vectors.close()?;
    }
    keyword.commit()?;
    keyword.finish()?;

    state.commits = commits;
    state.head = walk.head;
    state.shallow = walk.shallow;
    state.embed_model = model;
    state.depth = Some(depth);
    let text = serde_json::to_vec(&state).map_err(|e| IndexError::Corrupt {
        index_dir: layout.dir.clone(),
        reason: e.to_string(),
    })?;
    write_atomically(&state_file(layout), &text)?;
    Ok(Some(HistoryReport {
        commits: state.commits.len(),
        added: chunks.len(),
        removed: dropped.len(),
        rewritten,
        shallow: state.shallow,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }))
}

/// The pairs of files changed together most often, at most `top`.
pub fn co_change_pairs(state: &HistoryState, top: usize) -> Vec<CoChange> {
    let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
    for commit in &state.commits {
        if commit.merge || commit.paths.len() < 2 || commit.paths.len() > CO_CHANGE_MAX_FILES {
            continue;
        }
        for (i, a) in commit.paths.iter().enumerate() {
            for b in &commit.paths[i + 1..] {
                let key = if a < b {
                    (a.as_str(), b.as_str())
                } else {
                    (b.as_str(), a.as_str())
                };
                *counts.entry(key).or_default() += 1;
            }
        }
    }
    let mut pairs: Vec<CoChange> = counts
        .into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|((a, b), commits)| CoChange {
            a: a.to_string(),
            b: b.to_string(),
            commits,
        })
        .collect();
    pairs.sort_by(|x, y| {
        y.commits
            .cmp(&x.commits)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    pairs.truncate(top);
    pairs
}

/// Files that changed together with any of `paths` (not themselves among them), most often
/// first, with how often: what a change to `paths` will likely need to touch too.
pub fn co_changed_with(state: &HistoryState, paths: &[String], top: usize) -> Vec<(String, usize)> {
    let wanted: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for commit in &state.commits {
        if commit.merge || commit.paths.len() > CO_CHANGE_MAX_FILES {
            continue;
        }
        if !commit.paths.iter().any(|p| wanted.contains(p.as_str())) {
            continue;
        }
        for path in &commit.paths {
            if !wanted.contains(path.as_str()) {
                *counts.entry(path.as_str()).or_default() += 1;
            }
        }
    }
    let mut partners: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    partners.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    partners.truncate(top);
    partners
}

/// Whether `path` exists under `root` (co-change partners that were deleted since are noise).
pub fn exists(root: &Path, path: &str) -> bool {
    root.join(path).is_file()
}
