//! The team index as the commands see it: whether one is configured (`[store] url` or
//! `QUARRY_QDRANT_URL`), which collection it is, and its status.
//!
//! With a store configured, `quarry index` keeps the shared collection current and
//! `quarry search`, `ask` and `status` read it; nothing is written under `.quarry/` but the
//! vector cache and the writer lock.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use quarry_indexer::config::Environment;
use quarry_indexer::embed::Embedder;
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_indexer::history::git::{commits_behind, head_commit};
use quarry_indexer::manifest::RunStats;
use quarry_indexer::team::settings::StoreSettings;
use quarry_indexer::team::{TeamLocation, TeamStore, collection_name, repository_identity};
use quarry_indexer::team::{sync_pending, team_meta};
use serde::Serialize;

use crate::format;

/// A configured team store, opened, with the model its collection is named after.
pub(crate) struct TeamSetup {
    /// The store.
    pub store: Box<dyn TeamStore>,
    /// The embedding model.
    pub embedder: OnnxEmbedder,
}

/// The team store configured for the repository at `root`, or `None` for the local index.
/// Loads the model (the collection is named after it) and connects: a server that is down
/// fails here, in one line.
pub(crate) fn team_setup(root: &Path) -> Result<Option<TeamSetup>> {
    let store = StoreSettings::load(&Environment::from_process(Some(root)))?;
    team_setup_for(&store, root)
}

/// [`team_setup`] with the `[store]` settings already loaded.
pub(crate) fn team_setup_for(store: &StoreSettings, root: &Path) -> Result<Option<TeamSetup>> {
    let Some(target) = store.team_target()? else {
        return Ok(None);
    };
    let embedder = OnnxEmbedder::configured()?;
    let collection = match &store.collection {
        Some(name) => name.value.clone(),
        None => collection_name(&repository_identity(root), embedder.model_id()),
    };
    let store = target.open(&collection)?;
    Ok(Some(TeamSetup { store, embedder }))
}

/// Whether a team store is configured for the repository at `root` (nothing is opened).
pub(crate) fn team_configured(root: &Path) -> Result<bool> {
    let store = StoreSettings::load(&Environment::from_process(Some(root)))?;
    Ok(store.team_target()?.is_some())
}

/// How far behind the checkout the team index is.
#[derive(Debug, Serialize)]
struct Lag {
    /// Commits between the indexed commit and this checkout's HEAD (first parents); null
    /// when the indexed commit is not in HEAD's history or either is unknown.
    commits_behind: Option<usize>,
    /// Seconds since the last sync finished.
    seconds_since_sync: Option<u64>,
}

/// `quarry status` of a team index.
#[derive(Debug, Serialize)]
struct TeamStatus {
    root: String,
    store: TeamLocation,
    /// `ready`, `empty` (no index written yet) or `syncing` (a sync is in flight, or was
    /// interrupted: the next `quarry index` repairs it).
    state: &'static str,
    /// Points in the collection.
    points: u64,
    files: usize,
    chunks: usize,
    repository: Option<String>,
    embed_model: Option<String>,
    dims: Option<usize>,
    /// The commit the index was built from.
    indexed_commit: Option<String>,
    /// This checkout's HEAD.
    head: Option<String>,
    lag: Lag,
    last_run: Option<RunStats>,
}

/// What `quarry status --json` prints for the team index in `store` (the MCP `status` tool
/// too).
pub(crate) fn status_json(root: &Path, store: &dyn TeamStore) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(collect(root, store)?)?)
}

/// Prints the status of the team index in `setup` for the checkout at `root`.
pub(crate) fn print_status(root: &Path, setup: &TeamSetup, json: bool) -> Result<()> {
    let status = collect(root, setup.store.as_ref())?;
    if json {
        format::print_line(&serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    format::print_line(&human(&status))?;
    Ok(())
}

fn collect(root: &Path, store: &dyn TeamStore) -> Result<TeamStatus> {
    let meta = team_meta(store)?;
    let pending = sync_pending(store)?;
    let facts = store.facts()?;
    let points = match facts {
        Some(_) => store.count()?,
        None => 0,
    };
    let head = head_commit(root);
    let indexed_commit = meta.as_ref().and_then(|m| m.head.clone());
    let finished_at = meta
        .as_ref()
        .and_then(|m| m.last_run.as_ref())
        .map(|r| r.finished_at);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let status = TeamStatus {
        root: root.display().to_string(),
        store: store.location(),
        state: match &meta {
            None => "empty",
            Some(_) if pending => "syncing",
            Some(_) => "ready",
        },
        points,
        files: meta.as_ref().map_or(0, |m| m.files),
        chunks: meta.as_ref().map_or(0, |m| m.chunks),
        repository: meta.as_ref().map(|m| m.repository.clone()),
        embed_model: meta.as_ref().map(|m| m.model_id.clone()),
        dims: meta.as_ref().map(|m| m.dims),
        lag: Lag {
            commits_behind: indexed_commit
                .as_deref()
                .and_then(|commit| commits_behind(root, commit)),
            seconds_since_sync: finished_at.map(|t| now.saturating_sub(t)),
        },
        indexed_commit,
        head,
        last_run: meta.and_then(|m| m.last_run),
    };
    Ok(status)
}

fn human(status: &TeamStatus) -> String {
    let short = |id: &Option<String>| {
        id.as_deref()
            .map(|c| c.chars().take(10).collect::<String>())
            .unwrap_or_else(|| "unknown".to_string())
    };
    let mut out = vec![
        format!("root:        {}", status.root),
        format!(
            "team index:  collection {} on {} {}",
            status.store.collection, status.store.backend, status.store.address
        ),
    ];
    if status.state == "empty" {
        out.push(
            "state:       empty: no index written yet; run `quarry index` against it".to_string(),
        );
        return out.join("\n");
    }
    out.push(format!(
        "state:       {}",
        match status.state {
            "syncing" =>
                "a sync is running or was interrupted (the next `quarry index` repairs it)",
            _ => "ready",
        }
    ));
    out.push(format!(
        "points:      {} ({}, {})",
        format::count(status.points as usize),
        format::plural(status.files, "file"),
        format::plural(status.chunks, "chunk")
    ));
    if let Some(repository) = &status.repository {
        out.push(format!("repository:  {repository}"));
    }
    if let (Some(model), Some(dims)) = (&status.embed_model, status.dims) {
        out.push(format!("model:       {model} ({dims} dims, cosine)"));
    }
    let age = status
        .lag
        .seconds_since_sync
        .map(|s| {
            format!(
                "{} ago",
                humantime::format_duration(std::time::Duration::from_secs(s))
            )
        })
        .unwrap_or_else(|| "never".to_string());
    let behind = match (
        &status.indexed_commit,
        &status.head,
        status.lag.commits_behind,
    ) {
        (Some(_), Some(_), Some(0)) => "your HEAD".to_string(),
        (Some(_), Some(_), Some(n)) => format!("{} behind your HEAD", format::plural(n, "commit")),
        (Some(_), Some(_), None) => "not in your HEAD's history".to_string(),
        _ => "no commit known".to_string(),
    };
    out.push(format!(
        "last sync:   {age}, at commit {} ({behind})",
        short(&status.indexed_commit)
    ));
    out.join("\n")
}
