//! `quarry search`: the best chunks for a query, for people or (`--json`) for programs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use quarry_indexer::IndexLayout;
use quarry_indexer::embed::ModelSlot;
use quarry_retriever::{
    FileHit, Hit, Mode, Reader, SearchRequest, Source, TestScope, open_reader, open_team_reader,
};

use crate::commands::find_layout;
use crate::commands::team::{TeamSetup, team_setup};
use crate::daemon::client::DaemonClient;
use crate::format::Style;

/// Lines of each hit shown in human output.
const PREVIEW_LINES: usize = 4;

/// Arguments of `quarry search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: words, identifiers, paths.
    query: String,

    /// Number of results.
    #[arg(short, default_value_t = 10)]
    k: usize,

    /// Only this language (rust, python, markdown, toml, ...).
    #[arg(long, value_name = "LANG")]
    lang: Option<String>,

    /// Only this kind of chunk (function, method, class, struct, enum, trait, impl, module,
    /// section, ...).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,

    /// hybrid (BM25 and vectors, fused), vector or keyword.
    #[arg(long, default_value = "hybrid", value_name = "MODE")]
    mode: Mode,

    /// Show each hit's rank and score in each retriever.
    #[arg(long)]
    explain: bool,

    /// Only paths matching this glob (`src/**`, `*.py`) or under this folder (`src/store`).
    #[arg(long, value_name = "GLOB")]
    path: Option<String>,

    /// Print a JSON array of hits (path, start_line, end_line, symbol, kind, lang, score, text;
    /// `test: true` on test code; commit hits add commit, date and paths).
    #[arg(long)]
    json: bool,

    /// Rank files instead of chunks: each file scored by all its matching chunks, with its
    /// best spans (`--json`: path, lang, score, spans of start_line, end_line, symbol, kind,
    /// score; `test: true` on test code).
    #[arg(long)]
    files: bool,

    /// code, commits (the git history: messages and changed paths) or all.
    #[arg(long, default_value = "code", value_name = "SOURCE")]
    source: Source,

    /// Test code (test files, Rust `tests` modules): include, exclude or only.
    #[arg(long, default_value = "include", value_name = "SCOPE")]
    tests: TestScope,

    /// Search the index of this repository instead of the one around the current directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// Runs `quarry search`.
pub fn run(args: SearchArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let request = SearchRequest {
        query: args.query.clone(),
        k: args.k,
        lang: args.lang,
        kind: args.kind,
        path: args.path,
        mode: args.mode,
        explain: args.explain,
        source: args.source,
        tests: args.tests,
    };
    if args.files {
        return run_files(&layout, &request, args.json);
    }
    let hits = match open_index(&layout, team_setup(&layout.root)?, request.mode)? {
        IndexAccess::Daemon(mut daemon) => {
            let (hits, note) = daemon.search(request)?;
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            hits
        }
        IndexAccess::Direct(mut reader) => {
            let mode = reader.mode;
            let hits = reader
                .retriever
                .search(&SearchRequest { mode, ..request })?;
            if let Some(note) = reader.retriever.reranker_note() {
                eprintln!("note: {note}");
            }
            reader.end_with_process();
            hits
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(&mut out, &hits)?;
        writeln!(out)?;
        return Ok(());
    }
    if hits.is_empty() {
        eprintln!("no matches for `{}`", crate::format::sanitize(&args.query));
        return Ok(());
    }
    let hits: Vec<Hit> = hits.into_iter().map(printable).collect();
    let style = Style::stdout();
    let words = query_words(&args.query);
    for (i, hit) in hits.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_hit(&mut out, hit, &words, style)?;
    }
    Ok(())
}

