//! The ONNX Runtime embedder, and where its runtime and model are found.
//!
//! A local model directory runs on Quarry's own session ([`super::sentence`]); a model named
//! for download runs through fastembed, which fetches it. Both share one ONNX Runtime
//! environment ([`runtime`]).
//!
//! ONNX Runtime is loaded at run time from a shared library (`ORT_DYLIB_PATH`, else the one
//! `scripts/setup.sh` put in Quarry's cache). The model is, in order: the directory in
//! `QUARRY_MODEL_DIR`; the offline model setup installed in the cache; else, when built with
//! the `download-models` feature, a fastembed model by name (`QUARRY_MODEL`, default
//! all-MiniLM-L6-v2) downloaded once into the cache.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use serde::Deserialize;

use super::sentence::{ModelFiles, Pooling, SentenceModel, Workload};
use super::{EmbedError, Embedder};

/// Name of the offline model `scripts/setup.sh` installs.
pub const OFFLINE_MODEL: &str = "all-minilm-l6-v2-int8";

/// Texts per inference call. Small batches of similar length beat large ones here: padding
/// is wasted work, and ONNX Runtime's memory arena grows with the largest batch it has seen.
/// Measured on 2 cores at a 128-token window (`bench/index_bench.py`, pytest's sdist): 12
/// runs at the rate of 16 (39 chunks/s) with 90 MB less at the peak (457 MB); 8 is slower.
/// The arena stays on: without it the rate falls by a quarter and the peak is higher.
pub const BATCH_SIZE: usize = 12;

/// Tokens of each text the model reads: the head of a chunk (where it says what it is, with
/// its path, headers, signature and doc summary in front, see `embed_text`). MiniLM was
/// trained on 128-token inputs; a longer window costs time and memory quadratically in
/// attention. Measured on `bench/eval` against 256 tokens: equal retrieval quality at twice
/// the rate and half the peak memory. A local model's `quarry-model.json` may ask for less.
pub const EMBED_WINDOW: usize = 128;

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
    engine: Engine,
    id: String,
    dims: usize,
}

/// What runs the model: Quarry's own session for a local model directory, fastembed's for
/// a model it downloads by name.
enum Engine {
    Session(SentenceModel),
    Fastembed(fastembed::TextEmbedding),
}

impl OnnxEmbedder {
    /// The model the environment configures ([`ModelSource::from_env`]), for a resident
    /// process (an index, a daemon, an MCP server).
    pub fn configured() -> Result<Self, EmbedError> {
        Self::load(&ModelSource::from_env(), Workload::Resident)
    }

    /// Loads ONNX Runtime (once per process) and the model, set up for `workload`.
    pub fn load(source: &ModelSource, workload: Workload) -> Result<Self, EmbedError> {
        let environment = runtime()?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        match source {
            ModelSource::Dir(dir) => load_dir(&environment, dir, workload, threads),
            ModelSource::Named(name) => load_named(&environment, name, threads),
        }
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
        self.embed_batched(texts, BATCH_SIZE)
    }
}

impl OnnxEmbedder {
    /// [`Embedder::embed`] in inference batches of `batch` texts instead of [`BATCH_SIZE`]
    /// (for benchmarks).
    pub fn embed_batched(
        &mut self,
        texts: &[&str],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match &mut self.engine {
            Engine::Session(model) => model.embed(texts, batch),
            Engine::Fastembed(model) => model
                .embed(texts, Some(batch.max(1)))
                .map_err(|e| EmbedError::Inference(e.to_string())),
        }
    }
}

