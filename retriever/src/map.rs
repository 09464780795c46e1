//! The repository map: every indexed file with the names it defines, cut to a token budget,
//! from either candidate source (a team index lists its ledger).
//!
//! A planner that only sees the top hits does not know which other files exist; the map
//! tells it, compactly (`src/config.rs: Config, Config::load, parse_env`). Files the caller
//! names first (those its hits came from) are listed first, then code files by how central
//! they are to those (personalised PageRank over the code graph's file graph), then data and
//! docs, until the budget runs out; the last line says how many files did not fit.

use std::collections::HashMap;

use quarry_indexer::Chunk;
use quarry_indexer::lang::{self, Language};

use crate::fusion::is_definition;
use crate::graph::files::{file_graph, file_rank};
use crate::pack::estimate_tokens;
use crate::{Retriever, SearchError};

/// Most names listed for one file.
const NAMES_PER_FILE: usize = 12;

/// The short name of a definition: `Type::method` for methods, the last segment otherwise.
fn short_name(chunk: &Chunk) -> Option<String> {
    let symbol = chunk.symbol.as_deref()?;
    let parts: Vec<&str> = symbol
        .split("::")
        .flat_map(|p| p.split('.'))
        .filter(|p| !p.is_empty())
        .collect();
    let keep = if chunk.kind == quarry_indexer::ChunkKind::Method {
        2
    } else {
        1
    };
    let start = parts.len().saturating_sub(keep);
    (!parts.is_empty()).then(|| parts[start..].join("::"))
}

/// Names defined in more files than this do not link a use to a file (see
/// [`crate::graph::files::file_graph`]).
const MAX_DEFINERS: usize = 5;

impl Retriever {
    /// The map of the index's files within `budget` estimated tokens: `priority` first
    /// (the files of the hits and of the names the request is about), then the other code
    /// files by their rank in the file graph (PageRank restarting at `priority`), then files
    /// without a grammar (data, docs) by path. Files come from the local index's manifest or
    /// a team index's ledger.
    pub fn repo_map(&self, priority: &[String], budget: usize) -> Result<String, SearchError> {
        let files = self.code.files()?;
        let mut lines: HashMap<&str, String> = HashMap::new();
        let mut code_chunks: Vec<Chunk> = Vec::new();
        let mut code_files: Vec<String> = Vec::new();
        for (path, ids) in &files {
            let chunks = self.code.chunks_by_id(ids)?;
            let mut chunks: Vec<Chunk> = ids
                .iter()
                .filter_map(|id| chunks.get(id).cloned())
                .collect();
            chunks.sort_by_key(|c| c.start_line);
            lines.insert(path, map_line(path, &chunks));
            if matches!(lang::detect(path), Language::Code(_)) {
                code_files.push(path.clone());
                code_chunks.extend(chunks);
            }
        }
        let graph = file_graph(&code_chunks, MAX_DEFINERS);
        drop(code_chunks);
        let rank = file_rank(&code_files, &graph, priority);
        let mut order: Vec<&str> = Vec::new();
        for path in priority {
            if files.contains_key(path) && !order.contains(&path.as_str()) {
                order.push(path);
            }
        }
        let mut ranked: Vec<&String> = code_files
            .iter()
            .filter(|p| !order.contains(&p.as_str()))
            .collect();
        ranked.sort_by(|a, b| {
            let (ra, rb) = (
                rank.get(*a).copied().unwrap_or(0.0),
                rank.get(*b).copied().unwrap_or(0.0),
            );
            rb.total_cmp(&ra).then_with(|| a.cmp(b))
        });
        order.extend(ranked.into_iter().map(String::as_str));
        let others: Vec<&str> = files
            .keys()
            .map(String::as_str)
            .filter(|p| !order.contains(p))
            .collect();
        order.extend(others);
        let mut map = String::new();
        let mut used = 0;
        for (listed, path) in order.iter().enumerate() {
            let line = &lines[path];
            let cost = estimate_tokens(line);
            if used + cost > budget {
                map.push_str(&format!("… {} more files\n", order.len() - listed));
                break;
            }
            used += cost;
            map.push_str(line);
        }
        Ok(map)
    }
}

/// One file's line of the map: its path (marked `(test)` for a test file) and the names it
/// defines.
fn map_line(path: &str, chunks: &[Chunk]) -> String {
    let mut names: Vec<String> = Vec::new();
    for chunk in chunks.iter().filter(|c| is_definition(c.kind)) {
        if let Some(name) = short_name(chunk)
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    let more = names.len().saturating_sub(NAMES_PER_FILE);
    names.truncate(NAMES_PER_FILE);
    let marker = if quarry_indexer::lang::is_test_path(path) {
        " (test)"
    } else {
        ""
    };
    let mut line = if names.is_empty() {
        format!("{path}{marker}")
    } else {
        format!("{path}{marker}: {}", names.join(", "))
    };
    if more > 0 {
        line.push_str(&format!(", … {more} more"));
    }
    line.push('\n');
    line
}