/// `quarry search --files`: ranked files, each with its best spans.
fn run_files(layout: &IndexLayout, request: &SearchRequest, json: bool) -> Result<()> {
    let files = match open_index(layout, team_setup(&layout.root)?, request.mode)? {
        IndexAccess::Daemon(mut daemon) => {
            let (files, note) = daemon.search_files(request.clone())?;
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            files
        }
        IndexAccess::Direct(mut reader) => {
            let mode = reader.mode;
            let files = reader.retriever.search_files(&SearchRequest {
                mode,
                ..request.clone()
            })?;
            reader.end_with_process();
            files
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer(&mut out, &files)?;
        writeln!(out)?;
        return Ok(());
    }
    if files.is_empty() {
        eprintln!(
            "no matches for `{}`",
            crate::format::sanitize(&request.query)
        );
        return Ok(());
    }
    let style = Style::stdout();
    for file in &files {
        write_file(&mut out, file, style)?;
    }
    Ok(())
}

/// One ranked file: its path and score, then a line per span.
fn write_file(out: &mut impl Write, file: &FileHit, style: Style) -> Result<()> {
    use crate::format::sanitize;
    writeln!(
        out,
        "{}  {}",
        style.path(&sanitize(&file.path)),
        style.dim(&format!(
            "{}{} · {}",
            file.lang,
            if file.test { " · test" } else { "" },
            file.score
        ))
    )?;
    for span in &file.spans {
        let symbol = span.symbol.as_deref().map(sanitize).unwrap_or_default();
        writeln!(
            out,
            "  {}  {}  {}",
            style.line(&format!("{}-{}", span.start_line, span.end_line)),
            style.symbol(&symbol),
            style.dim(&span.kind)
        )?;
    }
    Ok(())
}

/// `hit` with what came from files (path, symbol, text) safe to print on a terminal.
fn printable(mut hit: Hit) -> Hit {
    use crate::format::sanitize;
    hit.path = sanitize(&hit.path).into_owned();
    hit.symbol = hit.symbol.map(|s| sanitize(&s).into_owned());
    hit.text = sanitize(&hit.text).into_owned();
    hit
}

/// How a command reaches the index.
pub(crate) enum IndexAccess {
    /// Through the daemon that keeps the local index.
    Daemon(DaemonClient),
    /// With a reader of its own, in the mode it can serve now.
    Direct(Box<Reader>),
}

/// Opens the index a search in `mode` reads: the team index when `team` is configured,
/// otherwise the local one, through its daemon when one runs. A reader that falls back to
/// keyword search says why on stderr.
pub(crate) fn open_index(
    layout: &IndexLayout,
    team: Option<TeamSetup>,
    mode: Mode,
) -> Result<IndexAccess> {
    if let Some(setup) = team {
        let reader = open_team_reader(layout, setup.store, Box::new(setup.embedder), mode)?;
        return Ok(IndexAccess::Direct(Box::new(reader)));
    }
    if let Some(daemon) = DaemonClient::connect(layout) {
        return Ok(IndexAccess::Daemon(daemon));
    }
    let reader = open_reader(layout, mode, &ModelSlot::one_shot())?;
    if let Some(fallback) = &reader.fallback {
        eprintln!("note: {fallback}");
    }
    Ok(IndexAccess::Direct(Box::new(reader)))
}

fn write_hit(out: &mut impl Write, hit: &Hit, words: &[String], style: Style) -> Result<()> {
    if let Some(commit) = &hit.commit {
        return write_commit(out, hit, commit, style);
    }
    let location = format!("{}:{}-{}", hit.path, hit.start_line, hit.end_line);
    let symbol = hit.symbol.as_deref().unwrap_or("");
    writeln!(
        out,
        "{}  {}  {}",
        style.path(&location),
        style.symbol(symbol),
        style.dim(&format!(
            "{}{} · {}",
            hit.kind,
            if hit.test { " · test" } else { "" },
            hit.score
        ))
    )?;
    if let Some(explain) = &hit.explain {
        let part = |name: &str, rank: Option<usize>, score: Option<f32>| match (rank, score) {
            (Some(rank), Some(score)) => format!("{name} #{rank} ({score:.3})"),
            _ => format!("{name} -"),
        };
        let mut line = format!(
            "{} · {}",
            part("keyword", explain.keyword_rank, explain.keyword_score),
            part("vector", explain.vector_rank, explain.vector_score)
        );
        if explain.exact_symbol {
            line.push_str(" · exact symbol");
        }
        writeln!(out, "  {}", style.dim(&line))?;
    }
    let lines: Vec<&str> = hit.text.lines().collect();
    let first_match = lines
        .iter()
        .position(|line| matches_any(line, words))
        .unwrap_or(0);
    let from = first_match
        .saturating_sub(1)
        .min(lines.len().saturating_sub(PREVIEW_LINES));
    let to = (from + PREVIEW_LINES).min(lines.len());
    let verbatim = hit.end_line as usize - hit.start_line as usize + 1 == lines.len();
    let width = (hit.start_line as usize + to).to_string().len();
    for (offset, line) in lines[from..to].iter().enumerate() {
        let number = if verbatim {
            (hit.start_line as usize + from + offset).to_string()
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}│ {}",
            style.line(&format!("{number:>width$}")),
            highlight(line, words, style)
        )?;
    }
    if to < lines.len() {
        writeln!(out, "{}│ {}", " ".repeat(width), style.dim("…"))?;
    }
    Ok(())
}

/// A commit hit: short id, date, subject, then the paths it changed.
fn write_commit(out: &mut impl Write, hit: &Hit, commit: &str, style: Style) -> Result<()> {
    let short = &commit[..commit.len().min(10)];
    let date = hit.date.as_deref().unwrap_or("");
    writeln!(
        out,
        "{}  {}  {}",
        style.path(&format!("commit {short}")),
        style.symbol(hit.symbol.as_deref().unwrap_or("")),
        style.dim(&format!("{} · {}", &date[..date.len().min(10)], hit.score))
    )?;
    let paths = hit.paths.as_deref().unwrap_or_default();
    for path in paths.iter().take(PREVIEW_LINES) {
        writeln!(out, "  {}", style.dim(path))?;
    }
    if paths.len() > PREVIEW_LINES {
        writeln!(
            out,
            "  {}",
            style.dim(&format!("… {} more", paths.len() - PREVIEW_LINES))
        )?;
    }
    Ok(())
}

/// Lowercased words of the query worth highlighting.
fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 2)
        .map(str::to_lowercase)
        .collect()
}

fn matches_any(line: &str, words: &[String]) -> bool {
    let lower = line.to_lowercase();
    words.iter().any(|w| lower.contains(w.as_str()))
}

/// The line with every occurrence of a query word painted, when styling is on.
fn highlight(line: &str, words: &[String], style: Style) -> String {
    if !style.enabled() || words.is_empty() {
        return line.to_string();
    }
    let lower = line.to_lowercase();
    if lower.len() != line.len() {
        return line.to_string(); // case mapping changed byte offsets; leave it plain
    }
    let mut marked = vec![false; line.len()];
    for word in words {
        for (at, _) in lower.match_indices(word.as_str()) {
            marked[at..at + word.len()]
                .iter_mut()
                .for_each(|m| *m = true);
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < line.len() {
        let mut j = i;
        while j < line.len() && marked[j] == marked[i] {
            j += 1;
        }
        while !line.is_char_boundary(j) {
            j += 1;
        }
        let piece = &line[i..j];
        if marked[i] {
            out.push_str(&style.matched(piece));
        } else {
            out.push_str(piece);
        }
        i = j;
    }
    out
}