/// The process's ONNX Runtime environment: the shared library loaded once and one
/// environment built over it, which every session (Quarry's and fastembed's) shares; later
/// calls return the first outcome.
pub fn runtime() -> Result<Environment, EmbedError> {
    static RUNTIME: OnceLock<Result<Environment, EmbedError>> = OnceLock::new();
    let outcome = RUNTIME.get_or_init(|| {
        let path = runtime_path();
        if !path.is_file() {
            return Err(EmbedError::RuntimeMissing {
                path: path.display().to_string(),
            });
        }
        let load_error = |reason: String| EmbedError::RuntimeLoad {
            path: path.display().to_string(),
            reason,
        };
        ort::init_from(&path)
            .map_err(|e| load_error(e.to_string()))?
            .with_name("quarry")
            .with_telemetry(false)
            .build()
            .map_err(|e| load_error(e.to_string()))
    });
    match outcome {
        Ok(environment) => Ok(environment.clone()),
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

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, else the one setup installed in the cache.
fn runtime_path() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map_or_else(
        || cache_dir().join("onnxruntime").join("libonnxruntime.so"),
        PathBuf::from,
    )
}

/// The embedding window: `QUARRY_EMBED_WINDOW` when set to a number, else
/// [`EMBED_WINDOW`]; a model's `quarry-model.json` may lower it to its own limit.
fn window(spec_max: Option<usize>) -> usize {
    let wanted = std::env::var("QUARRY_EMBED_WINDOW")
        .ok()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|&w| w >= 8)
        .unwrap_or(EMBED_WINDOW);
    spec_max.map_or(wanted, |max| wanted.min(max))
}

fn load_dir(
    environment: &Environment,
    dir: &Path,
    workload: Workload,
    threads: usize,
) -> Result<OnnxEmbedder, EmbedError> {
    let files = ModelFiles::read(dir)?;
    let spec: Option<ModelSpec> = std::fs::read(dir.join("quarry-model.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let pooling = match spec.as_ref().and_then(|s| s.pooling.as_deref()) {
        Some("cls") => Pooling::Cls,
        _ => Pooling::Mean,
    };
    let window = window(spec.as_ref().and_then(|s| s.max_length));
    let name = spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "local-model".to_string());
    let id = format!("{name}@{}/{window}", files.onnx.len());
    let model = SentenceModel::load(
        environment,
        files,
        pooling,
        window,
        workload,
        threads,
        &name,
    )?;
    let dims = model.dims();
    Ok(OnnxEmbedder {
        engine: Engine::Session(model),
        id: format!("{id}/{dims}"),
        dims,
    })
}

#[cfg(feature = "download-models")]
fn load_named(
    environment: &Environment,
    name: &str,
    threads: usize,
) -> Result<OnnxEmbedder, EmbedError> {
    use fastembed::{EmbeddingModel, TextInitOptions};
    let failed = |reason: String| EmbedError::Model {
        model: name.to_string(),
        reason,
    };
    let model: EmbeddingModel = name.parse().map_err(failed)?;
    let options = TextInitOptions::new(model)
        .with_environment(environment.clone())
        .with_max_length(window(None))
        .with_cache_dir(cache_dir().join("fastembed"))
        .with_intra_threads(threads)
        .with_show_download_progress(false);
    let mut embedding = fastembed::TextEmbedding::try_new(options).map_err(|e| {
        failed(format!(
            "{e} (offline? run scripts/setup.sh and use the offline model)"
        ))
    })?;
    let probe = embedding
        .embed(["dimension probe"], None)
        .map_err(|e| failed(e.to_string()))?;
    let dims = probe.first().map_or(0, Vec::len);
    if dims == 0 {
        return Err(failed("the model returned an empty vector".to_string()));
    }
    Ok(OnnxEmbedder {
        engine: Engine::Fastembed(embedding),
        id: format!("{name}@{}/{dims}", window(None)),
        dims,
    })
}

#[cfg(not(feature = "download-models"))]
fn load_named(
    _environment: &Environment,
    name: &str,
    _threads: usize,
) -> Result<OnnxEmbedder, EmbedError> {
    Err(EmbedError::Model {
        model: name.to_string(),
        reason: "this quarry was built without the download-models feature; set QUARRY_MODEL_DIR to a local model".to_string(),
    })
}
