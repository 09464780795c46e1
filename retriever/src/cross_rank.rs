//! The optional cross-encoder stage: after the ranking signals, a reranker model reads the
//! query with each of the top candidates and orders them by its scores.
//!
//! Configured by `[search] reranker` ([`crate::settings`]); off by default. The model is
//! loaded on the first hybrid search that needs it. When it cannot be loaded or fails on a
//! query, the stage turns itself off for the handle's lifetime and the search keeps the
//! signals' order: a reranker never makes a search fail ([`CrossStage::unavailable`] says
//! why, for a note).

use std::collections::HashMap;

use quarry_indexer::Chunk;
use quarry_indexer::embed::cross::{CrossEncoder, load_cross_encoder};

use crate::filter::ChunkFilter;
use crate::fusion::Fused;

/// Candidates the cross-encoder reads per query.
pub const CROSS_RERANKED: usize = 20;
/// Bytes of each candidate handed to it (its window is 512 tokens).
const CANDIDATE_BYTES: usize = 1500;

/// The stage's state in one retriever.
pub(crate) enum CrossStage {
    /// No reranker configured.
    Off,
    /// Configured; loaded on first use.
    Configured(String),
    /// Loaded.
    Ready(Box<dyn CrossEncoder>),
    /// Configured but not usable: the reason, for a note.
    Unavailable(String),
}

impl CrossStage {
    /// The stage for a configured model name, if any.
    pub(crate) fn configured(name: Option<String>) -> Self {
        name.map_or(CrossStage::Off, CrossStage::Configured)
    }

    /// Why a configured reranker is not used, once that is known.
    pub(crate) fn unavailable(&self) -> Option<&str> {
        match self {
            CrossStage::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    /// Re-orders the first [`CROSS_RERANKED`] candidates that pass `filter` by the model's
    /// scores, in their own slots (lifted exact definitions keep theirs).
    pub(crate) fn rerank(
        &mut self,
        fused: &mut [Fused],
        chunks: &HashMap<String, Chunk>,
        filter: &ChunkFilter,
        query: &str,
    ) {
        if let CrossStage::Configured(name) = self {
            *self = match load_cross_encoder(name) {
                Ok(model) => CrossStage::Ready(model),
                Err(e) => CrossStage::Unavailable(format!(
                    "reranker {name} is unavailable ({e}); ranked by the signals alone"
                )),
            };
        }
        let CrossStage::Ready(model) = self else {
            return;
        };
        let slots: Vec<usize> = fused
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.explain.exact_symbol)
            .filter(|(_, f)| chunks.get(&f.id).is_some_and(|c| filter.keeps(c)))
            .map(|(i, _)| i)
            .take(CROSS_RERANKED)
            .collect();
        if slots.len() < 2 {
            return;
        }
        let texts: Vec<String> = slots
            .iter()
            .filter_map(|&i| chunks.get(&fused[i].id))
            .map(candidate_text)
            .collect();
        let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();
        let scores = match model.score(query, &borrowed) {
            Ok(scores) if scores.len() == slots.len() => scores,
            Ok(_) => return,
            Err(e) => {
                *self = CrossStage::Unavailable(format!(
                    "reranker failed ({e}); ranked by the signals alone"
                ));
                return;
            }
        };
        reorder(fused, &slots, &scores);
    }
}

/// Puts the candidates at `slots` in the order of `scores` (best first), back into the same
/// slots, keeping the slots' scores so the list stays ordered by score.
fn reorder(fused: &mut [Fused], slots: &[usize], scores: &[f32]) {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let slot_scores: Vec<f32> = slots.iter().map(|&i| fused[i].score).collect();
    let moved: Vec<(String, crate::Explain)> = order
        .iter()
        .map(|&o| (fused[slots[o]].id.clone(), fused[slots[o]].explain.clone()))
        .collect();
    for ((&slot, (id, explain)), score) in slots.iter().zip(moved).zip(slot_scores) {
        fused[slot].id = id;
        fused[slot].explain = explain;
        fused[slot].score = score;
    }
}

/// What the model reads of a candidate: its symbol, then its text, bounded.
fn candidate_text(chunk: &Chunk) -> String {
    let mut text = String::new();
    if let Some(symbol) = &chunk.symbol {
        text.push_str(symbol);
        text.push('\n');
    }
    text.push_str(&chunk.text);
    if text.len() > CANDIDATE_BYTES {
        let mut cut = CANDIDATE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Explain;

    fn fused(ids: &[&str]) -> Vec<Fused> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Fused {
                id: id.to_string(),
                score: 1.0 - i as f32 / 10.0,
                explain: Explain::default(),
            })
            .collect()
    }

    #[test]
    fn reorders_in_place_keeping_scores_descending() {
        let mut list = fused(&["a", "b", "c", "d"]);
        reorder(&mut list, &[1, 2, 3], &[0.1, 0.9, 0.5]);
        let ids: Vec<&str> = list.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "d", "b"]);
        assert!(list.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn an_unloadable_reranker_turns_off_and_keeps_the_order() {
        let mut stage = CrossStage::configured(Some("no/such-reranker".to_string()));
        let mut list = fused(&["a", "b"]);
        stage.rerank(&mut list, &HashMap::new(), &ChunkFilter::none(), "query");
        assert_eq!(list[0].id, "a");
        let note = stage.unavailable().unwrap_or_default();
        assert!(note.contains("no/such-reranker"), "{note}");
        assert!(note.contains("signals alone"), "{note}");
    }

    #[test]
    fn off_by_default() {
        assert!(matches!(CrossStage::configured(None), CrossStage::Off));
    }
}
