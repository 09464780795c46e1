//! The configured model's session per workload: load time, the first and later single
//! queries, the batch rate on real chunks (sorted by length, in inference batches of BATCH,
//! default the sync's) and the process's peak RSS. Run each setting in its own process to
//! compare peaks. Prints one JSON object.
//!
//! `model_session one-shot|resident DIR [N] [BATCH]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use quarry_indexer::chunk::{ChunkSettings, chunk_file};
use quarry_indexer::embed::onnx::{BATCH_SIZE, ModelSource, OnnxEmbedder, runtime};
use quarry_indexer::embed::sentence::Workload;
use quarry_indexer::embed::{Embedder, embed_text, should_embed};
use quarry_indexer::tokens::ApproxTokenCounter;
use quarry_indexer::walk::{WalkSettings, classify_content, walk};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: model_session one-shot|resident DIR [N] [BATCH]";
    let mut args = std::env::args().skip(1);
    let workload = match args.next().as_deref() {
        Some("one-shot") => Workload::OneShot,
        Some("resident") => Workload::Resident,
        _ => return Err(usage.into()),
    };
    let root = PathBuf::from(args.next().ok_or(usage)?);
    let limit: usize = args.next().map_or(Ok(1000), |n| n.parse())?;
    let batch: usize = args.next().map_or(Ok(BATCH_SIZE), |n| n.parse())?;
    let texts = chunk_texts(&root, limit)?;

    let started = Instant::now();
    runtime()?;
    let runtime_ms = ms(started);
    let started = Instant::now();
    let mut model = OnnxEmbedder::load(&ModelSource::from_env(), workload)?;
    let load_ms = ms(started);
    let query = "how is a failed request retried";
    let started = Instant::now();
    model.embed(&[query])?;
    let first_query_ms = ms(started);
    let mut latencies: Vec<f64> = (0..20)
        .map(|_| {
            let started = Instant::now();
            model.embed(&[query]).map(|_| ms(started))
        })
        .collect::<Result<_, _>>()?;
    latencies.sort_by(f64::total_cmp);
    let started = Instant::now();
    for group in texts.chunks(64) {
        let refs: Vec<&str> = group.iter().map(String::as_str).collect();
        model.embed_batched(&refs, batch)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"workload\": \"{workload:?}\", \"model\": \"{}\", \"batch\": {batch}, \"runtime_ms\": {runtime_ms:.0}, \"load_ms\": {load_ms:.0}, \"first_query_ms\": {first_query_ms:.1}, \"query_p50_ms\": {:.1}, \"chunks\": {}, \"chunks_per_s\": {:.1}, \"peak_rss_mb\": {}}}",
        model.model_id(),
        latencies[latencies.len() / 2],
        texts.len(),
        texts.len() as f64 / seconds,
        peak_rss_mb()
    );
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The embedded texts of the first `limit` chunks under `root` that get vectors, shortest
/// first.
fn chunk_texts(root: &Path, limit: usize) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let settings = WalkSettings::default();
    let mut texts = Vec::new();
    for file in walk(root, &root.join(".quarry"), &settings)?.files {
        let bytes = std::fs::read(&file.abs_path)?;
        let Ok(text) = classify_content(&file.rel_path, &bytes, &settings) else {
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
    Ok(texts)
}

/// The process's peak resident set (VmHWM), in MB; 0 where `/proc` is not.
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
