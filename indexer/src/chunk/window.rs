//! Cutting chunks that exceed the token budget into overlapping windows.
//!
//! Windows are whole lines. Each window keeps the chunk's symbol, signature and enclosing
//! headers, so a window from the middle of a long function is still findable by its name and
//! still says what it belongs to. Consecutive windows overlap by about an eighth of the
//! budget so a statement cut at a boundary is whole in one of them.

use std::ops::Range;

use super::{Chunk, LineIndex};
use crate::tokens::TokenCounter;

/// Smallest budget honoured: anything lower would make one window per line.
const MIN_BUDGET: usize = 32;

/// Splits lines with the given token costs into windows of at most `budget` tokens (a single
/// line over the budget is a window of its own), overlapping by about `budget / 8` tokens.
pub(crate) fn plan_windows(line_costs: &[usize], budget: usize) -> Vec<Range<usize>> {
    let budget = budget.max(MIN_BUDGET);
    let overlap_budget = budget / 8;
    let mut windows = Vec::new();
    let mut start = 0;
    while start < line_costs.len() {
        let mut end = start;
        let mut used = 0;
        while end < line_costs.len() && (end == start || used + line_costs[end] <= budget) {
            used += line_costs[end];
            end += 1;
        }
        windows.push(start..end);
        if end == line_costs.len() {
            break;
        }
        // Overlap only with lines that still leave room for the next new line, so every
        // window reaches past the previous one's end.
        let room = budget.saturating_sub(line_costs[end]).min(overlap_budget);
        let mut next = end;
        let mut overlap = 0;
        while next > start + 1 && overlap + line_costs[next - 1] <= room {
            overlap += line_costs[next - 1];
            next -= 1;
        }
        start = next;
    }
    windows
}

/// The budget left for body lines once the repeated header is paid for; never under half
/// the budget, so a huge header cannot starve the body.
fn body_budget(base: &Chunk, budget: usize, counter: &dyn TokenCounter) -> usize {
    let header = counter.count(&base.header_text());
    budget.saturating_sub(header).max(budget / 2)
}

/// Returns `base` as is when it fits the budget, otherwise windows over its lines
/// (`base.start_line..=base.end_line` of `lines`), each trimmed of blank edge lines.
pub(crate) fn split_by_lines(
    base: Chunk,
    lines: &LineIndex<'_>,
    budget: usize,
    counter: &dyn TokenCounter,
) -> Vec<Chunk> {
    let budget_for_body = body_budget(&base, budget, counter);
    if counter.count(&base.text) <= budget_for_body {
        return vec![base];
    }
    let first = base.start_line;
    let costs: Vec<usize> = (base.start_line..=base.end_line)
        .map(|l| counter.count(lines.line(l)) + 1)
        .collect();
    let mut out = Vec::new();
    for window in plan_windows(&costs, budget_for_body) {
        let mut start = first + window.start as u32;
        let mut end = first + window.end as u32 - 1;
        while start < end && lines.is_blank(start) {
            start += 1;
        }
        while end > start && lines.is_blank(end) {
            end -= 1;
        }
        if lines.is_blank(start) {
            continue;
        }
        let mut chunk = base.clone();
        chunk.start_line = start;
        chunk.end_line = end;
        chunk.start_byte = lines.start_of(start);
        chunk.end_byte = lines.end_of(end);
        chunk.text = lines.lines(start, end);
        out.push(chunk);
    }
    out
}

/// Like [`split_by_lines`] for an outline (text that is not a verbatim span): windows over the
/// outline's own lines, each keeping the outlined item's whole span.
pub(crate) fn split_outline(base: Chunk, budget: usize, counter: &dyn TokenCounter) -> Vec<Chunk> {
    let budget_for_body = body_budget(&base, budget, counter);
    if counter.count(&base.text) <= budget_for_body {
        return vec![base];
    }
    let outline: Vec<&str> = base.text.lines().collect();
    let costs: Vec<usize> = outline.iter().map(|l| counter.count(l) + 1).collect();
    plan_windows(&costs, budget_for_body)
        .into_iter()
        .map(|window| {
            let mut chunk = base.clone();
            chunk.text = outline[window].join("\n");
            chunk
        })
        .collect()
}

/// The most bytes a chunk's text may hold for `max_tokens`: about eight bytes a token, never
/// under 4 KiB nor over 64 KiB. Token budgets bound ordinary code; this bounds what they
/// cannot, such as a minified bundle's single line of megabytes.
pub(crate) fn max_chunk_bytes(max_tokens: usize) -> usize {
    max_tokens.saturating_mul(8).clamp(4 * 1024, 64 * 1024)
}

