//! `quarry status`: what is indexed, how fresh, how big.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;
use quarry_indexer::IndexLayout;
use quarry_indexer::manifest::{Journal, Manifest};
use quarry_indexer::sync::progress::SyncProgress;
use serde::Serialize;

use crate::commands::find_layout;
use quarry_indexer::history::{self, CoChange};

use crate::commands::team::{print_status as print_team_status, team_setup};
use crate::daemon::client::DaemonClient;
use crate::daemon::protocol::DaemonInfo;
use crate::format;

/// Arguments of `quarry status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as one JSON object.
    #[arg(long)]
    json: bool,

    /// Report on this repository instead of the one around the current directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Status {
    root: String,
    index_dir: String,
    schema_version: u32,
    max_chunk_tokens: usize,
    max_file_size: u64,
    files: usize,
    chunks: usize,
    vectors: usize,
    /// The embedding model, or null for a keyword-only index.
    embed_model: Option<String>,
    languages: BTreeMap<String, LanguageCount>,
    /// Secrets redacted from indexed files' chunks, by rule (`aws-access-key`, ...).
    redactions: BTreeMap<String, u32>,
    created_at: u64,
    last_indexed_at: Option<u64>,
    last_run: Option<quarry_indexer::manifest::RunStats>,
    size_bytes: u64,
    /// `idle`, `daemon` (a daemon keeps the index fresh), `indexing` (a writer holds the
    /// lock) or `interrupted` (run `quarry index`).
    writer: &'static str,
    /// The pid of the process holding the writer lock, while one does.
    writer_pid: Option<u32>,
    /// What the writer is doing (phase, files and chunks done of total, rate, ETA), while
    /// a sync runs.
    progress: Option<SyncProgress>,
    /// Chunks of files whose vectors are not in yet (found by keyword until they are).
    vectors_pending: usize,
    /// The daemon watching this repository, or null when none runs.
    daemon: Option<DaemonInfo>,
    /// The git history indexed beside the code.
    history: HistoryStatus,
}

/// What git history is indexed.
#[derive(Debug, Serialize)]
struct HistoryStatus {
    /// `indexed`, `empty` (a repository without commits), `off` (`--history-depth 0`),
    /// `none` (not a git repository) or `not-indexed` (run `quarry index`).
    state: &'static str,
    /// Commits indexed (HEAD's first-parent history, newest first).
    commits: usize,
    /// HEAD when last indexed.
    head: Option<String>,
    /// Dates of the newest and oldest indexed commits.
    newest: Option<String>,
    oldest: Option<String>,
    /// The history stops at a shallow clone's boundary.
    shallow: bool,
    /// Files that most often change in the same commit.
    co_change: Vec<CoChange>,
}

fn history_status(layout: &IndexLayout) -> HistoryStatus {
    let state = history::load_state(layout);
    let label = match &state {
        Some(s) if s.depth == Some(0) => "off",
        Some(s) if !s.commits.is_empty() => "indexed",
        Some(_) => "empty",
        None if history::git::has_repository(&layout.root) => "not-indexed",
        None => "none",
    };
    let state = state.unwrap_or_default();
    HistoryStatus {
        state: label,
        commits: state.commits.len(),
        head: state.head.clone(),
        newest: state.commits.first().map(|c| history::format_date(c.time)),
        oldest: state.commits.last().map(|c| history::format_date(c.time)),
        shallow: state.shallow,
        co_change: history::co_change_pairs(&state, 10),
    }
}

#[derive(Debug, Default, Serialize)]
struct LanguageCount {
    files: usize,
    chunks: usize,
    /// Non-blank lines, and those inside a symbol's chunk (a function, method, type, ...)
    /// rather than module code or a line window.
    lines: u64,
    symbol_lines: u64,
}

/// Runs `quarry status`.
pub fn run(args: StatusArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    if let Some(setup) = team_setup(&layout.root)? {
        return print_team_status(&layout.root, &setup, args.json);
    }
    let status = collect(&layout)?;
    if args.json {
        format::print_line(&serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    format::print_line(&human(&status))?;
    Ok(())
}

/// What `quarry status --json` prints, as JSON (the MCP server's `status` tool too).
pub fn status_json(layout: &IndexLayout) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(collect(layout)?)?)
}

