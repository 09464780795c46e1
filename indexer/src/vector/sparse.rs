//! BM25 as sparse vectors, so keyword retrieval can run inside a vector store.
//!
//! A team index keeps no tantivy index: its keyword side is a sparse vector per chunk beside
//! the dense one. The client does the half of BM25 that depends on the chunk alone: the code
//! tokenizer of the local keyword index ([`crate::keyword::tokenizer`]), field boosts like
//! the local index's (the symbol counts three times the body), and BM25's saturated,
//! length-normalised term frequency. The half that depends on the whole collection, the
//! inverse document frequency, is Qdrant's `idf` modifier on the sparse vector, computed by
//! the server from the points it holds. A query is the set of its terms with weight 1, so
//! the dot product is BM25's sum over the query's terms.
//!
//! Term ids are the first four bytes of the term's blake3 hash: stable across machines and
//! releases, which a collection shared by a team needs.

use std::collections::BTreeMap;

use crate::Chunk;
use crate::keyword::field_boost;
use crate::keyword::tokenizer::analyzer;

/// BM25's term-frequency saturation.
const K1: f32 = 1.2;
/// BM25's length normalisation.
const B: f32 = 0.75;

/// A sparse vector: term ids ascending, each with its weight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    /// Term ids, ascending and distinct.
    pub indices: Vec<u32>,
    /// The weight of each term id.
    pub values: Vec<f32>,
}

impl SparseVector {
    /// Whether no term has a weight.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    fn from_weights(weights: BTreeMap<u32, f32>) -> Self {
        let (indices, values) = weights.into_iter().filter(|(_, w)| *w > 0.0).unzip();
        SparseVector { indices, values }
    }
}

/// A chunk field the encoder reads, with its boost and the length a typical chunk's field
/// has (BM25 normalises by length relative to it; a fixed figure keeps a chunk's vector
/// independent of the rest of the collection, so unchanged chunks never need rewriting).
struct FieldWeight {
    boost: f32,
    typical_len: f32,
}

const SYMBOL: FieldWeight = FieldWeight {
    boost: field_boost::SYMBOL,
    typical_len: 6.0,
};
const SIGNATURE: FieldWeight = FieldWeight {
    boost: field_boost::SIGNATURE,
    typical_len: 14.0,
};
const PATH: FieldWeight = FieldWeight {
    boost: field_boost::PATH,
    typical_len: 8.0,
};
const DOC: FieldWeight = FieldWeight {
    boost: field_boost::DOC,
    typical_len: 30.0,
};
const CONTEXT: FieldWeight = FieldWeight {
    boost: field_boost::CONTEXT,
    typical_len: 8.0,
};
const BODY: FieldWeight = FieldWeight {
    boost: field_boost::BODY,
    typical_len: 160.0,
};

/// The sparse vector stored for a chunk.
pub fn encode_chunk(chunk: &Chunk) -> SparseVector {
    let mut weights: BTreeMap<u32, f32> = BTreeMap::new();
    let fields = [
        (chunk.symbol.as_deref(), SYMBOL),
        (chunk.signature.as_deref(), SIGNATURE),
        (Some(chunk.path.as_str()), PATH),
        (chunk.doc.as_deref(), DOC),
        (chunk.context.as_deref(), CONTEXT),
        (Some(chunk.text.as_str()), BODY),
    ];
    for (text, field) in fields {
        let Some(text) = text else { continue };
        let (counts, len) = term_counts(text);
        let norm = K1 * (1.0 - B + B * len as f32 / field.typical_len);
        for (term, count) in counts {
            let tf = count as f32;
            *weights.entry(term).or_default() += field.boost * tf * (K1 + 1.0) / (tf + norm);
        }
    }
    SparseVector::from_weights(weights)
}

/// The sparse vector of a query: each distinct term with weight 1.
pub fn encode_query(text: &str) -> SparseVector {
    let (counts, _) = term_counts(text);
    SparseVector::from_weights(counts.into_keys().map(|term| (term, 1.0)).collect())
}

