//! The repository map: every indexed file with the names it defines, cut to a token budget,
//! from either candidate source (a team index lists its ledger).
//!
//! A planner that only sees the top hits does not know which other files exist; the map
//! tells it, compactly (`src/config.rs: Config, Config::load, parse_env`). Files the caller
//! names first (those its hits came from) are listed first, then the rest by path, until the
//! budget runs out; the last line says how many files did not fit.

use quarry_indexer::Chunk;

use crate::fusion::is_definition;
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

impl Retriever {
    /// The map of the index's files, `priority` first, within `budget` estimated tokens:
    /// the local index's manifest, or a team index's ledger.
    pub fn repo_map(&self, priority: &[String], budget: usize) -> Result<String, SearchError> {
        let files = self.code.files()?;
        let mut order: Vec<&String> = priority.iter().filter(|p| files.contains_key(*p)).collect();
        order.dedup();
        order.extend(files.keys().filter(|p| !priority.contains(p)));
        let mut map = String::new();
        let mut used = 0;
        for (listed, path) in order.iter().enumerate() {
            let ids = &files[*path];
            let chunks = self.code.chunks_by_id(ids)?;
            let mut defined: Vec<&Chunk> = ids
                .iter()
                .filter_map(|id| chunks.get(id))
                .filter(|c| is_definition(c.kind))
                .collect();
            defined.sort_by_key(|c| c.start_line);
            let mut names: Vec<String> = Vec::new();
            for chunk in defined {
                if let Some(name) = short_name(chunk)
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
            let more = names.len().saturating_sub(NAMES_PER_FILE);
            names.truncate(NAMES_PER_FILE);
            let mut line = if names.is_empty() {
                path.to_string()
            } else {
                format!("{path}: {}", names.join(", "))
            };
            if more > 0 {
                line.push_str(&format!(", … {more} more"));
            }
            line.push('\n');
            let cost = estimate_tokens(&line);
            if used + cost > budget {
                map.push_str(&format!("… {} more files\n", order.len() - listed));
                break;
            }
            used += cost;
            map.push_str(&line);
        }
        Ok(map)
    }
}
