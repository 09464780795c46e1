//! One module per subcommand: its arguments and how it runs.

pub mod ask;
pub mod config;
pub mod edit;
pub mod graph;
pub mod index;
pub mod memory;
pub mod search;
pub mod status;
pub(crate) mod team;

use std::path::{Path, PathBuf};

use quarry_indexer::IndexLayout;

/// The index a command works on: the one in `index_dir` for `root`, or the nearest index
/// around `root` (default: the current directory).
pub(crate) fn find_layout(
    root: Option<&Path>,
    index_dir: Option<&Path>,
) -> anyhow::Result<IndexLayout> {
    let start = root.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(match index_dir {
        Some(dir) => IndexLayout::new(&start, Some(dir))?,
        None => IndexLayout::discover(&start)?,
    })
}
