//! Text embeddings behind one small trait: all-MiniLM-L6-v2 in-process (default; int8 on the
//! embedded model's AVX-512 VNNI kernels where the CPU has them, else candle's f32 `BertModel`), or
//! an OpenAI-compatible `/v1/embeddings` endpoint. API keys are read from the environment at
//! request time and never logged or put into error messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig, HiddenAct};
use codeforge_config::{EmbeddingSettings, default_embedding_model_dir};
use codeforge_model::{BertInt8, BertShape};
use futures::future::BoxFuture;
use tokenizers::{Tokenizer, TruncationParams};

/// Turns texts into unit-length vectors.
pub trait Embedder: Send + Sync {
    /// Identifies the model: vectors from different ids never mix in one index.
    fn id(&self) -> &str;
    fn dims(&self) -> usize;
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, anyhow::Result<Vec<Vec<f32>>>>;
}

/// Max tokens per text: signatures and docstring summaries are short.
const MAX_TOKENS: usize = 128;

/// How the in-process model runs. The defaults are what the index uses; the other settings exist
/// so `examples/bench_embed.rs` can measure each lever on its own (README, "Embeddings").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MiniLmOptions {
    /// Longest text in tokens; longer ones are cut.
    pub max_tokens: usize,
    /// Texts are grouped by token count into batches of at most this many, each padded only to
    /// its own longest text (false: one batch per call, padded to the call's longest text).
    pub bucket: Option<usize>,
    /// GELU by its tanh approximation instead of the exact `erf` form the model was trained with.
    /// Measured slower in candle 0.11 (its tanh path is no faster than its `erf`), so off.
    pub gelu_tanh: bool,
    /// int8 weights and activations on the VNNI kernels where the CPU has them (texts packed
    /// without padding, `batch_tokens` tokens per pass); false or elsewhere: candle's f32 model.
    pub int8: bool,
    /// Tokens per pass of the int8 encoder (texts are not split across passes).
    pub batch_tokens: usize,
}

impl Default for MiniLmOptions {
    fn default() -> Self {
        MiniLmOptions {
            max_tokens: MAX_TOKENS,
            // Measured best of 8, 16 and 32 (bench_embed on Django: 1.31× the old batching).
            bucket: Some(16),
            gelu_tanh: false,
            int8: true,
            // Measured best of 512, 1024 and 2048 (bench_embed on Django).
            batch_tokens: 512,
        }
    }
}

/// all-MiniLM-L6-v2 (384-d, mean pooling, L2-normalised) run in-process on the CPU.
pub struct MiniLm {
    inner: Arc<MiniLmInner>,
    id: String,
}

struct MiniLmInner {
    model: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    options: MiniLmOptions,
}

enum Encoder {
    F32(BertModel),
    Int8(BertInt8),
}

pub const MINILM_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

impl MiniLm {
    pub fn load(dir: &Path) -> anyhow::Result<MiniLm> {
        Self::load_with(dir, MiniLmOptions::default())
    }

    pub fn load_with(dir: &Path, options: MiniLmOptions) -> anyhow::Result<MiniLm> {
        for f in MINILM_FILES {
            if !dir.join(f).is_file() {
                anyhow::bail!("{} is missing", dir.join(f).display());
            }
        }
        let device = Device::Cpu;
        let mut config: BertConfig = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json")).context("reading config.json")?,
        )
        .context("parsing config.json")?;
        if options.gelu_tanh && config.hidden_act == HiddenAct::Gelu {
            config.hidden_act = HiddenAct::GeluApproximate;
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| anyhow!("loading tokenizer.json: {e}"))?;
        // Padding is done here per batch (see `embed`), not by the tokenizer.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: options.max_tokens,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
        // SAFETY: the weights file is only read; it lives in our cache dir and is not modified
        // while mapped (setup replaces it by rename, never in place).
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &device,
            )
        }
        .context("mapping model.safetensors")?;
        let model = if options.int8 && codeforge_model::vnni_kernels_available() {
            let shape = BertShape {
                hidden: config.hidden_size,
                heads: config.num_attention_heads,
                layers: config.num_hidden_layers,
                intermediate: config.intermediate_size,
                max_positions: config.max_position_embeddings,
                eps: config.layer_norm_eps as f32,
            };
            if config.hidden_act != HiddenAct::Gelu {
                anyhow::bail!("the int8 encoder runs the exact GELU only");
            }
            Encoder::Int8(
                BertInt8::load(&dir.join("model.safetensors"), shape)
                    .context("loading BERT weights (int8)")?,
            )
        } else {
            Encoder::F32(BertModel::load(vb, &config).context("loading BERT weights")?)
        };
        Ok(MiniLm {
            inner: Arc::new(MiniLmInner {
                model,
                tokenizer,
                device,
                options,
            }),
            id: "local:all-MiniLM-L6-v2".to_string(),
        })
    }

    /// Embeds synchronously (call from a blocking thread).
    pub fn embed_blocking(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.inner.embed(texts)
    }

    /// How the encoder runs: "int8" (the VNNI kernels) or "f32" (candle's `BertModel`).
    pub fn precision(&self) -> &'static str {
        match self.inner.model {
            Encoder::F32(_) => "f32",
            Encoder::Int8(_) => "int8",
        }
    }

    /// Token counts of texts as the model sees them (after truncation).
    pub fn token_counts(&self, texts: &[String]) -> anyhow::Result<Vec<usize>> {
        let enc = self
            .inner
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc.iter().map(|e| e.get_ids().len()).collect())
    }
}

