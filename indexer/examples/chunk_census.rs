//! Counts a tree's chunks that would be embedded, by language, kind and size: what the
//! vector phase spends its time on, to see which chunks are worth a vector.
//!
//! `cargo run --release -p quarry-indexer --example chunk_census -- DIR`

use std::collections::BTreeMap;
use std::path::PathBuf;

use quarry_indexer::chunk::{ChunkSettings, chunk_file};
use quarry_indexer::embed::{embed_text, should_embed};
use quarry_indexer::tokens::ApproxTokenCounter;
use quarry_indexer::walk::{WalkSettings, walk};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::args().nth(1).ok_or("usage: chunk_census DIR")?);
    let outcome = walk(&root, &root.join(".quarry"), &WalkSettings::default())?;
    let settings = ChunkSettings::default();
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut total, mut embedded) = (0, 0);
    for file in outcome.files {
        let Ok(text) = std::fs::read_to_string(root.join(&file.rel_path)) else {
            continue;
        };
        for chunk in chunk_file(&file.rel_path, &text, &settings, &ApproxTokenCounter) {
            total += 1;
            if !should_embed(&chunk) {
                continue;
            }
            embedded += 1;
            let lines = chunk.text.lines().count();
            let size = match lines {
                0..=2 => "1-2 lines",
                3..=5 => "3-5 lines",
                6..=15 => "6-15 lines",
                _ => "16+ lines",
            };
            let entry = by_kind
                .entry(format!("{} {:?} {size}", chunk.lang, chunk.kind))
                .or_default();
            entry.0 += 1;
            entry.1 += embed_text(&chunk).len();
        }
    }
    println!("{total} chunks, {embedded} embedded");
    for (key, (count, bytes)) in by_kind {
        println!("{count:>7} {:>6} avg bytes  {key}", bytes / count.max(1));
    }
    Ok(())
}
