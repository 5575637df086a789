//! The embedded backend: a Qwen2 GGUF (Qwen2.5-Coder-0.5B-Instruct by default) run in-process on
//! the CPU with candle's quantized kernels. Owns the one-time requantization of slow quant types
//! to Q8_0 (Q4_0 with `CODEFORGE_EMBEDDED_QUANT=q4_0`; cached next to the models, written
//! atomically), ChatML rendering, sampling, stop handling and cancellation between tokens. Generation runs on a blocking thread, never on the
//! async runtime; one generation at a time (the model and its KV cache sit behind a mutex).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use futures::future::BoxFuture;
use tokenizers::Tokenizer;

use crate::qwen2::ModelWeights;
use crate::{
    Backend, FinishReason, Generation, ModelError, Prompt, Request, Sample, Usage, cut_at_stop,
};

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The GGUF as fetched (any Qwen2-architecture GGUF).
    pub gguf: PathBuf,
    /// Where a requantized copy is cached.
    pub cache_dir: PathBuf,
    /// Context window used (prompt + output), capped by the model's own.
    pub max_context: usize,
}

/// What loading cost, for logs and the benchmark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub gguf: PathBuf,
    pub requantized: bool,
    pub prepare_ms: u64,
    pub load_ms: u64,
}

pub struct EmbeddedQwen {
    inner: Arc<Mutex<Loaded>>,
    tokenizer: Tokenizer,
    stop_ids: Vec<u32>,
    max_context: usize,
    pub report: LoadReport,
}

struct Loaded {
    model: ModelWeights,
    /// The tokens whose keys and values the model's cache holds (a prompt already prefilled).
    cached: Vec<u32>,
}

fn inference(e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference(e.to_string())
}

/// Tensor types candle runs fast on the CPU; anything else is requantized once.
fn is_fast(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q8_0 | GgmlDType::F32 | GgmlDType::F16
    )
}

/// The type the slow tensors are requantized to: Q8_0, or Q4_0 where
/// `CODEFORGE_EMBEDDED_QUANT=q4_0`. Q4_0 is a second 4-bit rounding on top of the shipped
/// Q4_K_M's: on the infilling benchmark it cost the 0.5B model about 20 points of pass@1
/// against the same GGUF in llama.cpp, which Q8_0 gets back at about the same speed here
/// (the VNNI kernels take both), for 250 MB more.
fn requant_type() -> GgmlDType {
    match std::env::var("CODEFORGE_EMBEDDED_QUANT") {
        Ok(v) if v.eq_ignore_ascii_case("q4_0") => GgmlDType::Q4_0,
        _ => GgmlDType::Q8_0,
    }
}

/// Where the requantized copy of `src` is cached (keyed by its size and mtime, and the type).
fn requantized_path(src: &Path, meta: &std::fs::Metadata, cache_dir: &Path) -> PathBuf {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let ty = match requant_type() {
        GgmlDType::Q8_0 => "q8_0",
        _ => "q4_0",
    };
    cache_dir.join(format!("{stem}-{:x}-{mtime}.{ty}.gguf", meta.len()))
}

/// Returns a GGUF with only fast tensor types: `src` itself, or a Q8_0 copy made once and cached
/// in `cache_dir` (keyed by the source's size and mtime). Returns whether a copy is used.
pub fn prepare_gguf(src: &Path, cache_dir: &Path) -> Result<(PathBuf, bool), ModelError> {
    prepare(src, cache_dir).map(|(p, r, _)| (p, r))
}

