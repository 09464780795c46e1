//! `quarry index`: build or update the index of a repository.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quarry_indexer::IndexLayout;
use quarry_indexer::embed::Embedder;
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_indexer::sync::{
    SettingsOverrides, SyncEvent, SyncOptions, SyncReport, is_keyword_only, sync,
};

use quarry_indexer::team::sync::sync_team;

use crate::commands::team::{TeamSetup, team_setup};
use crate::daemon::client::DaemonClient;
use crate::format;

/// Arguments of `quarry index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The repository to index [default: the current directory].
    path: Option<PathBuf>,

    /// Skip files larger than this: bytes, or a size like 512K or 2M [default: 1M; kept
    /// from the last run].
    #[arg(long, value_name = "SIZE", value_parser = format::parse_size)]
    max_file_size: Option<u64>,

    /// Cut chunks longer than this many tokens into overlapping windows [default: 512;
    /// kept from the last run]. Changing it rebuilds the index.
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(32..=8192))]
    chunk_tokens: Option<u32>,

    /// Index files that look like secrets (.env, *.pem, *.key, id_rsa, private keys).
    #[arg(long)]
    include_secrets: bool,

    /// Build a keyword-only index: no embeddings, no semantic search, much faster. Kept from
    /// the last run; `--rebuild` turns vectors back on.
    #[arg(long)]
    keyword_only: bool,

    /// Throw the index away and build it again with default settings (plus the flags given).
    #[arg(long)]
    rebuild: bool,

    /// Index the last N commits of HEAD's first-parent git history [default: 5000; kept from
    /// the last run]; 0 turns history off.
    #[arg(long, value_name = "N")]
    history_depth: Option<usize>,
}

/// Runs `quarry index`.
pub fn run(args: IndexArgs, index_dir: Option<&Path>) -> Result<()> {
    let root = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let layout = IndexLayout::new(&root, index_dir)?;
    let overrides = SettingsOverrides {
        max_file_size: args.max_file_size,
        chunk_tokens: args.chunk_tokens.map(|t| t as usize),
        include_secrets: args.include_secrets.then_some(true),
        history_depth: args.history_depth,
    };
    // A team store configured: the shared collection is the index.
    if let Some(setup) = team_setup(&layout.root)? {
        if args.keyword_only {
            anyhow::bail!(
                "a team index needs the embedding model; --keyword-only is for the local index (unset QUARRY_QDRANT_URL / [store] url to build one)"
            );
        }
        return run_team(&layout, setup, overrides, args.rebuild);
    }
    // A running daemon is the index's only writer: the update goes through it.
    if let Some(mut daemon) = DaemonClient::connect(&layout) {
        // As without a daemon: the flag drops vectors, --rebuild brings them back, otherwise
        // the index keeps what it has.
        let keyword_only = if args.keyword_only {
            Some(true)
        } else if args.rebuild {
            Some(false)
        } else {
            None
        };
        let report = daemon.index(overrides, args.rebuild, keyword_only)?;
        format::print_line(&summary(&layout, &report))?;
        return Ok(());
    }

    let options = SyncOptions {
        overrides,
        force_rebuild: args.rebuild,
        cancel: Some(cancel_on_ctrl_c()),
    };

    let keyword_only = args.keyword_only || (!args.rebuild && is_keyword_only(&layout));
    let mut embedder = if keyword_only {
        None
    } else {
        Some(OnnxEmbedder::configured()?)
    };

    let progress = Progress::new();
    let mut on_event = |event: SyncEvent| progress.show(event);
    let report = sync(
        &layout,
        &options,
        embedder.as_mut().map(|e| e as &mut dyn Embedder),
        &mut on_event,
    );
    progress.finish();
    let report = report?;
    format::print_line(&summary(&layout, &report))?;
    Ok(())
}

/// `quarry index` against a team store.
fn run_team(
    layout: &IndexLayout,
    mut setup: TeamSetup,
    overrides: SettingsOverrides,
    rebuild: bool,
) -> Result<()> {
    let options = SyncOptions {
        overrides,
        force_rebuild: rebuild,
        cancel: Some(cancel_on_ctrl_c()),
    };
    let location = setup.store.location();
    let progress = Progress::new();
    let mut on_event = |event: SyncEvent| progress.show(event);
    let report = sync_team(
        layout,
        setup.store.as_mut(),
        &options,
        &mut setup.embedder,
        &mut on_event,
    );
    progress.finish();
    let report = report?;
    format::print_line(&format!(
        "{} [team collection {} on {} {}]",
        summary(layout, &report),
        location.collection,
        location.backend,
        location.address
    ))?;
    Ok(())
}

