//! A sentence-embedding model run on an ONNX Runtime session that Quarry builds itself:
//! tokenize (padded to the batch's longest text, cut at the window), run, pool (mean over
//! the attention mask, or the first token), L2-normalise.
//!
//! Quarry builds the session rather than leaving it to fastembed so that it can choose its
//! settings per [`Workload`] (measured on 2 cores with MiniLM int8, fresh processes,
//! `indexer/examples/model_session.rs`):
//! - graph optimisation costs 120-200 ms at every load (its constant folding turns the int8
//!   weights into a 90 MB float graph; saving that graph and reading it back costs as much).
//!   A one-shot process (`quarry search`, `quarry ask`) loads the graph as it is, in ~40
//!   ms; its first query costs ~40 ms instead of ~4, its later ones ~12 ms instead of ~3;
//! - a resident process (an index, a daemon, an MCP server) optimises once: basic (level 1)
//!   rewrites embed 13% faster than the unoptimised graph, and the fused level-3 graph was
//!   no faster than level 1;
//! - ONNX Runtime's memory patterns plan one block per input shape, and padded batches come
//!   in every length: they are off;
//! - the tokenizer is parsed on a thread of its own while the session loads.
//!
//! The two graphs compute the same function: their vectors agree to float rounding (cosine
//! 1 - 1e-7), so an index built by one workload is searched by the other with the same
//! model id, and hits come in the same order.

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use tokenizers::{
    AddedToken, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy,
};

use super::EmbedError;

/// What a process loads the model for; it picks the session's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workload {
    /// A process that embeds a query or two and exits: load fast, skip graph optimisation.
    OneShot,
    /// A process that embeds many texts or lives long: optimise the graph once at load.
    #[default]
    Resident,
}

/// How a model pools its token vectors into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the token vectors the attention mask keeps.
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
}

/// The files of a local sentence-embedding model.
pub struct ModelFiles {
    /// `model.onnx`.
    pub onnx: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `config.json` (for `pad_token_id`).
    pub config: Vec<u8>,
    /// `special_tokens_map.json`.
    pub special_tokens_map: Vec<u8>,
    /// `tokenizer_config.json` (for `pad_token` and `model_max_length`).
    pub tokenizer_config: Vec<u8>,
}

impl ModelFiles {
    /// Reads the files from `dir`; a missing one is [`EmbedError::ModelMissing`].
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|_| EmbedError::ModelMissing {
                path: dir.display().to_string(),
                reason: format!("{name} is missing"),
            })
        };
        Ok(ModelFiles {
            onnx: read("model.onnx")?,
            tokenizer: read("tokenizer.json")?,
            config: read("config.json")?,
            special_tokens_map: read("special_tokens_map.json")?,
            tokenizer_config: read("tokenizer_config.json")?,
        })
    }
}

/// A loaded sentence-embedding model.
pub struct SentenceModel {
    session: Session,
    tokenizer: Tokenizer,
    pooling: Pooling,
    token_type_ids: bool,
    dims: usize,
}