/// [`prepare_gguf`], also returning the header when it read `src`'s and kept `src`.
fn prepare(
    src: &Path,
    cache_dir: &Path,
) -> Result<(PathBuf, bool, Option<gguf_file::Content>), ModelError> {
    let missing = || {
        ModelError::ModelMissing(format!(
            "the embedded model is missing at {}; run `codeforge model pull embedded` to install Qwen2.5-Coder-0.5B-Instruct (491 MB), \
             or set generation.gguf to a local Qwen2 GGUF, or configure an OpenAI-compatible endpoint",
            src.display()
        ))
    };
    let meta = std::fs::metadata(src).map_err(|_| missing())?;
    let out = requantized_path(src, &meta, cache_dir);
    if out.is_file() {
        return Ok((out, true, None));
    }
    let mut reader = BufReader::new(File::open(src).map_err(|_| missing())?);
    let content = gguf_file::Content::read(&mut reader)
        .map_err(|e| inference(format!("{} is not a readable GGUF: {e}", src.display())))?;
    if content.tensor_infos.values().all(|t| is_fast(t.ggml_dtype)) {
        return Ok((src.to_path_buf(), false, Some(content)));
    }
    std::fs::create_dir_all(cache_dir).map_err(inference)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let qt = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(inference)?;
        let dims = qt.shape().dims().to_vec();
        let qt = if is_fast(qt.dtype()) {
            qt
        } else {
            let t = qt.dequantize(&Device::Cpu).map_err(inference)?;
            let last = *dims.last().unwrap_or(&0);
            if dims.len() >= 2 && last % 32 == 0 {
                QTensor::quantize(&t, requant_type()).map_err(inference)?
            } else {
                QTensor::quantize(&t, GgmlDType::F32).map_err(inference)?
            }
        };
        tensors.push((name.clone(), qt));
    }
    let marker = gguf_file::Value::String(format!(
        "requantized to {:?} from {}",
        requant_type(),
        src.display()
    ));
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.push(("codeforge.requantized", &marker));
    let tmp = out.with_extension(format!("part{}", std::process::id()));
    {
        let mut w = BufWriter::new(File::create(&tmp).map_err(inference)?);
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gguf_file::write(&mut w, &metadata, &refs).map_err(inference)?;
        use std::io::Write;
        w.flush().map_err(inference)?;
    }
    std::fs::rename(&tmp, &out).map_err(inference)?;
    Ok((out, true, None))
}

impl EmbeddedQwen {
    /// Prepares (requantizes once) and loads the model. Blocking: call from a blocking thread.
    pub fn load(cfg: &EmbeddedConfig) -> Result<Self, ModelError> {
        let t0 = Instant::now();
        let (path, requantized, header) = prepare(&cfg.gguf, &cfg.cache_dir)?;
        let prepare_ms = t0.elapsed().as_millis() as u64;
        let t1 = Instant::now();
        let file = File::open(&path).map_err(inference)?;
        // SAFETY: the map is read-only and lives only for this load (every tensor is copied or
        // repacked out of it). The files are written whole and renamed into place (setup, the
        // requantized copy); a GGUF truncated by someone else during this second would fault.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(inference)?;
        let content = match header {
            Some(h) => h,
            None => {
                gguf_file::Content::read(&mut std::io::Cursor::new(&map[..])).map_err(inference)?
            }
        };
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "qwen2" {
            return Err(inference(format!(
                "{} has architecture `{arch}`; the embedded backend runs qwen2 models",
                cfg.gguf.display()
            )));
        }
        let ctx_len = content
            .metadata
            .get("qwen2.context_length")
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(4096) as usize;
        // The tokenizer (152k tokens and their merges) is built while the weights load.
        let (tokenizer, model) = std::thread::scope(|s| {
            let tokenizer = s.spawn(|| Tokenizer::from_gguf(&content).map_err(inference));
            let model = ModelWeights::from_gguf(&content, &map, &Device::Cpu).map_err(inference);
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|_| Err(inference("building the tokenizer panicked")));
            Ok::<_, ModelError>((tokenizer?, model?))
        })?;
        drop(map);
        let stop_ids = ["<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|file_sep|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(EmbeddedQwen {
            inner: Arc::new(Mutex::new(Loaded {
                model,
                cached: Vec::new(),
            })),
            tokenizer,
            stop_ids,
            max_context: cfg.max_context.min(ctx_len),
            report: LoadReport {
                gguf: path,
                requantized,
                prepare_ms,
                load_ms: t1.elapsed().as_millis() as u64,
            },
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(inference)?
            .get_ids()
            .to_vec())
    }
}

/// Sets the flag when the request's future is dropped: the blocking loop sees it between tokens.
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Job {
    ids: Vec<u32>,
    req: Request,
    stop_ids: Vec<u32>,
    max_context: usize,
    cancel: Arc<AtomicBool>,
}

