//! Chunking files without a grammar: Markdown by heading, everything else by line windows.

use super::window::split_by_lines;
use super::{Chunk, ChunkKind, ChunkSettings, LineIndex};
use crate::tokens::TokenCounter;

/// Line windows over a whole text file, each within the token budget.
pub(crate) fn chunk_lines(
    path: &str,
    lang: &str,
    text: &str,
    settings: &ChunkSettings,
    counter: &dyn TokenCounter,
) -> Vec<Chunk> {
    let lines = LineIndex::new(text);
    let total = lines.len() as u32;
    if total == 0 {
        return Vec::new();
    }
    let Some((start, end)) = trim_blank(&lines, 1, total) else {
        return Vec::new();
    };
    let base = span_chunk(path, lang, ChunkKind::Text, None, &lines, start, end);
    split_by_lines(base, &lines, settings.max_tokens, counter)
}

/// One chunk per Markdown section (a heading and what follows it up to the next heading),
/// named by its heading path (`Install > From source`); text before the first heading is a
/// section of its own. Headings inside fenced code blocks do not count.
pub(crate) fn chunk_markdown(
    path: &str,
    text: &str,
    settings: &ChunkSettings,
    counter: &dyn TokenCounter,
) -> Vec<Chunk> {
    let lines = LineIndex::new(text);
    let total = lines.len() as u32;
    let mut sections: Vec<(u32, Option<String>)> = Vec::new();
    let mut heading_path: Vec<(usize, String)> = Vec::new();
    let mut fence: Option<&str> = None;
    for number in 1..=total {
        let line = lines.line(number);
        let trimmed = line.trim_start();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        if let Some((level, title)) = heading(line) {
            heading_path.retain(|(l, _)| *l < level);
            heading_path.push((level, title));
            let name = heading_path
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" > ");
            sections.push((number, Some(name)));
        } else if sections.is_empty() {
            sections.push((number, None));
        }
    }
    let mut chunks = Vec::new();
    for (i, (start, name)) in sections.iter().enumerate() {
        let end = sections.get(i + 1).map_or(total, |(next, _)| next - 1);
        let Some((start, end)) = trim_blank(&lines, *start, end) else {
            continue;
        };
        let base = span_chunk(
            path,
            "markdown",
            ChunkKind::Section,
            name.clone(),
            &lines,
            start,
            end,
        );
        chunks.extend(split_by_lines(base, &lines, settings.max_tokens, counter));
    }
    chunks
}

/// An ATX heading's level and title (`## Install` → `(2, "Install")`).
fn heading(line: &str) -> Option<(usize, String)> {
    if line.starts_with("    ") || line.starts_with('\t') {
        return None;
    }
    let trimmed = line.trim_start();
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim().to_string();
    Some((level, title))
}

fn trim_blank(lines: &LineIndex<'_>, mut start: u32, mut end: u32) -> Option<(u32, u32)> {
    while start <= end && lines.is_blank(start) {
        start += 1;
    }
    while end >= start && lines.is_blank(end) {
        end -= 1;
    }
    (start <= end).then_some((start, end))
}

fn span_chunk(
    path: &str,
    lang: &str,
    kind: ChunkKind,
    symbol: Option<String>,
    lines: &LineIndex<'_>,
    start: u32,
    end: u32,
) -> Chunk {
    Chunk {
        graph: Default::default(),
        id: String::new(),
        path: path.to_string(),
        lang: lang.to_string(),
        kind,
        symbol,
        signature: None,
        doc: None,
        context: None,
        start_line: start,
        end_line: end,
        start_byte: lines.start_of(start),
        end_byte: lines.end_of(end),
        text: lines.lines(start, end),
    }
}
