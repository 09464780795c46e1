//! Warm query latency: opens an index once (model loaded, stores open) and times each query
//! read from stdin, one per line, in the given mode. Prints one JSON object with the count,
//! p50 and p95 in milliseconds.
//!
//! `query_latency ROOT [hybrid|vector|keyword] < queries.txt`

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use quarry_indexer::IndexLayout;
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_retriever::{Mode, Retriever, SearchRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .ok_or("usage: query_latency ROOT [MODE] < queries")?,
    );
    let mode: Mode = args.next().as_deref().unwrap_or("hybrid").parse()?;
    let layout = IndexLayout::discover(&root)?;
    let mut retriever = Retriever::open(&layout)?;
    if mode != Mode::Keyword {
        let embedder = OnnxEmbedder::configured()?;
        retriever = retriever.with_embedder(Box::new(embedder))?;
    }
    let mut millis = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let query = line?;
        if query.trim().is_empty() {
            continue;
        }
        let mut request = SearchRequest::new(&query, 10);
        request.mode = mode;
        let started = Instant::now();
        retriever.search(&request)?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if millis.is_empty() {
        return Err("no queries on stdin".into());
    }
    millis.sort_by(f64::total_cmp);
    let at =
        |q: f64| millis[((millis.len() as f64 * q).ceil() as usize).clamp(1, millis.len()) - 1];
    println!(
        "{{\"queries\": {}, \"p50_ms\": {:.1}, \"p95_ms\": {:.1}}}",
        millis.len(),
        at(0.5),
        at(0.95)
    );
    Ok(())
}
