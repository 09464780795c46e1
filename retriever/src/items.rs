//! Whole items out of windows.
//!
//! A function longer than the chunk budget is indexed as overlapping windows, so every part
//! of it is findable on its own (`chunk/window.rs`). As a *hit*, though, a window is a poor
//! answer: with a long doc comment (tokio's and axum's carry whole examples) the best
//! window for a question in words is often the doc's first lines, with no code and not
//! even the `fn` line. So a hit on a window becomes the whole item: the run of windows
//! sharing its symbol, kind, signature and doc, spliced back into the item's verbatim lines,
//! when the item is at most [`MAX_ITEM_LINES`] long (a longer one stays a window).
//!
//! Invariant: a whole item is exactly its windows' lines (windows are verbatim and cover
//! every non-blank line between them), so its text is still the file's text of its span.

use std::collections::{BTreeMap, HashMap};

use quarry_indexer::{Chunk, ChunkKind};

use crate::SearchError;
use crate::source::CandidateSource;

/// Longest item a hit is widened to, in lines.
pub const MAX_ITEM_LINES: u32 = 160;

/// Widens window hits to their items, reading each file's chunks once per search.
pub(crate) struct Items<'s> {
    source: &'s dyn CandidateSource,
    files: HashMap<String, Vec<Chunk>>,
    /// The source's file listing, for a source without a path lookup (read at most once).
    listing: Option<BTreeMap<String, Vec<String>>>,
}

impl<'s> Items<'s> {
    pub(crate) fn new(source: &'s dyn CandidateSource) -> Self {
        Items {
            source,
            files: HashMap::new(),
            listing: None,
        }
    }

    /// The whole item `chunk` is a window of, or `chunk` itself.
    pub(crate) fn whole(&mut self, chunk: &Chunk) -> Result<Chunk, SearchError> {
        if !can_be_window(chunk.kind) {
            return Ok(chunk.clone());
        }
        if !self.files.contains_key(&chunk.path) {
            let chunks = match self.source.chunks_of_path(&chunk.path)? {
                Some(chunks) => chunks,
                None => {
                    if self.listing.is_none() {
                        self.listing = Some(self.source.files()?);
                    }
                    let ids = self
                        .listing
                        .as_ref()
                        .and_then(|l| l.get(&chunk.path))
                        .cloned()
                        .unwrap_or_default();
                    self.source.chunks_by_id(&ids)?.into_values().collect()
                }
            };
            self.files.insert(chunk.path.clone(), chunks);
        }
        let siblings = self.files.get(&chunk.path).map_or(&[][..], Vec::as_slice);
        Ok(widen(chunk, siblings).unwrap_or_else(|| chunk.clone()))
    }
}

/// Kinds whose chunks are verbatim and may be cut into windows.
fn can_be_window(kind: ChunkKind) -> bool {
    matches!(
        kind,
        ChunkKind::Function
            | ChunkKind::Method
            | ChunkKind::Struct
            | ChunkKind::Enum
            | ChunkKind::Macro
    )
}

/// `chunk` widened to the contiguous run of its item's windows among `siblings` (the
/// chunks of its file); `None` when it is not a window or the item is too long.
fn widen(chunk: &Chunk, siblings: &[Chunk]) -> Option<Chunk> {
    let mut run: Vec<&Chunk> = siblings
        .iter()
        .filter(|c| {
            c.kind == chunk.kind
                && c.symbol == chunk.symbol
                && c.signature == chunk.signature
                && c.doc == chunk.doc
                && c.context == chunk.context
        })
        .collect();
    if run.len() < 2 {
        return None;
    }
    run.sort_by_key(|c| (c.start_line, c.end_line));
    // The windows of one item overlap or touch; keep the run around `chunk`.
    let at = run.iter().position(|c| c.id == chunk.id)?;
    let mut first = at;
    while first > 0 && run[first].start_line <= run[first - 1].end_line + 1 {
        first -= 1;
    }
    let mut last = at;
    while last + 1 < run.len() && run[last + 1].start_line <= run[last].end_line + 1 {
        last += 1;
    }
    if first == last {
        return None;
    }
    let run = &run[first..=last];
    let start = run[0].start_line;
    let end = run.iter().map(|c| c.end_line).max()?;
    if end - start + 1 > MAX_ITEM_LINES {
        return None;
    }
    let mut lines: Vec<Option<&str>> = vec![None; (end - start + 1) as usize];
    for window in run {
        for (offset, line) in window.text.split('\n').enumerate() {
            let slot = (window.start_line - start) as usize + offset;
            if let Some(slot) = lines.get_mut(slot) {
                slot.get_or_insert(line);
            }
        }
    }
    let text: Vec<&str> = lines.iter().map(|l| l.unwrap_or("")).collect();
    let mut whole = chunk.clone();
    whole.start_line = start;
    whole.end_line = end;
    whole.start_byte = run[0].start_byte;
    whole.end_byte = run.iter().map(|c| c.end_byte).max()?;
    whole.text = text.join("\n");
    Some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: &str, start: u32, lines: &[&str]) -> Chunk {
        Chunk {
            id: id.to_string(),
            path: "src/notify.rs".to_string(),
            lang: "rust".to_string(),
            kind: ChunkKind::Method,
            symbol: Some("crate::Notify::notify_one".to_string()),
            signature: Some("pub fn notify_one(&self)".to_string()),
            doc: Some("Notifies the first waiting task.".to_string()),
            context: Some("impl Notify".to_string()),
            start_line: start,
            end_line: start + lines.len() as u32 - 1,
            start_byte: start as usize * 10,
            end_byte: (start as usize + lines.len()) * 10,
            text: lines.join("\n"),
            graph: Default::default(),
        }
    }

    #[test]
    fn a_doc_window_becomes_the_whole_item() {
        let head = window(
            "a",
            10,
            &["/// Notifies", "/// the first", "/// waiting task."],
        );
        let tail = window(
            "b",
            12,
            &["/// waiting task.", "pub fn notify_one(&self) {", "}"],
        );
        let whole = widen(&head, &[tail.clone(), head.clone()]).expect("widened");
        assert_eq!((whole.start_line, whole.end_line), (10, 14));
        assert_eq!(
            whole.text,
            "/// Notifies\n/// the first\n/// waiting task.\npub fn notify_one(&self) {\n}"
        );
        assert_eq!(whole.id, "a");
    }

    #[test]
    fn separate_items_and_whole_chunks_stay_as_they_are() {
        let one = window("a", 10, &["fn f() {}"]);
        assert!(widen(&one, std::slice::from_ref(&one)).is_none());
        // Same symbol further down (a `#[cfg]` twin): not part of the run.
        let twin = window("b", 40, &["fn f() {}"]);
        assert!(widen(&one, &[one.clone(), twin]).is_none());
        let mut other = window("c", 11, &["fn g() {}"]);
        other.symbol = Some("crate::g".to_string());
        assert!(widen(&one, &[one.clone(), other]).is_none());
    }

    #[test]
    fn long_items_stay_windows() {
        let body: Vec<String> = (0..100).map(|i| format!("    step({i});")).collect();
        let body: Vec<&str> = body.iter().map(String::as_str).collect();
        let a = window("a", 1, &body);
        let b = window("b", 95, &body);
        assert!(widen(&a, &[a.clone(), b]).is_none());
    }
}