impl MiniLmInner {
    fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let ids: Vec<&[u32]> = enc.iter().map(|e| e.get_ids()).collect();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        if let Encoder::Int8(bert) = &self.model {
            // No padding: texts are packed one after another, a pass of about `batch_tokens`.
            let (mut from, mut tokens) = (0, 0);
            for i in 0..ids.len() {
                tokens += ids[i].len();
                if tokens >= self.options.batch_tokens || i + 1 == ids.len() {
                    for (j, v) in bert.embed(&ids[from..=i]).into_iter().enumerate() {
                        out[from + j] = v;
                    }
                    (from, tokens) = (i + 1, 0);
                }
            }
            return Ok(out);
        }
        match self.options.bucket {
            Some(size) => {
                // Shortest first, so each batch pads little: a 10-token signature no longer
                // runs through the model at the length of a 128-token docstring.
                let mut order: Vec<usize> = (0..ids.len()).collect();
                order.sort_by_key(|&i| ids[i].len());
                for group in order.chunks(size.max(1)) {
                    let batch: Vec<&[u32]> = group.iter().map(|&i| ids[i]).collect();
                    for (&i, v) in group.iter().zip(self.forward(&batch)?) {
                        out[i] = v;
                    }
                }
            }
            None => out = self.forward(&ids)?,
        }
        Ok(out)
    }

    /// One padded batch through the model: mean pooling over real tokens, then L2-normalised.
    fn forward(&self, texts: &[&[u32]]) -> anyhow::Result<Vec<Vec<f32>>> {
        let n = texts.len();
        let len = texts.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; n * len];
        let types = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (row, t) in texts.iter().enumerate() {
            ids[row * len..row * len + t.len()].copy_from_slice(t);
            mask[row * len..row * len + t.len()].fill(1);
        }
        let d = &self.device;
        let ids = Tensor::from_vec(ids, (n, len), d)?;
        let types = Tensor::from_vec(types, (n, len), d)?;
        let mask = Tensor::from_vec(mask, (n, len), d)?;
        let Encoder::F32(model) = &self.model else {
            anyhow::bail!("the int8 encoder takes texts unpadded");
        };
        let hidden = model.forward(&ids, &types, Some(&mask))?; // (n, len, 384)
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (n, 384)
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

impl Embedder for MiniLm {
    fn id(&self) -> &str {
        &self.id
    }
    fn dims(&self) -> usize {
        384
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, anyhow::Result<Vec<Vec<f32>>>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.embed(&texts))
                .await
                .map_err(|e| anyhow!("embedding task failed: {e}"))?
        })
    }
}

/// An OpenAI-compatible embeddings endpoint.
pub struct HttpEmbedder {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    api_key_env: Option<String>,
    dims: usize,
    id: String,
}

impl HttpEmbedder {
    /// Connects and probes the vector size with one short request.
    pub async fn connect(
        url: &str,
        model: &str,
        api_key_env: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<HttpEmbedder> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()?;
        let endpoint = format!("{}/embeddings", url.trim_end_matches('/'));
        let mut e = HttpEmbedder {
            client,
            endpoint,
            model: model.to_string(),
            api_key_env: api_key_env.map(str::to_string),
            dims: 0,
            id: format!("openai:{url}:{model}"),
        };
        let probe = e.request(vec!["probe".to_string()]).await?;
        e.dims = probe.first().map_or(0, Vec::len);
        if e.dims == 0 {
            anyhow::bail!("{}: returned an empty embedding", e.endpoint);
        }
        Ok(e)
    }

