//! The Qwen2 decoder on the CPU (own kernels on AVX-512 VNNI, candle's elsewhere), with a KV
//! cache that can be kept, cut and restored: a prompt is prefilled once for all `n` samples, and a
//! request whose prompt shares a prefix with the previous one (completion while typing, a
//! refinement) prefills only the rest.
//! Derived from candle-transformers 0.11.1 `models/quantized_qwen2.rs` (MIT OR Apache-2.0,
//! Copyright the candle authors). The changes: the linear layers (stacked q/k/v and gate/up,
//! biases inside) on the repacked kernels of `vnni.rs`, loaded straight from the mapped file; the
//! token embedding kept quantized; a KV cache grown in place with its `kv_*` methods, and decode
//! attention read from it without copies.

use crate::vnni::{Linear, Raw};
use candle::{DType, Device, IndexOp, Result, Tensor, quantized::gguf_file};
use candle_core as candle;
use candle_nn::Module;
use candle_transformers::{quantized_nn::RmsNorm, utils::repeat_kv};
use std::collections::HashMap;

/// The feed-forward block: gate and up stacked into one product where the repacked kernel runs.
#[derive(Debug, Clone)]
enum Mlp {
    Stacked {
        gate_up: Linear,
        down: Linear,
        inter: usize,
    },
    Split {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Mlp::Stacked {
                gate_up,
                down,
                inter,
            } => down.forward(&gate_up.forward(xs)?.apply_op1_no_bwd(&SiluMul(*inter))?),
            Mlp::Split { gate, up, down } => {
                let w1 = gate.forward(xs)?;
                let w3 = up.forward(xs)?;
                down.forward(&(candle_nn::ops::silu(&w1)? * w3)?)
            }
        }
    }
}

/// `silu(gate) * up` over a contiguous `[.., 2·inter]` holding gate then up.
struct SiluMul(usize);

impl candle::CustomOp1 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle::CpuStorage,
        layout: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        let candle::CpuStorage::F32(data) = storage else {
            candle::bail!("silu-mul takes f32");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle::bail!("silu-mul takes contiguous input");
        };
        let inter = self.0;
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&(2 * inter)) {
            candle::bail!("silu-mul: {dims:?} does not end in {}", 2 * inter);
        }
        *dims.last_mut().unwrap() = inter;
        let mut out = Vec::with_capacity((end - start) / 2);
        for row in data[start..end].chunks_exact(2 * inter) {
            let (g, u) = row.split_at(inter);
            out.extend(g.iter().zip(u).map(|(g, u)| g / (1.0 + (-g).exp()) * u));
        }
        Ok((candle::CpuStorage::F32(out), candle::Shape::from(dims)))
    }
}

/// The q, k and v projections (with their biases): one stacked product where possible.
#[derive(Debug, Clone)]
enum Qkv {
    Stacked(Linear),
    Split(Linear, Linear, Linear),
}

#[derive(Debug, Clone)]
struct LayerWeights {
    qkv: Qkv,
    attention_wo: Linear,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
    kv: KvBuf,
    span_attn: tracing::Span,
    span_rot: tracing::Span,
    span_mlp: tracing::Span,
}

/// Tensors of a GGUF being loaded: read into `QTensor`s, or taken as raw bytes for packing.
struct Source<'a> {
    ct: &'a gguf_file::Content,
    bytes: &'a [u8],
}

impl<'a> Source<'a> {
    fn raw(&self, name: &str) -> Result<Raw<'a>> {
        let Some(info) = self.ct.tensor_infos.get(name) else {
            candle::bail!("cannot find tensor info for {name}");
        };
        let (n, k) = info.shape.dims2()?;
        let dtype = info.ggml_dtype;
        let size = n * k / dtype.block_size() * dtype.type_size();
        let start = (self.ct.tensor_data_offset + info.offset) as usize;
        let Some(bytes) = self.bytes.get(start..start + size) else {
            candle::bail!("tensor {name} lies outside the file");
        };
        Ok(Raw { dtype, n, k, bytes })
    }

    /// Weights sharing one input: a single stacked product when the repacked kernel takes them
    /// all, else one candle `QMatMul` each. Biases, if given, one per weight.
    fn linears(&self, names: &[String], biases: Option<Vec<Tensor>>) -> Result<Vec<Linear>> {
        let raws = names
            .iter()
            .map(|n| self.raw(n))
            .collect::<Result<Vec<_>>>()?;
        if Linear::can_pack(&raws) {
            return Ok(vec![Linear::packed(&raws, biases.as_deref())?]);
        }
        let mut biases = biases.map(|b| b.into_iter());
        names
            .iter()
            .map(|n| {
                let w = self
                    .ct
                    .tensor(&mut std::io::Cursor::new(self.bytes), n, &Device::Cpu)?;
                Linear::new(w, biases.as_mut().and_then(|b| b.next()))
            })
            .collect()
    }
}

