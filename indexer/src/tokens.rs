//! Token counting for chunk budgets.
//!
//! Chunks are sized in tokens of the embedding model's tokenizer. Until an embedder is
//! configured, [`ApproxTokenCounter`] estimates that count from the shape of the text; an
//! embedder can supply an exact [`TokenCounter`] instead, and the chunker never needs to know.

/// Counts how many model tokens a piece of text costs.
pub trait TokenCounter: Send + Sync {
    /// The number of tokens `text` would take.
    fn count(&self, text: &str) -> usize;
}

/// Estimates WordPiece-style token counts for code and prose without a vocabulary.
///
/// Each punctuation character is one token (BERT-family tokenizers split on every
/// punctuation mark, `_` included) and each run of letters and digits costs one token per
/// six characters, rounded up, which tracks sub-word splitting of identifiers closely enough
/// to size windows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproxTokenCounter;

impl TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        let mut tokens = 0;
        let mut word_len = 0usize;
        for ch in text.chars() {
            if ch.is_alphanumeric() {
                word_len += 1;
                continue;
            }
            if word_len > 0 {
                tokens += word_len.div_ceil(6);
                word_len = 0;
            }
            if !ch.is_whitespace() {
                tokens += 1;
            }
        }
        tokens + word_len.div_ceil(6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_punctuation() {
        let c = ApproxTokenCounter;
        assert_eq!(c.count(""), 0);
        assert_eq!(c.count("   \n\t"), 0);
        assert_eq!(c.count("fn load"), 2);
        // load _ config ( ) -> 6 tokens
        assert_eq!(c.count("load_config()"), 5);
        assert_eq!(c.count("abcdefghijkl"), 2);
    }
}
