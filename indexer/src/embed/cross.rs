//! The optional cross-encoder: a model that reads a query and one candidate together and
//! scores how well the candidate answers it.
//!
//! It is far slower than an embedding (one model call per candidate, not one per query), so
//! the retriever only asks it about the top of a ranking, and only when `[search] reranker`
//! names a model. The models are fastembed's reranker models, downloaded by name on first
//! use (a build with the `download-models` feature and a network); without either,
//! [`load_cross_encoder`] fails and the caller goes on without it.

use super::EmbedError;

/// Scores (query, text) pairs.
pub trait CrossEncoder: Send {
    /// The model's name.
    fn model_id(&self) -> &str;
    /// One relevance score per text, in their order; higher is better.
    fn score(&mut self, query: &str, texts: &[&str]) -> Result<Vec<f32>, EmbedError>;
}

/// The reranker models accepted by name, fastembed's model codes.
pub const CROSS_ENCODERS: [&str; 4] = [
    "BAAI/bge-reranker-base",
    "rozgo/bge-reranker-v2-m3",
    "jinaai/jina-reranker-v1-turbo-en",
    "jinaai/jina-reranker-v2-base-multilingual",
];

/// Loads the reranker model `name` (one of [`CROSS_ENCODERS`]), downloading it once into
/// Quarry's cache.
pub fn load_cross_encoder(name: &str) -> Result<Box<dyn CrossEncoder>, EmbedError> {
    if !CROSS_ENCODERS.contains(&name) {
        return Err(EmbedError::Model {
            model: name.to_string(),
            reason: format!(
                "not a reranker model; use one of {}",
                CROSS_ENCODERS.join(", ")
            ),
        });
    }
    load_named(name)
}

#[cfg(feature = "download-models")]
fn load_named(name: &str) -> Result<Box<dyn CrossEncoder>, EmbedError> {
    use fastembed::{RerankInitOptions, RerankerModel, TextRerank};
    let environment = super::onnx::runtime()?;
    let model = match name {
        "BAAI/bge-reranker-base" => RerankerModel::BGERerankerBase,
        "rozgo/bge-reranker-v2-m3" => RerankerModel::BGERerankerV2M3,
        "jinaai/jina-reranker-v1-turbo-en" => RerankerModel::JINARerankerV1TurboEn,
        _ => RerankerModel::JINARerankerV2BaseMultilingual,
    };
    let options = RerankInitOptions::new(model)
        .with_environment(environment)
        .with_cache_dir(super::onnx::cache_dir().join("fastembed"))
        .with_show_download_progress(false);
    let model = TextRerank::try_new(options).map_err(|e| EmbedError::Model {
        model: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Box::new(FastembedCrossEncoder {
        model,
        id: name.to_string(),
    }))
}

#[cfg(not(feature = "download-models"))]
fn load_named(name: &str) -> Result<Box<dyn CrossEncoder>, EmbedError> {
    Err(EmbedError::Model {
        model: name.to_string(),
        reason: "this quarry was built without the download-models feature".to_string(),
    })
}

/// A fastembed reranker.
#[cfg(feature = "download-models")]
struct FastembedCrossEncoder {
    model: fastembed::TextRerank,
    id: String,
}

#[cfg(feature = "download-models")]
impl CrossEncoder for FastembedCrossEncoder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn score(&mut self, query: &str, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let results = self
            .model
            .rerank(query, texts, false, Some(8))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let mut scores = vec![f32::MIN; texts.len()];
        for result in results {
            if let Some(slot) = scores.get_mut(result.index) {
                *slot = result.score;
            }
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_before_any_download() {
        let error = load_cross_encoder("BAAI/bge-small-en-v1.5")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("not a reranker model"), "{error}");
    }
}