fn masked_fill(on_false: &Tensor, mask: &Tensor, on_true: &Tensor) -> Result<Tensor> {
    let shape = mask.shape();
    let m = mask.where_cond(&on_true.broadcast_as(shape.dims())?, on_false)?;
    Ok(m)
}

impl LayerWeights {
    fn apply_rotary_emb(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let _enter = self.span_rot.enter();
        let (_b_sz, _n_head, seq_len, _n_embd) = x.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
    }

    fn forward_attn(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
    ) -> Result<Tensor> {
        let _enter = self.span_attn.enter();
        let (b_sz, seq_len, n_embd) = x.dims3()?;

        let (q, k, v) = match &self.qkv {
            Qkv::Stacked(w) => {
                let qkv = w.forward(x)?;
                let kv = self.n_kv_head * self.head_dim;
                (
                    qkv.narrow(2, 0, n_embd)?,
                    qkv.narrow(2, n_embd, kv)?,
                    qkv.narrow(2, n_embd + kv, kv)?,
                )
            }
            Qkv::Split(wq, wk, wv) => (wq.forward(x)?, wk.forward(x)?, wv.forward(x)?),
        };

        if b_sz != 1 {
            candle::bail!("the embedded model runs one sequence at a time");
        }
        let q = q
            .reshape((b_sz, seq_len, self.n_head, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let k = k
            .reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let q = self.apply_rotary_emb(&q, index_pos)?;
        let k = self.apply_rotary_emb(&k, index_pos)?;

        // Append this chunk's keys and values to the cache, as [position][kv head][dim] rows.
        let k_rows: Vec<f32> = k.transpose(1, 2)?.flatten_all()?.to_vec1()?;
        let v_rows: Vec<f32> = v.flatten_all()?.to_vec1()?;
        let kvd = self.n_kv_head * self.head_dim;
        self.kv.append(index_pos, kvd, &k_rows, &v_rows);
        let kv_len = self.kv.len;

        let y = if seq_len == 1 {
            let q: Vec<f32> = q.flatten_all()?.to_vec1()?;
            let y = decode_attention(&q, &self.kv, self.n_head, self.n_kv_head, self.head_dim);
            Tensor::from_vec(y, (b_sz, 1, n_embd), x.device())?
        } else {
            let cached = |buf: &[f32]| {
                Tensor::from_slice(
                    &buf[..kv_len * kvd],
                    (1, kv_len, self.n_kv_head, self.head_dim),
                    x.device(),
                )?
                .transpose(1, 2)?
                .contiguous()
            };
            let k = repeat_kv(cached(&self.kv.k)?, self.n_head / self.n_kv_head)?;
            let v = repeat_kv(cached(&self.kv.v)?, self.n_head / self.n_kv_head)?;

            let att = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
            let att = match mask {
                None => att,
                Some(mask) => {
                    let mask = mask.broadcast_as(att.shape())?;
                    masked_fill(&att, &mask, &self.neg_inf)?
                }
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v.contiguous()?)?;
            y.transpose(1, 2)?.reshape(&[b_sz, seq_len, n_embd])?
        };
        let y = self.attention_wo.forward(&y)?;
        Ok(y)
    }
}

pub struct ModelWeights {
    tok_embeddings: std::sync::Arc<candle::quantized::QTensor>,
    layers: Vec<LayerWeights>,
    norm: RmsNorm,
    output: Linear,
    masks: HashMap<(usize, usize), Tensor>,
    span: tracing::Span,
    span_output: tracing::Span,
}

fn precomput_freqs_cis(
    head_dim: usize,
    freq_base: f32,
    context_length: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<_> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / freq_base.powf(i as f32 / head_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx_theta = Tensor::arange(0, context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((context_length, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    let cos = idx_theta.cos()?;
    let sin = idx_theta.sin()?;
    Ok((cos, sin))
}

impl ModelWeights {
    /// Loads from a GGUF's parsed header and its bytes (the whole file; mapped for the load).
    pub fn from_gguf(ct: &gguf_file::Content, bytes: &[u8], device: &Device) -> Result<Self> {
        let src = Source { ct, bytes };
        let reader = &mut std::io::Cursor::new(bytes);
        let md_get = |s: &str| match ct.metadata.get(s) {
            None => candle::bail!("cannot find {s} in metadata"),
            Some(v) => Ok(v),
        };

        let head_count = md_get("qwen2.attention.head_count")?.to_u32()? as usize;
        let head_count_kv = md_get("qwen2.attention.head_count_kv")?.to_u32()? as usize;
        let embedding_length = md_get("qwen2.embedding_length")?.to_u32()? as usize;
        let context_length = md_get("qwen2.context_length")?.to_u32()? as usize;
        let block_count = md_get("qwen2.block_count")?.to_u32()? as usize;
        let rms_norm_eps = md_get("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_freq_base = md_get("qwen2.rope.freq_base")
            .and_then(|m| m.to_f32())
            .unwrap_or(10000f32);

        let head_dim = embedding_length / head_count;

        let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?;

        // Looked up row by row from the quantized table (152k × 896 as f32 would be 545 MB).
        let tok_embeddings = std::sync::Arc::new(ct.tensor(reader, "token_embd.weight", device)?);
        let norm = RmsNorm::from_qtensor(
            ct.tensor(reader, "output_norm.weight", device)?,
            rms_norm_eps,
        )?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            src.linears(&["output.weight".into()], None)?.remove(0)
        } else {
            // use tie_word_embeddings
            src.linears(&["token_embd.weight".into()], None)?.remove(0)
        };

        let (cos, sin) = precomput_freqs_cis(head_dim, rope_freq_base, context_length, device)?;

        let mut layers = Vec::with_capacity(block_count);

        for layer_idx in 0..block_count {
            let prefix = format!("blk.{layer_idx}");
            let name = |n: &str| format!("{prefix}.{n}");
            let mut bias = |n: &str| ct.tensor(reader, &name(n), device)?.dequantize(device);
            let biases = vec![
                bias("attn_q.bias")?,
                bias("attn_k.bias")?,
                bias("attn_v.bias")?,
            ];
            let mut qkv = src.linears(
                &[
                    name("attn_q.weight"),
                    name("attn_k.weight"),
                    name("attn_v.weight"),
                ],
                Some(biases),
            )?;
            let qkv = match qkv.len() {
                1 => Qkv::Stacked(qkv.remove(0)),
                _ => Qkv::Split(qkv.remove(0), qkv.remove(0), qkv.remove(0)),
            };
            let attention_wo = src.linears(&[name("attn_output.weight")], None)?.remove(0);
            let inter = src.raw(&name("ffn_gate.weight"))?.n;
            let down = src.linears(&[name("ffn_down.weight")], None)?.remove(0);
            let mut gate_up =
                src.linears(&[name("ffn_gate.weight"), name("ffn_up.weight")], None)?;
            let mlp = match gate_up.len() {
                1 => Mlp::Stacked {
                    gate_up: gate_up.remove(0),
                    down,
                    inter,
                },
                _ => Mlp::Split {
                    gate: gate_up.remove(0),
                    up: gate_up.remove(0),
                    down,
                },
            };

            let attention_norm =
                ct.tensor(reader, &format!("{prefix}.attn_norm.weight"), device)?;
            let ffn_norm = ct.tensor(reader, &format!("{prefix}.ffn_norm.weight"), device)?;

            let span_attn = tracing::span!(tracing::Level::TRACE, "attn");
            let span_rot = tracing::span!(tracing::Level::TRACE, "attn-rot");
            let span_mlp = tracing::span!(tracing::Level::TRACE, "attn-mlp");

            layers.push(LayerWeights {
                qkv,
                attention_wo,
                attention_norm: RmsNorm::from_qtensor(attention_norm, rms_norm_eps)?,
                cos: cos.clone(),
                sin: sin.clone(),
                mlp,
                ffn_norm: RmsNorm::from_qtensor(ffn_norm, rms_norm_eps)?,
                n_head: head_count,
                n_kv_head: head_count_kv,
                head_dim,
                neg_inf: neg_inf.clone(),
                kv: KvBuf::default(),
                span_attn,
                span_rot,
                span_mlp,
            });
        }

        let span = tracing::span!(tracing::Level::TRACE, "model");
        let span_output = tracing::span!(tracing::Level::TRACE, "output");

        Ok(Self {
            tok_embeddings,
            layers,
            norm,
            output,
            masks: HashMap::new(),
            span,
            span_output,
        })
    }

    fn mask(&mut self, seq_len: usize, index_pos: usize, device: &Device) -> Result<Tensor> {
        let kv_len = index_pos + seq_len;
        if let Some(mask) = self.masks.get(&(seq_len, kv_len)) {
            Ok(mask.clone())
        } else {
            let mask = candle_transformers::utils::build_causal_mask(seq_len, index_pos, device)?;
            self.masks.insert((seq_len, kv_len), mask.clone());
            Ok(mask)
        }
    }

    pub fn forward(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_sz, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 {
            None
        } else {
            Some(self.mask(seq_len, index_pos, x.device())?)
        };
        let _enter = self.span.enter();
        let mut layer_in = self.tok_embeddings.embedding(x)?;
        for layer in self.layers.iter_mut() {
            let x = layer_in;
            let residual = &x;
            let x = layer.attention_norm.forward(&x)?;
            let attn = layer.forward_attn(&x, mask.as_ref(), index_pos)?;
            let x = (attn + residual)?;

            // MLP
            let _enter = layer.span_mlp.enter();
            let residual = &x;
            let x = layer.ffn_norm.forward(&x)?;
            let x = layer.mlp.forward(&x)?;
            let x = (x + residual)?;
            layer_in = x
        }
        let x = self.norm.forward(&layer_in)?;
        let x = x.i((.., seq_len - 1, ..))?;
        let _enter = self.span_output.enter();
        self.output.forward(&x)
    }
}

/// One layer's keys and values as `[position][kv head][dim]` rows, grown in place: positions
/// `len..` hold stale rows. A snapshot is a length, which stays valid as long as the cache is
/// only appended to after it (every sample continues the same prefilled prompt).
#[derive(Debug, Clone, Default)]
struct KvBuf {
    k: Vec<f32>,
    v: Vec<f32>,
    len: usize,
}

impl KvBuf {
    /// Writes `k`/`v` (whole rows of `row` values) from position `at` on, dropping what followed.
    fn append(&mut self, at: usize, row: usize, k: &[f32], v: &[f32]) {
        let at = at.min(self.len);
        self.k.truncate(at * row);
        self.v.truncate(at * row);
        self.k.extend_from_slice(k);
        self.v.extend_from_slice(v);
        self.len = self.k.len() / row;
    }

    /// Positions whose rows are stored (valid or stale).
    fn stored(&self, row: usize) -> usize {
        self.k.len() / row.max(1)
    }
}

/// One query position against the whole cache, every head (grouped-query: head `h` reads kv
/// head `h / (n_head / n_kv_head)`). Returns the heads' outputs side by side.
fn decode_attention(
    q: &[f32],
    kv: &KvBuf,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
) -> Vec<f32> {
    let group = n_head / n_kv_head;
    let kvd = n_kv_head * head_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let len = kv.len;
    let mut out = vec![0f32; n_head * head_dim];
    let out_ptr = out.as_mut_ptr() as usize;
    candle::utils::barrier_pool().execute_chunked(n_head, |heads| {
        let mut scores = vec![0f32; len];
        for h in heads {
            let qh = &q[h * head_dim..(h + 1) * head_dim];
            let off = (h / group) * head_dim;
            let mut max = f32::NEG_INFINITY;
            for (j, s) in scores.iter_mut().enumerate() {
                let kr = &kv.k[j * kvd + off..j * kvd + off + head_dim];
                *s = dot(qh, kr) * scale;
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            // SAFETY: each head writes its own `head_dim` outputs; heads are split disjointly.
            let oh = unsafe {
                std::slice::from_raw_parts_mut((out_ptr as *mut f32).add(h * head_dim), head_dim)
            };
            for (j, s) in scores.iter().enumerate() {
                let w = s / sum;
                let vr = &kv.v[j * kvd + off..j * kvd + off + head_dim];
                for (o, v) in oh.iter_mut().zip(vr) {
                    *o += w * v;
                }
            }
        }
    });
    out
}

/// A dot product in 16 independent lanes (vectorises without reassociating a single sum).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, ar) = a.split_at(a.len() / 16 * 16);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(16).zip(bc.chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

/// The cache's state: how many positions each layer holds.
pub type KvState = Vec<usize>;

impl ModelWeights {
    /// Tokens held in the KV cache.
    pub fn kv_len(&self) -> usize {
        self.layers.first().map(|l| l.kv.len).unwrap_or(0)
    }

    /// The cache as it is now (a length per layer; nothing is copied).
    pub fn kv_snapshot(&self) -> KvState {
        self.layers.iter().map(|l| l.kv.len).collect()
    }

    /// Back to a snapshot taken earlier, provided the cache was only appended to since.
    pub fn kv_restore(&mut self, state: KvState) {
        for (layer, len) in self.layers.iter_mut().zip(state) {
            let row = layer.n_kv_head * layer.head_dim;
            layer.kv.len = len.min(layer.kv.stored(row));
        }
    }

    /// Keeps the first `len` positions of the cache.
    pub fn kv_truncate(&mut self, len: usize) -> Result<()> {
        for layer in self.layers.iter_mut() {
            layer.kv.len = layer.kv.len.min(len);
        }
        Ok(())
    }
}
