//! The ONNX Runtime embedder (through fastembed), and where its runtime and model are found.
//!
//! ONNX Runtime is loaded at run time from a shared library (`ORT_DYLIB_PATH`, else the one
//! `scripts/setup.sh` put in Quarry's cache). The model is, in order: the directory in
//! `QUARRY_MODEL_DIR`; the offline model setup installed in the cache; else, when built with
//! the `download-models` feature, a fastembed model by name (`QUARRY_MODEL`, default
//! all-MiniLM-L6-v2) downloaded once into the cache.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use serde::Deserialize;

use super::{EmbedError, Embedder};

/// Name of the offline model `scripts/setup.sh` installs.
pub const OFFLINE_MODEL: &str = "all-minilm-l6-v2-int8";

/// Texts per inference call. Small batches of similar length beat large ones here: padding
/// is wasted work, and ONNX Runtime's memory arena grows with the largest batch it has seen
/// (measured on 2 cores: 3 GB resident at 64 texts). At 16 the arena stays under 1 GB and
/// pays for itself: 53 chunks/s on Django with it, 27 without.
pub const BATCH_SIZE: usize = 16;

/// Quarry's cache directory: `QUARRY_CACHE_DIR`, else `$XDG_CACHE_HOME/quarry`, else
/// `~/.cache/quarry`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUARRY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("quarry");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("quarry")
}

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A local directory with `model.onnx` and the tokenizer files.
    Dir(PathBuf),
    /// A fastembed model code, downloaded on first use.
    Named(String),
}

impl ModelSource {
    /// The model chosen by the environment (see the module docs).
    pub fn from_env() -> Self {
        if let Some(dir) = std::env::var_os("QUARRY_MODEL_DIR") {
            return ModelSource::Dir(PathBuf::from(dir));
        }
        if let Ok(name) = std::env::var("QUARRY_MODEL") {
            return ModelSource::Named(name);
        }
        let offline = cache_dir().join("models").join(OFFLINE_MODEL);
        if offline.join("model.onnx").is_file() || !cfg!(feature = "download-models") {
            return ModelSource::Dir(offline);
        }
        ModelSource::Named("sentence-transformers/all-MiniLM-L6-v2".to_string())
    }
}

/// How to run a local model: `quarry-model.json` in its directory (all fields optional).
#[derive(Debug, Deserialize)]
struct ModelSpec {
    name: Option<String>,
    pooling: Option<String>,
    max_length: Option<usize>,
}

/// A sentence-embedding model run by ONNX Runtime.
pub struct OnnxEmbedder {
    model: TextEmbedding,
    id: String,
    dims: usize,
}

impl OnnxEmbedder {
    /// The model the environment configures ([`ModelSource::from_env`]).
    pub fn configured() -> Result<Self, EmbedError> {
        Self::load(&ModelSource::from_env())
    }

    /// Loads ONNX Runtime (once per process) and the model.
    pub fn load(source: &ModelSource) -> Result<Self, EmbedError> {
        load_runtime()?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (mut model, id) = match source {
            ModelSource::Dir(dir) => load_dir(dir, threads)?,
            ModelSource::Named(name) => load_named(name, threads)?,
        };
        let probe = model
            .embed(["dimension probe"], None)
            .map_err(|e| EmbedError::Model {
                model: id.clone(),
                reason: e.to_string(),
            })?;
        let dims = probe.first().map_or(0, Vec::len);
        if dims == 0 {
            return Err(EmbedError::Model {
                model: id,
                reason: "the model returned an empty vector".to_string(),
            });
        }
        Ok(OnnxEmbedder {
            model,
            id: format!("{id}/{dims}"),
            dims,
        })
    }
}

impl Embedder for OnnxEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.model
            .embed(texts, Some(BATCH_SIZE))
            .map_err(|e| EmbedError::Inference(e.to_string()))
    }
}

/// Loads the ONNX Runtime shared library once; later calls return the first outcome.
pub(crate) fn load_runtime() -> Result<(), EmbedError> {
    static LOADED: OnceLock<Result<(), EmbedError>> = OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH").map_or_else(
            || cache_dir().join("onnxruntime").join("libonnxruntime.so"),
            PathBuf::from,
        );
        if !path.is_file() {
            return Err(EmbedError::RuntimeMissing {
                path: path.display().to_string(),
            });
        }
        match ort::init_from(&path) {
            Ok(builder) => {
                drop(builder);
                Ok(())
            }
            Err(e) => Err(EmbedError::RuntimeLoad {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(EmbedError::RuntimeMissing { path }) => {
            Err(EmbedError::RuntimeMissing { path: path.clone() })
        }
        Err(EmbedError::RuntimeLoad { path, reason }) => Err(EmbedError::RuntimeLoad {
            path: path.clone(),
            reason: reason.clone(),
        }),
        Err(other) => Err(EmbedError::Inference(other.to_string())),
    }
}

fn load_dir(dir: &Path, threads: usize) -> Result<(TextEmbedding, String), EmbedError> {
    let missing = |reason: String| EmbedError::ModelMissing {
        path: dir.display().to_string(),
        reason,
    };
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|_| missing(format!("{name} is missing")))
    };
    let onnx_file = read("model.onnx")?;
    let tokenizer_files = TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let spec: Option<ModelSpec> = std::fs::read(dir.join("quarry-model.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let pooling = match spec.as_ref().and_then(|s| s.pooling.as_deref()) {
        Some("cls") => Pooling::Cls,
        _ => Pooling::Mean,
    };
    let max_length = spec.as_ref().and_then(|s| s.max_length).unwrap_or(256);
    let name = spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "local-model".to_string());
    let id = format!("{name}@{}/{max_length}", onnx_file.len());
    let model = UserDefinedEmbeddingModel::new(onnx_file, tokenizer_files)
        .with_pooling(pooling)
        .with_quantization(QuantizationMode::None);
    let options = InitOptionsUserDefined::new()
        .with_max_length(max_length)
        .with_intra_threads(threads)
        .with_execution_providers(vec![
            ort::ep::CPU::default().with_arena_allocator(true).build(),
        ]);
    let embedding = TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
        EmbedError::Model {
            model: name.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok((embedding, id))
}

#[cfg(feature = "download-models")]
fn load_named(name: &str, threads: usize) -> Result<(TextEmbedding, String), EmbedError> {
    use fastembed::{EmbeddingModel, TextInitOptions};
    let model: EmbeddingModel = name.parse().map_err(|e: String| EmbedError::Model {
        model: name.to_string(),
        reason: e,
    })?;
    let options = TextInitOptions::new(model)
        .with_cache_dir(cache_dir().join("fastembed"))
        .with_intra_threads(threads)
        .with_show_download_progress(false);
    let embedding = TextEmbedding::try_new(options).map_err(|e| EmbedError::Model {
        model: name.to_string(),
        reason: format!("{e} (offline? run scripts/setup.sh and use the offline model)"),
    })?;
    Ok((embedding, name.to_string()))
}

#[cfg(not(feature = "download-models"))]
fn load_named(name: &str, _threads: usize) -> Result<(TextEmbedding, String), EmbedError> {
    Err(EmbedError::Model {
        model: name.to_string(),
        reason: "this quarry was built without the download-models feature; set QUARRY_MODEL_DIR to a local model".to_string(),
    })
}