fn collect(layout: &IndexLayout) -> Result<Status> {
    let progress = SyncProgress::of_writer(layout);
    let loaded = Manifest::load(&layout.manifest());
    let manifest = match loaded {
        // A first index before its first commit: say what the writer does, not "no index".
        Ok(None) | Err(_) if layout.is_locked_by_another_process() => Manifest::new(
            quarry_indexer::manifest::IndexSettings::default(),
            progress.as_ref().map_or(0, |p| p.started_at),
        ),
        loaded => {
            layout.check_readable()?;
            loaded?.ok_or_else(|| quarry_indexer::IndexError::NoIndex {
                root: layout.root.clone(),
                index_dir: layout.dir.clone(),
            })?
        }
    };
    let mut languages: BTreeMap<String, LanguageCount> = BTreeMap::new();
    let mut redactions: BTreeMap<String, u32> = BTreeMap::new();
    for entry in manifest.files.values() {
        let count = languages.entry(entry.lang.clone()).or_default();
        count.files += 1;
        count.chunks += entry.chunks.len();
        count.lines += u64::from(entry.lines);
        count.symbol_lines += u64::from(entry.symbol_lines);
        for (rule, n) in &entry.redactions {
            *redactions.entry(rule.clone()).or_default() += n;
        }
    }
    let daemon = DaemonClient::connect(layout).and_then(|mut client| client.status().ok());
    let writer = if daemon.is_some() {
        "daemon"
    } else if layout.is_locked() {
        "indexing"
    } else if Journal::load(&layout.journal()).is_some() {
        "interrupted"
    } else {
        "idle"
    };
    let status = Status {
        root: layout.root.display().to_string(),
        index_dir: layout.dir.display().to_string(),
        schema_version: manifest.schema_version,
        max_chunk_tokens: manifest.settings.chunk.max_tokens,
        max_file_size: manifest.settings.walk.max_file_size,
        files: manifest.files.len(),
        chunks: manifest.chunk_count(),
        vectors: manifest.vector_count(),
        embed_model: manifest.settings.embed_model.clone(),
        languages,
        redactions,
        created_at: manifest.created_at,
        last_indexed_at: manifest.last_run.as_ref().map(|r| r.finished_at),
        last_run: manifest.last_run.clone(),
        size_bytes: layout.size_on_disk(),
        writer,
        writer_pid: layout.is_locked().then(|| layout.lock_holder()).flatten(),
        progress,
        vectors_pending: if manifest.settings.embed_model.is_some() {
            manifest.pending_vectors().1
        } else {
            0
        },
        daemon,
        history: history_status(layout),
    };
    Ok(status)
}