fn run_blocking(
    inner: &Mutex<Loaded>,
    tokenizer: &Tokenizer,
    job: Job,
) -> Result<Generation, ModelError> {
    let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Loaded { model, cached } = &mut *guard;
    let start = Instant::now();
    let Job {
        ids,
        req,
        stop_ids,
        max_context,
        cancel,
    } = job;
    if ids.len() + 8 > max_context {
        return Err(inference(format!(
            "prompt of {} tokens does not fit the {max_context}-token context",
            ids.len()
        )));
    }
    let max_new = (req.max_tokens as usize).min(max_context - ids.len());
    let mut usage = Usage {
        prompt_tokens: ids.len() as u64,
        ..Default::default()
    };
    // Prefill once, reusing what the cache already holds of this prompt (the longest common
    // prefix with the last one; at least one token is run to get the next token's logits).
    let previous = std::mem::take(cached);
    let reuse = previous
        .iter()
        .zip(&ids)
        .take_while(|(a, b)| a == b)
        .count()
        .min(ids.len().saturating_sub(1))
        .min(model.kv_len());
    model.kv_truncate(reuse).map_err(inference)?;
    let input = Tensor::new(&ids[reuse..], &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .map_err(inference)?;
    let prompt_logits = model.forward(&input, reuse).map_err(inference)?;
    let prompt_kv = model.kv_snapshot();
    usage.cached_prompt_tokens = reuse as u64;
    usage.first_token_ms = start.elapsed().as_millis() as u64;
    let mut samples = Vec::new();
    for i in 0..req.n.max(1) as usize {
        let mut rng = SplitMix(req.seed.unwrap_or(299792458) + i as u64);
        // Every sample continues from the same prefilled prompt.
        model.kv_restore(prompt_kv.clone());
        let mut logits = prompt_logits.clone();
        let mut out: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut logprob_sum = 0.0f64;
        let mut finish = FinishReason::Length;
        let mut code_seen = false;
        while out.len() < max_new {
            if cancel.load(Ordering::SeqCst) {
                return Err(ModelError::Cancelled);
            }
            let l: Vec<f32> = logits
                .flatten_all()
                .and_then(|l| l.to_dtype(candle_core::DType::F32))
                .and_then(|l| l.to_vec1())
                .map_err(inference)?;
            let tok = if req.temperature <= 0.0 {
                match &req.avoid_starts {
                    Some(avoid) if !code_seen => steered(&l, |t| {
                        !stop_ids.contains(&t)
                            && tokenizer
                                .decode(&[t], false)
                                .is_ok_and(|x| crate::may_start(&x, avoid))
                    }),
                    _ => argmax(&l),
                }
            } else {
                sample_top_p(&l, req.temperature, req.top_p, &mut rng)
            };
            logprob_sum += log_softmax_at(&l, tok as usize) as f64;
            if stop_ids.contains(&tok) {
                finish = FinishReason::Stop;
                break;
            }
            out.push(tok);
            let full = tokenizer.decode(&out, true).map_err(inference)?;
            code_seen |= !full.trim().is_empty();
            if !full.ends_with('\u{FFFD}') && full.len() > text.len() && full.starts_with(&text) {
                let delta = full[text.len()..].to_string();
                text = full;
                if let Some(sink) = &req.on_text {
                    sink(i, &delta);
                }
            }
            if cut_at_stop(&mut text, &req.stop) || req.stop_when.as_ref().is_some_and(|f| f(&text))
            {
                finish = FinishReason::Stop;
                break;
            }
            let next = Tensor::new(&[tok], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(inference)?;
            logits = model
                .forward(&next, ids.len() + out.len() - 1)
                .map_err(inference)?;
        }
        if finish == FinishReason::Length {
            text = tokenizer.decode(&out, true).map_err(inference)?;
            cut_at_stop(&mut text, &req.stop);
        }
        usage.completion_tokens += out.len() as u64;
        let mean_logprob = (!out.is_empty()).then(|| logprob_sum / out.len() as f64);
        samples.push(Sample {
            text,
            finish,
            mean_logprob,
        });
    }
    // Keep the prompt's keys and values for the next request.
    model.kv_restore(prompt_kv);
    *cached = ids;
    usage.total_ms = start.elapsed().as_millis() as u64;
    if samples.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ModelError::Empty);
    }
    Ok(Generation { samples, usage })
}

/// The log-probability of token `i` under `logits`.
fn log_softmax_at(logits: &[f32], i: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = logits.iter().map(|x| (x - max).exp()).sum::<f32>().ln() + max;
    logits.get(i).map_or(f32::NEG_INFINITY, |x| x - lse)
}