/// Returns `chunk` as is when its text fits `max_bytes`, otherwise pieces of it that do: cut
/// at a line break when one is in reach, else at a space or punctuation near the limit, else
/// at a character boundary. Each piece keeps the chunk's metadata and spans the lines it
/// holds (a piece of one long line spans that line).
pub(crate) fn cap_bytes(chunk: Chunk, max_bytes: usize) -> Vec<Chunk> {
    if chunk.text.len() <= max_bytes {
        return vec![chunk];
    }
    let text = chunk.text.as_str();
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut line = chunk.start_line;
    while at < text.len() {
        let end = cut_point(text, at, max_bytes);
        let piece = &text[at..end];
        let breaks = piece.matches('\n').count() as u32;
        let body = piece.trim_end_matches('\n');
        if !body.trim().is_empty() {
            let leading = (piece.len() - piece.trim_start_matches('\n').len()) as u32;
            let mut out = chunk.clone();
            out.text = body.trim_start_matches('\n').to_string();
            out.start_line = (line + leading).min(chunk.end_line);
            out.end_line = (line + body.matches('\n').count() as u32).min(chunk.end_line);
            out.start_byte = chunk.start_byte + at;
            out.end_byte = chunk.start_byte + end;
            pieces.push(out);
        }
        line += breaks;
        at = end;
    }
    pieces
}

/// Where the piece starting at `at` ends: at most `max_bytes` on, at a char boundary.
fn cut_point(text: &str, at: usize, max_bytes: usize) -> usize {
    if text.len() - at <= max_bytes {
        return text.len();
    }
    let mut limit = at + max_bytes;
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    let window = &text[at..limit];
    if let Some(newline) = window.rfind('\n')
        && newline > 0
    {
        return at + newline + 1;
    }
    // No line break in reach: cut after a space or punctuation in the last quarter.
    let floor = window.len() - window.len() / 4;
    let soft = window
        .char_indices()
        .rev()
        .take_while(|(i, _)| *i >= floor)
        .find(|(_, c)| c.is_whitespace() || matches!(c, ';' | ',' | '}' | ')' | '>'))
        .map(|(i, c)| i + c.len_utf8());
    at + soft.unwrap_or(window.len()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_line_chunk(text: String) -> Chunk {
        Chunk {
            graph: Default::default(),
            id: String::new(),
            path: "app.min.js".into(),
            lang: "text".into(),
            kind: crate::ChunkKind::Text,
            symbol: None,
            signature: None,
            doc: None,
            context: None,
            start_line: 1,
            end_line: text.lines().count() as u32,
            start_byte: 0,
            end_byte: text.len(),
            text,
        }
    }

    #[test]
    fn a_huge_line_is_cut_into_pieces_under_the_cap() {
        let line: String = (0..40_000).map(|i| format!("var a{i}=f({i});")).collect();
        let text = format!("// header\n{line}\n// footer");
        let pieces = cap_bytes(long_line_chunk(text.clone()), 4096);
        assert!(pieces.len() > 100);
        assert!(pieces.iter().all(|p| p.text.len() <= 4096));
        // Nothing lost: the pieces put back together are the text.
        let joined: String = pieces
            .iter()
            .map(|p| &text[p.start_byte..p.end_byte])
            .collect();
        assert_eq!(joined.trim_end(), text.trim_end());
        assert_eq!(pieces[0].start_line, 1);
        assert!(pieces.iter().skip(1).all(|p| p.start_line >= 2));
        assert_eq!(pieces.last().unwrap().end_line, 3);
        let small = long_line_chunk("fn a() {}".into());
        assert_eq!(cap_bytes(small.clone(), 4096), vec![small]);
    }

    #[test]
    fn cuts_keep_multibyte_characters_whole() {
        let text = "é".repeat(10_000);
        let pieces = cap_bytes(long_line_chunk(text), 4097);
        assert!(
            pieces
                .iter()
                .all(|p| p.text.len() <= 4097 && p.text.chars().all(|c| c == 'é'))
        );
    }

    #[test]
    fn windows_cover_everything_and_overlap() {
        let costs = vec![10; 100];
        let windows = plan_windows(&costs, 100);
        assert_eq!(windows.first().map(|w| w.start), Some(0));
        assert_eq!(windows.last().map(|w| w.end), Some(100));
        for pair in windows.windows(2) {
            assert!(pair[1].start < pair[0].end, "windows overlap: {pair:?}");
            assert!(pair[1].start > pair[0].start, "windows advance: {pair:?}");
        }
        for w in &windows {
            assert!(w.len() * 10 <= 100);
        }
    }

    #[test]
    fn a_line_over_budget_is_its_own_window() {
        let windows = plan_windows(&[5, 500, 5], 64);
        assert_eq!(windows, vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn every_window_reaches_past_the_previous_one() {
        // Minified code: short lines, then lines far over the budget.
        let mut costs = vec![4; 40];
        costs.extend([900, 700, 3, 800]);
        let windows = plan_windows(&costs, 64);
        for pair in windows.windows(2) {
            assert!(pair[1].end > pair[0].end, "{pair:?}");
        }
        assert_eq!(windows.last().map(|w| w.end), Some(costs.len()));
    }
}