/// The id a term is stored under.
pub fn term_id(term: &str) -> u32 {
    let hash = blake3::hash(term.as_bytes());
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&hash.as_bytes()[..4]);
    u32::from_le_bytes(bytes)
}

/// Each analysed term's id with its count, and the number of tokens.
fn term_counts(text: &str) -> (BTreeMap<u32, u32>, usize) {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    let mut len = 0;
    while let Some(token) = stream.next() {
        *counts.entry(term_id(&token.text)).or_default() += 1;
        len += 1;
    }
    (counts, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkKind;

    fn chunk(symbol: &str, text: &str) -> Chunk {
        Chunk {
            graph: Default::default(),
            id: "0".repeat(32),
            path: "src/store.rs".to_string(),
            lang: "rust".to_string(),
            kind: ChunkKind::Function,
            symbol: Some(symbol.to_string()),
            signature: None,
            doc: None,
            context: None,
            start_line: 1,
            end_line: 3,
            start_byte: 0,
            end_byte: text.len(),
            text: text.to_string(),
        }
    }

    fn weight(vector: &SparseVector, term: &str) -> f32 {
        let id = term_id(term);
        vector
            .indices
            .iter()
            .position(|i| *i == id)
            .map_or(0.0, |at| vector.values[at])
    }

    fn dot(a: &SparseVector, b: &SparseVector) -> f32 {
        a.indices
            .iter()
            .zip(&a.values)
            .map(|(i, v)| weight_by_id(b, *i) * v)
            .sum()
    }

    fn weight_by_id(vector: &SparseVector, id: u32) -> f32 {
        vector
            .indices
            .iter()
            .position(|i| *i == id)
            .map_or(0.0, |at| vector.values[at])
    }

    #[test]
    fn identifiers_are_kept_whole_and_split_like_the_keyword_index() {
        let vector = encode_chunk(&chunk("crate::store::load_config", "fn load_config() {}"));
        assert!(weight(&vector, "load_config") > 0.0);
        assert!(weight(&vector, "load") > 0.0);
        assert!(weight(&vector, "config") > 0.0);
        // The path's words are terms too.
        assert!(weight(&vector, "store") > 0.0);
        assert_eq!(weight(&vector, "absent"), 0.0);
        assert!(vector.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_term_in_the_symbol_outweighs_the_same_term_in_the_body() {
        let named = encode_chunk(&chunk("parse_header", "fn parse_header() { body() }"));
        let mentioned = encode_chunk(&chunk("main", "fn main() { parse_header() }"));
        let query = encode_query("parse_header");
        assert!(dot(&query, &named) > dot(&query, &mentioned));
    }

    #[test]
    fn term_frequency_saturates_and_long_bodies_weigh_less() {
        let once = encode_chunk(&chunk("a", "flush"));
        let many = encode_chunk(&chunk("a", &"flush ".repeat(50)));
        let ratio = weight(&many, "flush") / weight(&once, "flush");
        assert!(ratio > 1.0 && ratio < 2.2, "ratio {ratio}");
        let short = encode_chunk(&chunk("a", "flush later"));
        let long = encode_chunk(&chunk("a", &format!("flush {}", "word ".repeat(400))));
        assert!(weight(&short, "flush") > weight(&long, "flush"));
    }

    #[test]
    fn queries_weigh_each_distinct_term_once() {
        let query = encode_query("Retry retry backoff");
        assert_eq!(query.values, vec![1.0; query.indices.len()]);
        assert_eq!(weight(&query, "retri") + weight(&query, "retry"), 1.0);
        assert_eq!(weight(&query, "backoff"), 1.0);
        assert!(encode_query("  ").is_empty());
    }

    #[test]
    fn term_ids_are_stable() {
        // A collection shared by machines and releases relies on these never changing.
        assert_eq!(term_id("load_config"), term_id("load_config"));
        assert_ne!(term_id("load"), term_id("config"));
        let id = term_id("quarry");
        let hash = blake3::hash(b"quarry");
        assert_eq!(id.to_le_bytes(), hash.as_bytes()[..4]);
    }
}