/// `what 3, other 1`: counts by name, in the map's order.
fn tally<K: std::fmt::Display, N: std::fmt::Display>(counts: &BTreeMap<K, N>) -> String {
    counts
        .iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rust 96%, go 91%`: per language with symbol chunks, the share of its non-blank lines
/// inside them; none when no language has any.
fn symbol_coverage(status: &Status) -> Option<String> {
    let shares: Vec<String> = status
        .languages
        .iter()
        .filter(|(_, c)| c.symbol_lines > 0)
        .map(|(lang, c)| {
            let share = (c.symbol_lines * 100 / c.lines.max(1)).min(100);
            format!("{lang} {share}%")
        })
        .collect();
    (!shares.is_empty()).then(|| shares.join(", "))
}

fn human(status: &Status) -> String {
    let mut out: Vec<String> = Vec::new();
    let per_language = |pick: fn(&LanguageCount) -> usize| {
        let mut counts: Vec<(&String, usize)> =
            status.languages.iter().map(|(l, c)| (l, pick(c))).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(lang, n)| format!("{lang} {}", format::count(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push(format!("root:        {}", status.root));
    out.push(format!(
        "index:       {} ({})",
        status.index_dir,
        format::bytes(status.size_bytes)
    ));
    out.push(format!(
        "schema:      v{} (chunks up to {} tokens, files up to {})",
        status.schema_version,
        status.max_chunk_tokens,
        format::bytes(status.max_file_size)
    ));
    out.push(format!(
        "files:       {} ({})",
        format::count(status.files),
        per_language(|c| c.files)
    ));
    out.push(format!(
        "chunks:      {} ({})",
        format::count(status.chunks),
        per_language(|c| c.chunks)
    ));
    if let Some(line) = symbol_coverage(status) {
        out.push(format!("in symbols:  {line}"));
    }
    out.push(match &status.embed_model {
        Some(model) if status.vectors_pending > 0 => format!(
            "vectors:     {} ({model}, Qdrant Edge); {} chunks still to embed, found by keyword until then",
            format::count(status.vectors),
            format::count(status.vectors_pending)
        ),
        Some(model) => format!(
            "vectors:     {} ({model}, Qdrant Edge)",
            format::count(status.vectors)
        ),
        None if status.progress.is_some() && status.files == 0 => {
            "vectors:     not yet (the first index is being built)".to_string()
        }
        None => "vectors:     none (keyword-only index)".to_string(),
    });
    match &status.last_run {
        Some(run) => {
            let when = UNIX_EPOCH + Duration::from_secs(run.finished_at);
            let ago = SystemTime::now()
                .duration_since(when)
                .map(|d| Duration::from_secs(d.as_secs()))
                .unwrap_or_default();
            out.push(format!(
                "last index:  {} ({} ago), took {}, {} indexed, {} removed, {} embedded",
                humantime::format_rfc3339_seconds(when),
                humantime::format_duration(ago),
                format::millis(run.elapsed_ms),
                format::plural(run.files_indexed, "file"),
                format::count(run.files_removed),
                format::plural(run.chunks_embedded, "chunk"),
            ));
            if !run.skipped.is_empty() {
                out.push(format!("skipped:     {}", tally(&run.skipped)));
            }
        }
        None => out.push("last index:  never finished".to_string()),
    }
    if !status.redactions.is_empty() {
        out.push(format!(
            "redacted:    {} (secrets inside indexed files; never stored, shown or sent)",
            tally(&status.redactions)
        ));
    }
    let history = &status.history;
    out.push(match history.state {
        "indexed" => format!(
            "history:     {} (HEAD's first-parent history, {} to {}){}",
            format::plural(history.commits, "commit"),
            history
                .oldest
                .as_deref()
                .map_or("", |d| &d[..d.len().min(10)]),
            history
                .newest
                .as_deref()
                .map_or("", |d| &d[..d.len().min(10)]),
            if history.shallow {
                ", shallow clone"
            } else {
                ""
            }
        ),
        "empty" => "history:     a git repository without commits".to_string(),
        "off" => "history:     off (`quarry index --history-depth N` turns it on)".to_string(),
        "not-indexed" => "history:     not indexed yet (run `quarry index`)".to_string(),
        _ => "history:     none (not a git repository)".to_string(),
    });
    let pid = status
        .writer_pid
        .map(|pid| format!("pid {pid}"))
        .unwrap_or_else(|| "another quarry process".to_string());
    let writer = match (status.writer, &status.progress) {
        ("daemon", Some(p)) => format!("the daemon below is syncing: {}", p.describe()),
        ("daemon", None) => "the daemon below keeps the index fresh".to_string(),
        ("indexing", Some(p)) => format!("indexing now ({pid}): {}", p.describe()),
        ("indexing", None) => format!("indexing now ({pid} holds the lock)"),
        ("interrupted", _) => {
            "the last index run was interrupted; run `quarry index` to repair".to_string()
        }
        _ => "idle".to_string(),
    };
    out.push(format!("writer:      {writer}"));
    match &status.daemon {
        Some(daemon) => {
            let last = daemon
                .last_update
                .map(|at| {
                    let ago = SystemTime::now()
                        .duration_since(UNIX_EPOCH + Duration::from_secs(at))
                        .map(|d| Duration::from_secs(d.as_secs()))
                        .unwrap_or_default();
                    format!("last update {} ago", humantime::format_duration(ago))
                })
                .unwrap_or_else(|| "no update yet".to_string());
            let freshness = if daemon.pending_changes == 0 {
                "up to date".to_string()
            } else {
                format!(
                    "{} pending for {}",
                    format::plural(daemon.pending_changes, "change"),
                    format::millis(daemon.stale_ms)
                )
            };
            out.push(format!(
                "daemon:      pid {}, up {}, {last}, {freshness}, {} since start{}",
                daemon.pid,
                humantime::format_duration(Duration::from_secs(daemon.uptime_secs)),
                format::plural(daemon.updates as usize, "update"),
                if daemon.watching {
                    ""
                } else {
                    ", polling (no file watcher)"
                }
            ));
            if let Some(error) = &daemon.last_error {
                out.push(format!("             last update failed: {error}"));
            }
            out.push(format!("             log: {}", daemon.log.display()));
        }
        None => {
            out.push("daemon:      not running (`quarry daemon` keeps the index fresh)".to_string())
        }
    }
    out.join("\n")
}
