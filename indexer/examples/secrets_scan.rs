//! Times the secret rules over a tree and shows what they find, to weigh their cost in a
//! sync and to read their findings for false positives.
//!
//!   cargo run --release --example secrets_scan -- DIR [SAMPLES]
//!
//! Prints files and MiB scanned, the scan's throughput, secret files by name and content,
//! redactions by rule, and up to SAMPLES (default 20) findings with their line, secret cut.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use quarry_indexer::secrets::{self, TextKind};
use quarry_indexer::walk::{WalkSettings, walk};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().ok_or("usage: secrets_scan DIR [SAMPLES]")?);
    let samples: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let open = WalkSettings {
        include_secrets: true,
        ..WalkSettings::default()
    };
    let outcome = walk(&root, &root.join(".quarry"), &open)?;
    let mut texts = Vec::new();
    let mut by_name = 0;
    for file in &outcome.files {
        let name = file.rel_path.rsplit('/').next().unwrap_or(&file.rel_path);
        if secrets::is_secret_file_name(name) {
            by_name += 1;
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&file.abs_path) {
            texts.push((file.rel_path.clone(), text));
        }
    }
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let started = Instant::now();
    let mut by_content = 0;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut found = Vec::new();
    for (path, text) in &texts {
        if secrets::is_secret_content(path, text) {
            by_content += 1;
            continue;
        }
        for finding in secrets::find(text, TextKind::of_path(path)) {
            *counts.entry(finding.rule).or_default() += 1;
            found.push((path, text, finding));
        }
    }
    let elapsed = started.elapsed();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{} files, {mib:.1} MiB scanned in {:.0} ms ({:.0} MiB/s)",
        texts.len(),
        elapsed.as_secs_f64() * 1000.0,
        mib / elapsed.as_secs_f64()
    );
    println!("secret files: {by_name} by name, {by_content} by content");
    println!("redactions: {counts:?}");
    for (path, text, finding) in found.iter().take(samples) {
        let line_start = text[..finding.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[finding.end..]
            .find('\n')
            .map_or(text.len(), |i| finding.end + i);
        let line_no = text[..finding.start].matches('\n').count() + 1;
        let secret = &text[finding.start..finding.end];
        let shown: String = secret.chars().take(4).collect();
        println!(
            "  {path}:{line_no} [{}] {}{shown}…{}",
            finding.rule,
            text[line_start..finding.start].trim_start(),
            &text[finding.end..line_end]
        );
    }
    Ok(())
}