/// The progress line of a sync on the terminal.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message("scanning files");
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn show(&self, event: SyncEvent) {
        let bar = &self.bar;
        match event {
            SyncEvent::Rebuilding { reason } => {
                bar.suspend(|| eprintln!("note: rebuilding the index: {reason}"));
            }
            SyncEvent::Repairing { paths } => bar.suspend(|| {
                eprintln!("note: the last index run was interrupted; repairing {paths} files")
            }),
            SyncEvent::Scanned { to_index, .. } => {
                bar.set_length(to_index as u64);
                bar.set_style(bar_style("indexing", "files"));
                bar.set_message("0 chunks");
            }
            SyncEvent::Indexed {
                files_done, chunks, ..
            } => {
                bar.set_position(files_done as u64);
                bar.set_message(format!("{} chunks", format::count(chunks)));
            }
            SyncEvent::Embedding {
                chunks_done,
                chunks_total,
                embedded,
                cached,
                ..
            } => {
                if bar.length() != Some(chunks_total as u64) {
                    bar.set_length(chunks_total as u64);
                    bar.set_style(bar_style("vectors", "chunks"));
                    bar.reset_eta();
                }
                bar.set_position(chunks_done as u64);
                bar.set_message(format!(
                    "{} embedded, {} cached; searchable by keyword now",
                    format::count(embedded),
                    format::count(cached)
                ));
            }
        }
    }
}

/// The progress bar of one phase: `{phase} [===>  ] pos/len {unit} · msg · rate · ETA`.
fn bar_style(phase: &str, unit: &str) -> ProgressStyle {
    let template = format!(
        "{{spinner}} {phase} [{{bar:30}}] {{pos}}/{{len}} {unit} · {{msg}} · {{per_sec}} · ETA {{eta}}"
    );
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A flag the first Ctrl-C raises: the sync then commits what it finished and stops. A
/// second Ctrl-C exits at once (the next run repairs and resumes).
fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    // Without a handler (another one is installed) Ctrl-C simply kills the run, which the
    // next run repairs; nothing to report.
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current batch (Ctrl-C again to stop now)");
    });
    flag
}

/// The one summary line of a run.
fn summary(layout: &IndexLayout, report: &SyncReport) -> String {
    let root = layout.root.display();
    let mut totals = format!(
        "{}, {}",
        format::plural(report.files, "file"),
        format::plural(report.chunks, "chunk")
    );
    if report.vectors > 0 {
        totals.push_str(&format!(", {} vectors", format::count(report.vectors)));
    }
    let elapsed = format::millis(report.elapsed_ms);
    let mut line = if report.files_indexed == 0 && report.files_removed == 0 {
        if report.vectors_written > 0 {
            format!(
                "finished the vectors of {root}: {totals} ({} written) in {elapsed}",
                format::plural(report.vectors_written, "vector")
            )
        } else {
            format!("index of {root} is up to date: {totals} (checked in {elapsed})")
        }
    } else {
        format!(
            "indexed {root}: {totals} ({} indexed, {} removed, {} written) in {elapsed}",
            format::plural(report.files_indexed, "file"),
            format::count(report.files_removed),
            format::plural(report.chunks_written, "chunk"),
        )
    };
    if report.chunks_embedded > 0 {
        let rate = report.chunks_embedded as f64 / (report.embed_ms.max(1) as f64 / 1000.0);
        line.push_str(&format!(
            "; embedded {} in {} ({rate:.0}/s), {} from cache",
            format::plural(report.chunks_embedded, "chunk"),
            format::millis(report.embed_ms),
            format::count(report.vectors_cached)
        ));
    }
    if let Some(history) = &report.history {
        if history.added > 0 || history.removed > 0 {
            line.push_str(&format!(
                "; history {} (+{}{}{})",
                format::plural(history.commits, "commit"),
                history.added,
                if history.removed > 0 {
                    format!(" -{}", history.removed)
                } else {
                    String::new()
                },
                if history.rewritten { ", rewritten" } else { "" }
            ));
        }
    } else if let Some(error) = &report.history_error {
        line.push_str(&format!("; history not indexed: {error}"));
    }
    let skipped: usize = report.skipped.values().sum();
    if skipped > 0 {
        let reasons: Vec<String> = report
            .skipped
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        line.push_str(&format!(
            "; skipped {} ({})",
            format::plural(skipped, "file"),
            reasons.join(", ")
        ));
    }
    line
}