/// The most likely token (the first of equals).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in logits.iter().enumerate() {
        if *x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The most likely token that `allowed` lets through, among the 256 most likely (the most
/// likely of all when none of them is).
fn steered(logits: &[f32], allowed: impl Fn(u32) -> bool) -> u32 {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let k = 256.min(order.len());
    let by_logit = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    if k < order.len() {
        order.select_nth_unstable_by(k, by_logit);
    }
    order[..k].sort_unstable_by(by_logit);
    order[..k]
        .iter()
        .copied()
        .find(|t| allowed(*t))
        .unwrap_or_else(|| argmax(logits))
}

/// A small seeded generator (SplitMix64): samples are reproducible for a request's seed.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Nucleus sampling at a temperature without sorting the whole vocabulary: the smallest set of
/// most likely tokens whose probability reaches `top_p` is looked for among the top 64, then 512,
/// … (almost always found in the first), and one token is drawn from it.
fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut SplitMix) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(f32, u32)> = logits
        .iter()
        .enumerate()
        .map(|(i, l)| (((l - max) / temperature).exp(), i as u32))
        .collect();
    let total: f32 = probs.iter().map(|p| p.0).sum();
    let draw = |set: &[(f32, u32)], rng: &mut SplitMix| {
        let mass: f32 = set.iter().map(|p| p.0).sum();
        let mut r = rng.next_f32() * mass;
        for p in set {
            if r < p.0 {
                return p.1;
            }
            r -= p.0;
        }
        set.last().map_or(0, |p| p.1)
    };
    if top_p >= 1.0 || probs.is_empty() {
        return draw(&probs, rng);
    }
    let target = top_p.max(0.0) * total;
    let by_prob = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0);
    let n = probs.len();
    let mut k = 64.min(n);
    loop {
        if k < n {
            probs.select_nth_unstable_by(k - 1, by_prob);
        }
        let head = &mut probs[..k];
        head.sort_unstable_by(by_prob);
        let mut acc = 0.0;
        let reached = head.iter().position(|p| {
            acc += p.0;
            acc >= target
        });
        match reached {
            Some(i) => return draw(&head[..=i], rng),
            None if k == n => return draw(head, rng),
            None => k = (k * 8).min(n),
        }
    }
}

impl Backend for EmbeddedQwen {
    fn describe(&self) -> String {
        format!("embedded {}", self.report.gguf.display())
    }

    /// Completion asks in Qwen2.5-Coder's FIM format: on the infilling benchmark
    /// (`tests/bench/infilling/`, 40 + 40 tasks) the first item passed 37.5% of single-line and
    /// 17.5% of multi-line holes with it, 10.0% and 5.0% with the chat prompt.
    fn fim(&self) -> bool {
        true
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.encode(text).ok().map(|v| v.len())
    }

    fn steers(&self) -> bool {
        true
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Generation, ModelError>> {
        let text = match &req.prompt {
            Prompt::Chat(m) => crate::chatml(m, true),
            Prompt::Text(t) => t.clone(),
        };
        let ids = self.encode(&text);
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(cancel.clone());
        let inner = self.inner.clone();
        let tokenizer = self.tokenizer.clone();
        let stop_ids = self.stop_ids.clone();
        let max_context = self.max_context;
        Box::pin(async move {
            let _guard = guard;
            let ids = ids?;
            let job = Job {
                ids,
                req,
                stop_ids,
                max_context,
                cancel,
            };
            tokio::task::spawn_blocking(move || run_blocking(&inner, &tokenizer, job))
                .await
                .map_err(|e| inference(format!("generation thread failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steering_takes_the_most_likely_token_let_through() {
        let l = [0.5, 3.0, -1.0, 3.0, 2.0];
        assert_eq!(steered(&l, |_| true), argmax(&l));
        assert_eq!(steered(&l, |t| t != 1), 3);
        assert_eq!(steered(&l, |t| t != 1 && t != 3), 4);
        assert_eq!(steered(&l, |t| t == 2), 2);
        assert_eq!(steered(&l, |_| false), argmax(&l));
    }

    #[test]
    fn nucleus_sampling_draws_only_from_the_smallest_set_reaching_top_p() {
        // p ≈ 0.52, 0.47, then crumbs: at top_p 0.9 the nucleus is the first two tokens.
        let mut logits = vec![5.0f32, 4.9, 0.0, -1.0];
        logits.extend(std::iter::repeat_n(-10.0, 200));
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let t = sample_top_p(&logits, 1.0, 0.9, &mut SplitMix(seed));
            assert!(t < 2, "token {t} is outside the nucleus");
            assert_eq!(t, sample_top_p(&logits, 1.0, 0.9, &mut SplitMix(seed)));
            seen.insert(t);
        }
        assert_eq!(seen.len(), 2, "both nucleus tokens are drawn");
        assert_eq!(argmax(&logits), 0);
        assert!((log_softmax_at(&[0.0, 0.0], 1) - 0.5f32.ln()).abs() < 1e-6);

        // A flat distribution: half the vocabulary is needed, beyond the first 64 looked at.
        let flat = vec![0.0f32; 1000];
        let mut rng = SplitMix(7);
        let drawn: std::collections::BTreeSet<u32> = (0..3000)
            .map(|_| sample_top_p(&flat, 0.7, 0.5, &mut rng))
            .collect();
        assert!(drawn.len() > 64, "only {} distinct tokens", drawn.len());
        assert!(
            drawn.len() <= 500,
            "{} tokens drawn from a 500-token nucleus",
            drawn.len()
        );
        assert!(drawn.iter().all(|t| *t < 1000));
    }
}
