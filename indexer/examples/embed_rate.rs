//! Raw model throughput: chunks a folder the way `quarry index` does, takes the first N
//! chunks that get vectors, and times embedding them alone (sorted by length, as the sync
//! does). Prints chunks, seconds and chunks/s as JSON.
//!
//! `embed_rate DIR [N]`

use std::path::PathBuf;
use std::time::Instant;

use quarry_indexer::chunk::{ChunkSettings, chunk_file};
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_indexer::embed::{Embedder, embed_text, should_embed};
use quarry_indexer::tokens::ApproxTokenCounter;
use quarry_indexer::walk::{WalkSettings, classify_content, walk};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().ok_or("usage: embed_rate DIR [N]")?);
    let limit: usize = args.next().map_or(Ok(1000), |n| n.parse())?;
    let files = walk(&root, &root.join(".quarry"), &WalkSettings::default())?.files;
    let mut texts = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file.abs_path)?;
        let Ok(text) = classify_content(&file.rel_path, &bytes, &WalkSettings::default()) else {
            continue;
        };
        let chunks = chunk_file(
            &file.rel_path,
            text,
            &ChunkSettings::default(),
            &ApproxTokenCounter,
        );
        texts.extend(chunks.iter().filter(|c| should_embed(c)).map(embed_text));
        if texts.len() >= limit {
            break;
        }
    }
    texts.truncate(limit);
    texts.sort_by_key(String::len);
    let mut embedder = OnnxEmbedder::configured()?;
    let started = Instant::now();
    for group in texts.chunks(64) {
        let refs: Vec<&str> = group.iter().map(String::as_str).collect();
        embedder.embed(&refs)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"chunks\": {}, \"seconds\": {seconds:.1}, \"chunks_per_s\": {:.1}}}",
        texts.len(),
        texts.len() as f64 / seconds
    );
    Ok(())
}
