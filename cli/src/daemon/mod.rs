//! `quarry daemon`: one long-lived process per repository that keeps its index fresh and
//! serves the other commands.
//!
//! It holds the index's writer lock for its whole life (the single writer), watches the tree
//! and re-indexes each burst of changes about a second after a save, keeps the embedding model
//! loaded, and answers `search`, `ask`, `status` and `index` over a Unix socket in the index
//! directory ([`protocol`]). The commands try the daemon first ([`client`]) and open the index
//! themselves when none runs; their output is the same either way.

pub mod client;
mod log;
pub mod protocol;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use quarry_indexer::IndexLayout;

use crate::commands::find_layout;
use crate::format;
use client::DaemonClient;

/// Arguments of `quarry daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The repository to watch [default: the current directory].
    path: Option<PathBuf>,

    /// Stop the daemon running for the repository: it finishes the update in flight first.
    #[arg(long)]
    stop: bool,

    /// Keep (or build) the index without vectors.
    #[arg(long)]
    keyword_only: bool,
}

/// Runs `quarry daemon`.
pub fn run(args: DaemonArgs, index_dir: Option<&Path>, verbose: u8) -> Result<()> {
    let root = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    if args.stop {
        return stop(&find_layout(Some(&root), index_dir)?);
    }
    let layout = IndexLayout::new(&root, index_dir)?;
    if crate::commands::team::team_configured(&layout.root)? {
        bail!(
            "a team store is configured ([store] url or QUARRY_QDRANT_URL), and the daemon keeps a local index only; keep the team index current with `quarry index` (from CI), or unset the store to run the daemon"
        );
    }
    server::serve(
        layout,
        server::DaemonOptions {
            keyword_only: args.keyword_only,
            verbose,
        },
    )
}

fn stop(layout: &IndexLayout) -> Result<()> {
    let Some(mut client) = DaemonClient::connect(layout) else {
        bail!("no quarry daemon runs for {}", layout.root.display());
    };
    let pid = client.status()?.pid;
    client.stop()?;
    if !server::wait_until_stopped(layout, Duration::from_secs(300)) {
        bail!("the quarry daemon (pid {pid}) did not stop within 5 minutes");
    }
    format::print_line(&format!("stopped the quarry daemon (pid {pid})"))?;
    Ok(())
}