impl SentenceModel {
    /// Builds the session for `workload` and the tokenizer (cut at `window` tokens) from
    /// `files`, the two at once. `name` names the model in errors.
    pub fn load(
        environment: &ort::environment::Environment,
        files: ModelFiles,
        pooling: Pooling,
        window: usize,
        workload: Workload,
        threads: usize,
        name: &str,
    ) -> Result<Self, EmbedError> {
        let error = |reason: String| EmbedError::Model {
            model: name.to_string(),
            reason,
        };
        let ModelFiles {
            onnx,
            tokenizer,
            config,
            special_tokens_map,
            tokenizer_config,
        } = files;
        let (session, tokenizer) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| {
                load_tokenizer(
                    &tokenizer,
                    &config,
                    &special_tokens_map,
                    &tokenizer_config,
                    window,
                )
            });
            let session = build_session(environment, &onnx, workload, threads);
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|_| Err("the tokenizer's loader stopped".to_string()));
            (session, tokenizer)
        });
        // Parsing the graph and optimising it leaves tens of MB of freed heap behind (73 MB at
        // level 1 for MiniLM) that the allocator would otherwise keep for the process's life.
        crate::heap::release_freed();
        let session = session.map_err(error)?;
        let tokenizer = tokenizer.map_err(error)?;
        let token_type_ids = session
            .inputs()
            .iter()
            .any(|input| input.name() == "token_type_ids");
        let dims = session
            .outputs()
            .first()
            .and_then(|output| output.dtype().tensor_shape())
            .and_then(|shape| shape.last().copied())
            .filter(|&d| d > 0)
            .ok_or_else(|| error("the model's output has no fixed vector length".to_string()))?
            as usize;
        Ok(SentenceModel {
            session,
            tokenizer,
            pooling,
            token_type_ids,
            dims,
        })
    }

    /// Length of every vector.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// One unit-length vector per text, in order, in inference batches of `batch`.
    pub fn embed(&mut self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for group in texts.chunks(batch.max(1)) {
            out.extend(self.embed_batch(group)?);
        }
        Ok(out)
    }

    fn embed_batch(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let failed = |e: &dyn std::fmt::Display| EmbedError::Inference(e.to_string());
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| failed(&e))?;
        let width = encodings.first().map_or(0, |e| e.len());
        let shape = [encodings.len(), width];
        let column = |get: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings
                .iter()
                .flat_map(|e| get(e).iter().map(|&x| i64::from(x)))
                .collect()
        };
        let mask = column(&|e| e.get_attention_mask());
        let tensor = |data: Vec<i64>| Tensor::from_array((shape, data)).map_err(|e| failed(&e));
        let mut inputs = ort::inputs![
            "input_ids" => tensor(column(&|e| e.get_ids()))?,
            "attention_mask" => tensor(mask.clone())?,
        ];
        if self.token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                tensor(column(&|e| e.get_type_ids()))?.into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(|e| failed(&e))?;
        let (out_shape, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| failed(&e))?;
        pool(
            out_shape,
            values,
            &mask,
            self.pooling,
            self.dims,
            texts.len(),
        )
        .ok_or_else(|| failed(&format!("unexpected output shape {out_shape:?}")))
    }
}

/// Pools the model's output (`[batch, tokens, dims]`, or `[batch, dims]` for a model that
/// pools itself) into one normalised vector per text. `None` for an output of another shape.
fn pool(
    shape: &[i64],
    values: &[f32],
    mask: &[i64],
    pooling: Pooling,
    dims: usize,
    texts: usize,
) -> Option<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts);
    match *shape {
        [b, d] if b as usize == texts && d as usize == dims => {
            out.extend(values.chunks(dims).map(normalized));
        }
        [b, t, d] if b as usize == texts && d as usize == dims => {
            let tokens = t as usize;
            for (row, token_vectors) in values.chunks(tokens * dims).enumerate() {
                let kept = &mask[row * tokens..(row + 1) * tokens];
                let mut sum = vec![0f32; dims];
                let mut count = 0f32;
                for (vector, &keep) in token_vectors.chunks(dims).zip(kept) {
                    let first = count == 0.0;
                    if keep == 0 || (pooling == Pooling::Cls && !first) {
                        continue;
                    }
                    for (s, v) in sum.iter_mut().zip(vector) {
                        *s += v;
                    }
                    count += 1.0;
                }
                let mean: Vec<f32> = sum.iter().map(|s| s / count.max(1.0)).collect();
                out.push(normalized(&mean));
            }
        }
        _ => return None,
    }
    Some(out)
}

fn normalized(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    let scale = if norm > 1e-12 { 1.0 / norm } else { 1.0 };
    vector.iter().map(|x| x * scale).collect()
}

