//! Embeddings: chunks into vectors for semantic search.
//!
//! An [`Embedder`] turns texts into vectors; [`onnx::OnnxEmbedder`] runs a sentence-embedding
//! model with ONNX Runtime through fastembed, from a local model directory (what
//! `scripts/setup.sh` installs) or, for users with internet, a model fastembed downloads.
//! [`cache::VectorCache`] remembers every vector by the content it was computed from, so an
//! unchanged chunk is never embedded twice, even when edits above it move its lines.

pub mod cache;
pub mod cross;
pub mod onnx;
pub mod sentence;

use crate::chunk::{Chunk, ChunkKind};

/// Turns texts into fixed-size vectors.
pub trait Embedder: Send {
    /// Identifies the model and its settings; vectors of different ids never mix.
    fn model_id(&self) -> &str;
    /// Length of every vector.
    fn dims(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The model the vectors of an index were made with: written beside a local index's
/// vectors and in a team index's meta, so readers embed queries with the same model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VectorModel {
    /// [`Embedder::model_id`] of the model.
    pub model_id: String,
    /// Vector length.
    pub dims: usize,
}

impl VectorModel {
    /// The model `embedder` runs.
    pub fn of(embedder: &dyn Embedder) -> Self {
        VectorModel {
            model_id: embedder.model_id().to_string(),
            dims: embedder.dims(),
        }
    }

    /// The model of the local index at `layout`, if it has vectors.
    pub fn load(layout: &crate::IndexLayout) -> Option<Self> {
        let bytes = std::fs::read(layout.vector_model_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One loaded model used from several places (the daemon's sync and its searches, the MCP
/// server's searches across index reloads): clones share the model behind a lock.
#[derive(Clone)]
pub struct SharedEmbedder {
    model: std::sync::Arc<std::sync::Mutex<Box<dyn Embedder>>>,
    model_id: String,
    dims: usize,
}

impl SharedEmbedder {
    /// The configured model ([`onnx::OnnxEmbedder::configured`]) for a resident process,
    /// shared.
    pub fn configured() -> Result<Self, EmbedError> {
        Self::configured_for(sentence::Workload::Resident)
    }

    /// The configured model set up for `workload`, shared.
    pub fn configured_for(workload: sentence::Workload) -> Result<Self, EmbedError> {
        Ok(SharedEmbedder::new(Box::new(onnx::OnnxEmbedder::load(
            &onnx::ModelSource::from_env(),
            workload,
        )?)))
    }

    /// Shares `model`.
    pub fn new(model: Box<dyn Embedder>) -> Self {
        SharedEmbedder {
            model_id: model.model_id().to_string(),
            dims: model.dims(),
            model: std::sync::Arc::new(std::sync::Mutex::new(model)),
        }
    }
}

impl Embedder for SharedEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut model = self
            .model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        model.embed(texts)
    }
}

/// The configured embedding model of a process, loaded at most once (on first use) and
/// shared by every clone: commands that may never embed never pay for loading it. The
/// default slot loads it for a resident process; [`ModelSlot::one_shot`] for a command that
/// embeds a query and exits.
#[derive(Clone, Default)]
pub struct ModelSlot {
    loaded: std::sync::Arc<std::sync::Mutex<Option<SharedEmbedder>>>,
    workload: sentence::Workload,
}

impl ModelSlot {
    /// A slot for a process that embeds a query or two and exits.
    pub fn one_shot() -> Self {
        ModelSlot {
            workload: sentence::Workload::OneShot,
            ..ModelSlot::default()
        }
    }

    /// The model, loaded now ([`SharedEmbedder::configured_for`]) if it was not yet.
    pub fn get(&self) -> Result<SharedEmbedder, EmbedError> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(model) = loaded.as_ref() {
            return Ok(model.clone());
        }
        let model = SharedEmbedder::configured_for(self.workload)?;
        *loaded = Some(model.clone());
        Ok(model)
    }
}

/// Why embeddings are unavailable or failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The ONNX Runtime shared library is missing.
    #[error(
        "ONNX Runtime not found at {path}; run scripts/setup.sh to install it, or set ORT_DYLIB_PATH to libonnxruntime.so"
    )]
    RuntimeMissing {
        /// Where it was looked for.
        path: String,
    },
    /// The ONNX Runtime library exists but does not load.
    #[error(
        "ONNX Runtime at {path} does not load: {reason}; set ORT_DYLIB_PATH to a libonnxruntime.so ≥ 1.24"
    )]
    RuntimeLoad {
        /// The library.
        path: String,
        /// The loader's complaint.
        reason: String,
    },
    /// The model directory is missing or incomplete.
    #[error(
        "no embedding model at {path} ({reason}); run scripts/setup.sh to install the offline model, or set QUARRY_MODEL_DIR"
    )]
    ModelMissing {
        /// The directory looked at.
        path: String,
        /// What is missing.
        reason: String,
    },
    /// The model could not be loaded or downloaded.
    #[error("embedding model {model}: {reason}")]
    Model {
        /// The model.
        model: String,
        /// What went wrong.
        reason: String,
    },
    /// Inference failed.
    #[error("embedding failed: {0}")]
    Inference(String),
}

/// Longest text handed to the model, in bytes. The model reads at most its window of tokens
/// (256 for MiniLM, about 1,000 bytes of code); cutting here saves tokenizing the rest.
const MAX_EMBED_BYTES: usize = 2048;

