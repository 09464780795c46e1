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

#[cfg(test)]
mod tests {
    use super::*;

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