fn build_session(
    environment: &ort::environment::Environment,
    onnx: &[u8],
    workload: Workload,
    threads: usize,
) -> Result<Session, String> {
    let level = match workload {
        Workload::OneShot => GraphOptimizationLevel::Disable,
        Workload::Resident => GraphOptimizationLevel::Level1,
    };
    let text = |e: &dyn std::fmt::Display| e.to_string();
    Session::builder(environment)
        .map_err(|e| text(&e))?
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(true).build()])
        .map_err(|e| text(&e))?
        .with_intra_threads(threads)
        .map_err(|e| text(&e))?
        .with_memory_pattern(false)
        .map_err(|e| text(&e))?
        .with_optimization_level(level)
        .map_err(|e| text(&e))?
        .commit_from_memory(onnx)
        .map_err(|e| text(&e))
}

/// The model's tokenizer, padding each batch to its longest text and cutting at `window`
/// tokens (or the model's own limit, when lower). Its `tokenizer.json` may fix both to
/// other values; they are overridden here.
fn load_tokenizer(
    tokenizer: &[u8],
    config: &[u8],
    special_tokens_map: &[u8],
    tokenizer_config: &[u8],
    window: usize,
) -> Result<Tokenizer, String> {
    let json = |bytes: &[u8], name: &str| {
        serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| format!("{name}: {e}"))
    };
    let config = json(config, "config.json")?;
    let special_tokens_map = json(special_tokens_map, "special_tokens_map.json")?;
    let tokenizer_config = json(tokenizer_config, "tokenizer_config.json")?;
    let mut tokenizer =
        Tokenizer::from_bytes(tokenizer).map_err(|e| format!("tokenizer.json: {e}"))?;
    let model_max = tokenizer_config["model_max_length"]
        .as_f64()
        .map_or(usize::MAX, |m| m as usize);
    let pad_token = tokenizer_config["pad_token"]
        .as_str()
        .or_else(|| tokenizer_config["pad_token"]["content"].as_str())
        .unwrap_or("[PAD]")
        .to_string();
    let pad_id = config["pad_token_id"]
        .as_u64()
        .map(|id| id as u32)
        .or_else(|| tokenizer.token_to_id(&pad_token))
        .unwrap_or(0);
    tokenizer
        .with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_token,
            pad_id,
            ..Default::default()
        }))
        .with_truncation(Some(TruncationParams {
            max_length: window.min(model_max),
            strategy: TruncationStrategy::LongestFirst,
            ..Default::default()
        }))
        .map_err(|e| format!("tokenizer settings: {e}"))?;
    if let serde_json::Value::Object(tokens) = special_tokens_map {
        let special: Vec<AddedToken> = tokens
            .values()
            .filter_map(|v| v.as_str().or_else(|| v["content"].as_str()))
            .map(|content| AddedToken::from(content.to_string(), true))
            .collect();
        tokenizer
            .add_special_tokens(special)
            .map_err(|e| format!("special tokens: {e}"))?;
    }
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_keeps_only_masked_tokens_and_normalises() {
        // Two texts, three tokens, two dims; the second text's last token is padding.
        let values = [
            1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 3.0, 4.0, 3.0, 4.0, 100.0, -100.0,
        ];
        let mask = [1, 1, 1, 1, 1, 0];
        let out = pool(&[2, 3, 2], &values, &mask, Pooling::Mean, 2, 2).expect("pooled");
        let expect = 1.0 / 2f32.sqrt();
        assert!((out[0][0] - expect).abs() < 1e-6 && (out[0][1] - expect).abs() < 1e-6);
        assert!((out[1][0] - 0.6).abs() < 1e-6 && (out[1][1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn cls_pooling_takes_the_first_token() {
        let values = [3.0, 4.0, 1.0, 0.0];
        let out = pool(&[1, 2, 2], &values, &[1, 1], Pooling::Cls, 2, 1).expect("pooled");
        assert_eq!(out, vec![vec![0.6, 0.8]]);
    }

    #[test]
    fn pooled_outputs_and_bad_shapes() {
        let out = pool(&[1, 2], &[0.0, 2.0], &[1], Pooling::Mean, 2, 1).expect("pooled");
        assert_eq!(out, vec![vec![0.0, 1.0]]);
        assert!(pool(&[1, 2, 3], &[0.0; 6], &[1, 1], Pooling::Mean, 2, 1).is_none());
    }
}