/// Whether a chunk is worth a vector. Prose-free data (plain text, JSON, CSS, HTML) and
/// near-empty chunks are left to keyword search: they are slow to embed and rarely what a
/// question in words is after.
pub fn should_embed(chunk: &Chunk) -> bool {
    if matches!(chunk.lang.as_str(), "text" | "json" | "css" | "html") {
        return false;
    }
    let words = chunk
        .text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    words >= 3
}

/// The text embedded for a chunk: where it is (path, enclosing headers, symbol), what it says
/// about itself (doc), then the code, up to the model's window.
pub fn embed_text(chunk: &Chunk) -> String {
    let mut out = String::with_capacity(MAX_EMBED_BYTES);
    out.push_str(&chunk.path);
    out.push('\n');
    for part in [&chunk.context, &chunk.symbol].into_iter().flatten() {
        out.push_str(part);
        out.push('\n');
    }
    if let Some(signature) = &chunk.signature
        && !chunk.text.contains(signature.as_str())
    {
        out.push_str(signature);
        out.push('\n');
    }
    if let Some(doc) = &chunk.doc
        && chunk.kind != ChunkKind::Section
    {
        out.push_str(doc_summary(doc));
        out.push('\n');
    }
    out.push_str(&chunk.text);
    truncate_at_char(&mut out, MAX_EMBED_BYTES);
    out
}

/// The doc's first paragraph, at most [`MAX_DOC_SUMMARY_BYTES`]: what the item is for. The
/// rest of a long doc (tokio's and axum's carry whole examples) would fill the model's
/// window and push out the code.
fn doc_summary(doc: &str) -> &str {
    let mut end = 0;
    for line in doc.split_inclusive('\n') {
        let trimmed = line.trim();
        if end > 0 && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("```"))
        {
            break;
        }
        end += line.len();
        if end >= MAX_DOC_SUMMARY_BYTES {
            break;
        }
    }
    let mut cut = end.min(MAX_DOC_SUMMARY_BYTES).min(doc.len());
    while !doc.is_char_boundary(cut) {
        cut -= 1;
    }
    doc[..cut].trim_end()
}

/// Longest doc summary embedded.
const MAX_DOC_SUMMARY_BYTES: usize = 600;

/// What [`embed_text`] makes of a chunk, versioned: part of every cache key, so a change
/// here re-embeds instead of reusing vectors of the old text.
const EMBED_TEXT_VERSION: &str = "embed-text-2";

/// The cache key of a chunk's vector: the model plus the chunk's own content (kind,
/// signature, doc, enclosing headers, text) and not its location, so a chunk whose lines
/// moved, or whose file was renamed, reuses its vector.
pub fn cache_key(model_id: &str, chunk: &Chunk) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    for part in [
        model_id,
        EMBED_TEXT_VERSION,
        chunk.kind.as_str(),
        chunk.signature.as_deref().unwrap_or(""),
        chunk.doc.as_deref().unwrap_or(""),
        chunk.context.as_deref().unwrap_or(""),
        &chunk.text,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    key
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkSettings, chunk_file};
    use crate::tokens::ApproxTokenCounter;

    fn chunks(path: &str, text: &str) -> Vec<Chunk> {
        chunk_file(path, text, &ChunkSettings::default(), &ApproxTokenCounter)
    }

    #[test]
    fn only_the_doc_summary_is_embedded() {
        assert_eq!(
            doc_summary("Wakes one task.\n\n# Examples\n```\nx\n```"),
            "Wakes one task."
        );
        assert_eq!(
            doc_summary("Two lines\nof summary.\n```rust\ncode\n```"),
            "Two lines\nof summary."
        );
        assert!(doc_summary(&"é".repeat(400)).len() <= MAX_DOC_SUMMARY_BYTES);
        assert_eq!(doc_summary(""), "");
    }

    #[test]
    fn cache_key_ignores_location_but_not_content() {
        let a = chunks("src/a.rs", "fn load() -> u8 {\n    1\n}\n");
        let moved = chunks("src/b.rs", "// moved\n\nfn load() -> u8 {\n    1\n}\n");
        let edited = chunks("src/a.rs", "fn load() -> u8 {\n    2\n}\n");
        let load = |cs: &[Chunk]| {
            cs.iter()
                .find(|c| c.kind == ChunkKind::Function)
                .cloned()
                .expect("function chunk")
        };
        assert_eq!(cache_key("m", &load(&a)), cache_key("m", &load(&moved)));
        assert_ne!(cache_key("m", &load(&a)), cache_key("m", &load(&edited)));
        assert_ne!(cache_key("m", &load(&a)), cache_key("other", &load(&a)));
    }

    #[test]
    fn embed_text_leads_with_location_and_is_bounded() {
        let body = format!("fn big() {{\n{}}}\n", "    let x = 1;\n".repeat(500));
        let chunk = &chunks("src/big.rs", &body)[0];
        let text = embed_text(chunk);
        assert!(text.starts_with("src/big.rs\ncrate::big::big\n"), "{text}");
        assert!(text.len() <= MAX_EMBED_BYTES);
    }

    #[test]
    fn trivial_and_data_chunks_are_not_embedded() {
        assert!(!should_embed(
            &chunks("a.json", "{\"a\": 1, \"b\": 2, \"c\": 3}")[0]
        ));
        assert!(!should_embed(&chunks("src/lib.rs", "mod a;\n")[0]));
        assert!(should_embed(
            &chunks("src/lib.rs", "fn load_config() -> Config { read() }")[0]
        ));
    }
}
