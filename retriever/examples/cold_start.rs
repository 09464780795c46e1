//! Where a cold hybrid search spends its time: each step a fresh `quarry search` process
//! takes, timed on its own and in order (the runtime, the model, the keyword index, the
//! vector shard, the first query, a second query). Prints one JSON object of milliseconds:
//! wall time per step, and the process's CPU time per step (`_cpu`), which a loaded machine
//! disturbs less.
//!
//! `cold_start ROOT QUERY`

use std::path::PathBuf;
use std::time::Instant;

use quarry_indexer::IndexLayout;
use quarry_indexer::embed::onnx::{ModelSource, OnnxEmbedder, runtime};
use quarry_indexer::embed::sentence::Workload;
use quarry_retriever::{Mode, Retriever, SearchRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut args = std::env::args().skip(1);
    let usage = "usage: cold_start ROOT QUERY";
    let root = PathBuf::from(args.next().ok_or(usage)?);
    let query = args.next().ok_or(usage)?;
    let mut steps: Vec<(&str, f64, f64)> = Vec::new();
    let mut lap = (Instant::now(), cpu_ms());
    let mut mark = |steps: &mut Vec<(&str, f64, f64)>, name| {
        let cpu = cpu_ms();
        steps.push((name, lap.0.elapsed().as_secs_f64() * 1000.0, cpu - lap.1));
        lap = (Instant::now(), cpu);
    };
    runtime()?;
    mark(&mut steps, "runtime");
    let embedder = OnnxEmbedder::load(&ModelSource::from_env(), Workload::OneShot)?;
    mark(&mut steps, "model");
    let layout = IndexLayout::discover(&root)?;
    let retriever = Retriever::open(&layout)?;
    mark(&mut steps, "keyword_index");
    let mut retriever = retriever.with_embedder(Box::new(embedder))?;
    mark(&mut steps, "vector_shard");
    let mut request = SearchRequest::new(&query, 10);
    request.mode = Mode::Hybrid;
    retriever.search(&request)?;
    mark(&mut steps, "first_query");
    retriever.search(&request)?;
    mark(&mut steps, "second_query");
    let fields: Vec<String> = steps
        .iter()
        .map(|(name, ms, cpu)| format!("\"{name}_ms\": {ms:.0}, \"{name}_cpu\": {cpu:.0}"))
        .collect();
    println!(
        "{{{}, \"total_ms\": {:.1}}}",
        fields.join(", "),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// User and system CPU time of this process so far, in milliseconds (0 where `/proc` is not).
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th, in clock ticks (100 a second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks * 10.0
}