    async fn request(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
        let n = texts.len();
        let mut req = self
            .client
            .post(&self.endpoint)
            .json(&serde_json::json!({"model": self.model, "input": texts}));
        if let Some(var) = &self.api_key_env {
            match std::env::var(var) {
                Ok(key) if !key.is_empty() => req = req.bearer_auth(key),
                _ => anyhow::bail!("environment variable {var} (embeddings API key) is not set"),
            }
        }
        // Errors are rebuilt without the request (whose headers hold the key).
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("{}: request failed: {}", self.endpoint, e.without_url()))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| anyhow!("{}: reading the answer: {}", self.endpoint, e.without_url()))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(200).collect();
            anyhow::bail!("{}: HTTP {status}: {snippet}", self.endpoint);
        }
        #[derive(serde::Deserialize)]
        struct Item {
            embedding: Vec<f32>,
            #[serde(default)]
            index: Option<usize>,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            data: Vec<Item>,
        }
        let answer: Answer = serde_json::from_str(&body)
            .map_err(|e| anyhow!("{}: malformed answer: {e}", self.endpoint))?;
        if answer.data.len() != n {
            anyhow::bail!(
                "{}: asked for {n} embeddings, got {}",
                self.endpoint,
                answer.data.len()
            );
        }
        let mut out = vec![Vec::new(); n];
        for (i, item) in answer.data.into_iter().enumerate() {
            let at = item.index.unwrap_or(i);
            if at >= n {
                anyhow::bail!("{}: embedding index {at} out of range", self.endpoint);
            }
            out[at] = normalize(item.embedding);
        }
        Ok(out)
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl Embedder for HttpEmbedder {
    fn id(&self) -> &str {
        &self.id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, anyhow::Result<Vec<Vec<f32>>>> {
        Box::pin(async move {
            let got = self.request(texts).await?;
            if got.iter().any(|v| v.len() != self.dims) {
                anyhow::bail!("{}: embedding size changed", self.endpoint);
            }
            Ok(got)
        })
    }
}

/// The embedder the settings ask for, or why there is none (lexical search still works).
pub enum EmbedderChoice {
    Ready(Arc<dyn Embedder>),
    Disabled,
    Unavailable(String),
}

pub async fn load_embedder(settings: &EmbeddingSettings, cache_dir: &Path) -> EmbedderChoice {
    match settings {
        EmbeddingSettings::None => EmbedderChoice::Disabled,
        EmbeddingSettings::Local { model_dir, .. } => {
            let dir: PathBuf = model_dir
                .clone()
                .unwrap_or_else(|| default_embedding_model_dir(cache_dir));
            // One instance per model directory in a process: every workspace of a server
            // shares it (and its memory) while any of them holds it.
            static LOADED: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<MiniLm>)>> =
                std::sync::Mutex::new(Vec::new());
            let held = |dir: &Path| {
                let mut l = LOADED.lock().unwrap_or_else(|e| e.into_inner());
                l.retain(|(_, w)| w.strong_count() > 0);
                l.iter()
                    .find(|(d, _)| d == dir)
                    .and_then(|(_, w)| w.upgrade())
            };
            if let Some(m) = held(&dir) {
                return EmbedderChoice::Ready(m);
            }
            let d2 = dir.clone();
            match tokio::task::spawn_blocking(move || MiniLm::load(&d2)).await {
                Ok(Ok(m)) => {
                    let m = Arc::new(m);
                    let mut l = LOADED.lock().unwrap_or_else(|e| e.into_inner());
                    // Another workspace may have loaded it meanwhile: keep the first.
                    if let Some(first) = l
                        .iter()
                        .find(|(d, _)| d == &dir)
                        .and_then(|(_, w)| w.upgrade())
                    {
                        return EmbedderChoice::Ready(first);
                    }
                    l.push((dir.clone(), Arc::downgrade(&m)));
                    EmbedderChoice::Ready(m)
                }
                Ok(Err(e)) => EmbedderChoice::Unavailable(format!(
                    "embedding model not available ({e:#}); search is lexical only. \
                     Install it with `codeforge model pull embeddings` (all-MiniLM-L6-v2, 91 MB, into {}) \
                     or configure [embeddings] in codeforge.toml",
                    dir.display()
                )),
                Err(e) => {
                    EmbedderChoice::Unavailable(format!("embedding model failed to load: {e}"))
                }
            }
        }
        EmbeddingSettings::Openai {
            url,
            model,
            api_key_env,
            timeout_s,
            ..
        } => match HttpEmbedder::connect(
            url,
            model,
            api_key_env.as_deref(),
            Duration::from_secs(*timeout_s),
        )
        .await
        {
            Ok(e) => EmbedderChoice::Ready(Arc::new(e)),
            Err(e) => EmbedderChoice::Unavailable(format!(
                "embeddings endpoint not available ({e:#}); search is lexical only"
            )),
        },
    }
}

/// What a stored vector was computed from, as a short hash of the symbol's embedding text
/// ([`embedding_text`]'s arguments): an edit reuses the vectors of the symbols whose text it did
/// not change.
pub fn embedding_key(
    kind: &str,
    qualified_name: &str,
    signature: &str,
    doc: Option<&str>,
) -> String {
    let text = embedding_text(kind, qualified_name, signature, doc);
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

/// The text embedded for a symbol: what it is, its words, its signature and doc summary.
pub fn embedding_text(
    kind: &str,
    qualified_name: &str,
    signature: &str,
    doc: Option<&str>,
) -> String {
    let words = codeforge_syntax::split_identifier_words(qualified_name).join(" ");
    let mut t = format!("{kind} {words}\n{signature}");
    if let Some(doc) = doc {
        let summary: Vec<&str> = doc
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect();
        if !summary.is_empty() {
            t.push('\n');
            t.push_str(&summary.join(" "));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let v = normalize(vec![3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalize(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn embedding_text_has_words_and_doc_summary() {
        let t = embedding_text(
            "function",
            "app.config.load_settings",
            "def load_settings(path)",
            Some("Read the TOML file.\n\nDetails."),
        );
        assert!(t.contains("load settings"), "{t}");
        assert!(t.contains("Read the TOML file. Details."), "{t}");
    }
}
