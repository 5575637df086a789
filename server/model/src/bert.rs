//! The embedding model (all-MiniLM-L6-v2, a BERT encoder) on the repacked int8 kernels of
//! [`crate::vnni`]: its weights quantized to Q8_0 once at load, activations to 8 bits per 32
//! values, texts packed one after another without padding (attention runs per text), and GELU
//! from a rational `erf` that vectorises. Only where those kernels run ([`crate::vnni::available`]);
//! elsewhere the index keeps candle's f32 `BertModel`.

use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Result, Tensor};

use crate::vnni::{Packed, Raw, available};

/// The sizes of a BERT encoder (from its `config.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub eps: f32,
}

struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    /// query, key and value stacked: one product.
    qkv: Packed,
    out: Packed,
    up: Packed,
    down: Packed,
    ln1: Norm,
    ln2: Norm,
}

/// A BERT encoder with int8 weights, for mean-pooled sentence embeddings.
pub struct BertInt8 {
    shape: BertShape,
    vocab: usize,
    /// Word embeddings in 8 bits with a scale per [`WORD_BLOCK`] values (a quarter of the f32
    /// table's 47 MB; only looked up, never multiplied).
    word: Vec<i8>,
    word_scale: Vec<f32>,
    pos: Vec<f32>,
    /// Token type 0's embedding (every text is one segment).
    typ: Vec<f32>,
    ln: Norm,
    layers: Vec<Layer>,
}

impl BertInt8 {
    /// Reads a BERT `model.safetensors` (names with or without the `bert.` prefix) and quantizes
    /// its dense layers. Fails on a CPU without the kernels, or weights of another shape.
    pub fn load(weights: &Path, shape: BertShape) -> Result<BertInt8> {
        if !available() {
            candle_core::bail!("the int8 encoder needs AVX-512 VNNI");
        }
        if shape.heads == 0 || !shape.hidden.is_multiple_of(shape.heads) {
            candle_core::bail!("{} heads do not divide {}", shape.heads, shape.hidden);
        }
        // Mapped, not read: each tensor is copied out, converted and dropped in turn, so the load
        // never holds the file and all its f32 tensors at once (it did: 180 MB for a 90 MB model).
        // SAFETY: the file is the model cache's, written once by `model pull` and not changed
        // while mapped.
        let all = unsafe { candle_core::safetensors::MmapedSafetensors::new(weights)? };
        let get = |name: &str| -> Result<Tensor> {
            all.load(name, &Device::Cpu)
                .or_else(|_| all.load(&format!("bert.{name}"), &Device::Cpu))
                .map_err(|_| candle_core::Error::Msg(format!("no tensor {name}")))
        };
        let vec = |name: &str, len: usize| -> Result<Vec<f32>> {
            let v = get(name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if v.len() != len {
                candle_core::bail!("{name}: {} values, want {len}", v.len());
            }
            Ok(v)
        };
        let h = shape.hidden;
        let norm = |prefix: &str| -> Result<Norm> {
            Ok(Norm {
                w: vec(&format!("{prefix}.weight"), h)?,
                b: vec(&format!("{prefix}.bias"), h)?,
            })
        };
        // Dense layers: `n`×`k` f32 weights quantized to Q8_0, stacked, with their biases.
        let dense = |names: &[&str], k: usize| -> Result<Packed> {
            let mut quant = Vec::new();
            let mut bias = Vec::new();
            for name in names {
                let w = get(&format!("{name}.weight"))?.to_dtype(DType::F32)?;
                let (n, wk) = w.dims2()?;
                if wk != k {
                    candle_core::bail!("{name}: {n}×{wk}, want k = {k}");
                }
                quant.push((
                    n,
                    QTensor::quantize(&w, GgmlDType::Q8_0)?.data()?.into_owned(),
                ));
                bias.extend(vec(&format!("{name}.bias"), n)?);
            }
            let raws: Vec<Raw<'_>> = quant
                .iter()
                .map(|(n, bytes)| Raw {
                    dtype: GgmlDType::Q8_0,
                    n: *n,
                    k,
                    bytes,
                })
                .collect();
            Packed::new(&raws, Some(bias))
        };
        let word = get("embeddings.word_embeddings.weight")?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if word.is_empty() || word.len() % h != 0 {
            candle_core::bail!("word embeddings of {} values for {h} dims", word.len());
        }
        let vocab = word.len() / h;
        let (word, word_scale) = quantize_blocks(&word, word_block(h));
        let pos = vec(
            "embeddings.position_embeddings.weight",
            shape.max_positions * h,
        )?;
        let typ = vec("embeddings.token_type_embeddings.weight", 2 * h)
            .or_else(|_| vec("embeddings.token_type_embeddings.weight", h))?[..h]
            .to_vec();
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                qkv: dense(
                    &[
                        &format!("{p}.attention.self.query"),
                        &format!("{p}.attention.self.key"),
                        &format!("{p}.attention.self.value"),
                    ],
                    h,
                )?,
                out: dense(&[&format!("{p}.attention.output.dense")], h)?,
                up: dense(&[&format!("{p}.intermediate.dense")], h)?,
                down: dense(&[&format!("{p}.output.dense")], shape.intermediate)?,
                ln1: norm(&format!("{p}.attention.output.LayerNorm"))?,
                ln2: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(BertInt8 {
            shape,
            vocab,
            word,
            word_scale,
            pos,
            typ,
            ln: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// The last hidden states of the texts' tokens, one row of `hidden` values per token, the
    /// texts one after another (each cut at `max_positions` tokens).
    pub fn hidden_states(&self, texts: &[&[u32]]) -> Vec<f32> {
        let s = self.shape;
        let h = s.hidden;
        let lens: Vec<usize> = texts.iter().map(|t| t.len().min(s.max_positions)).collect();
        let total: usize = lens.iter().sum();
        let mut x = vec![0f32; total * h];
        let mut row = 0;
        let block = word_block(h);
        for (t, &len) in texts.iter().zip(&lens) {
            for (i, &id) in t[..len].iter().enumerate() {
                let id = (id as usize).min(self.vocab - 1);
                let (w, p) = (&self.word[id * h..][..h], &self.pos[i * h..][..h]);
                let scales = &self.word_scale[id * (h / block)..][..h / block];
                let dst = &mut x[row * h..][..h];
                for (b, &scale) in scales.iter().enumerate() {
                    for j in b * block..(b + 1) * block {
                        dst[j] = w[j] as f32 * scale + p[j] + self.typ[j];
                    }
                }
                row += 1;
            }
        }
        if total == 0 {
            return x;
        }
        par_rows(&mut x, h, |_, r| layer_norm(r, &self.ln, s.eps));
        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut tmp = vec![0f32; total * h];
        let mut mid = vec![0f32; total * s.intermediate];
        for l in &self.layers {
            l.qkv.matmul(&x, total, &mut qkv);
            attention(&qkv, &lens, s.heads, h, &mut ctx);
            l.out.matmul(&ctx, total, &mut tmp);
            par_rows(&mut x, h, |i, r| {
                add_norm(r, &tmp[i * h..][..h], &l.ln1, s.eps)
            });
            l.up.matmul(&x, total, &mut mid);
            par_rows(&mut mid, s.intermediate, |_, r| r.iter_mut().for_each(gelu));
            l.down.matmul(&mid, total, &mut tmp);
            par_rows(&mut x, h, |i, r| {
                add_norm(r, &tmp[i * h..][..h], &l.ln2, s.eps)
            });
        }
        x
    }

    /// One unit-length vector per text: the mean of its tokens' last hidden states, normalised.
    pub fn embed(&self, texts: &[&[u32]]) -> Vec<Vec<f32>> {
        let h = self.shape.hidden;
        let x = self.hidden_states(texts);
        let mut row = 0;
        texts
            .iter()
            .map(|t| {
                let len = t.len().min(self.shape.max_positions);
                let mut v = vec![0f32; h];
                for r in row..row + len {
                    for (a, b) in v.iter_mut().zip(&x[r * h..][..h]) {
                        *a += b;
                    }
                }
                row += len;
                let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|a| *a /= norm);
                v
            })
            .collect()
    }
}

/// Values per scale in the 8-bit word embeddings: 32 where the width allows (as Q8_0), else
/// the whole row.
fn word_block(hidden: usize) -> usize {
    if hidden.is_multiple_of(32) {
        32
    } else {
        hidden
    }
}

/// `v` in 8 bits, symmetric, with one scale per `block` values (`v.len()` a multiple of it).
fn quantize_blocks(v: &[f32], block: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(v.len());
    let mut scales = Vec::with_capacity(v.len() / block);
    for chunk in v.chunks(block) {
        let amax = chunk.iter().fold(0f32, |a, x| a.max(x.abs()));
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        q.extend(
            chunk
                .iter()
                .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (q, scales)
}

/// `f(i, row)` for every `width`-wide row of `data`, over candle's thread pool.
fn par_rows(data: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = data.len() / width;
    let p = data.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        for i in range {
            // SAFETY: the pool's ranges are disjoint and within `rows`.
            let row =
                unsafe { std::slice::from_raw_parts_mut((p as *mut f32).add(i * width), width) };
            f(i, row);
        }
    });
}

fn layer_norm(x: &mut [f32], n: &Norm, eps: f32) {
    let len = x.len() as f32;
    let mean = x.iter().sum::<f32>() / len;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, w), b) in x.iter_mut().zip(&n.w).zip(&n.b) {
        *v = (*v - mean) * inv * w + b;
    }
}

/// `x = LayerNorm(x + y)`.
fn add_norm(x: &mut [f32], y: &[f32], n: &Norm, eps: f32) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
    layer_norm(x, n, eps);
}

/// Self-attention of each text with itself (no padding, so no mask): `qkv` holds per token its
/// query, key and value (`hidden` each); `ctx` gets the heads' outputs side by side. Per text and
/// head the keys are laid out transposed, so a query's scores are `dh` passes over contiguous
/// memory that vectorise, as do the softmax and the weighted sum of values.
fn attention(qkv: &[f32], lens: &[usize], heads: usize, h: usize, ctx: &mut [f32]) {
    let dh = h / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut starts = Vec::with_capacity(lens.len());
    let mut at = 0;
    for &l in lens {
        starts.push(at);
        at += l;
    }
    let out = ctx.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(lens.len() * heads, |range| {
        let (mut kt, mut scores) = (Vec::new(), Vec::new());
        for job in range {
            let (t, hd) = (job / heads, job % heads);
            let (o, len) = (starts[t], lens[t]);
            let row = |i: usize, part: usize| &qkv[(o + i) * 3 * h + part * h + hd * dh..][..dh];
            // kt[d][j] = key j's value d, scaled.
            kt.resize(dh * len, 0f32);
            for j in 0..len {
                for (d, k) in row(j, 1).iter().enumerate() {
                    kt[d * len + j] = k * scale;
                }
            }
            scores.resize(len, 0f32);
            for i in 0..len {
                scores.fill(0.0);
                for (d, &q) in row(i, 0).iter().enumerate() {
                    for (s, k) in scores.iter_mut().zip(&kt[d * len..][..len]) {
                        *s = q.mul_add(*k, *s);
                    }
                }
                let max = max_of(&scores);
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = exp(*s - max);
                }
                for s in scores.iter() {
                    sum += s;
                }
                // SAFETY: (text, head) jobs write disjoint rows × columns of `ctx`.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut((out as *mut f32).add((o + i) * h + hd * dh), dh)
                };
                dst.fill(0.0);
                for (j, &p) in scores.iter().enumerate() {
                    for (d, v) in dst.iter_mut().zip(row(j, 2)) {
                        *d = p.mul_add(*v, *d);
                    }
                }
                let inv = 1.0 / sum;
                dst.iter_mut().for_each(|d| *d *= inv);
            }
        }
    });
}

/// The largest value, in 8 lanes (so that it vectorises).
fn max_of(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let c = v.chunks_exact(8);
    let mut m = c
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for x in c {
        for l in 0..8 {
            acc[l] = if x[l] > acc[l] { x[l] } else { acc[l] };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// `e^x` for the softmax (`x ≤ 0` there): `2^n · e^r` with `|r| ≤ ln2/2` and `e^r` by its Taylor
/// polynomial to degree 6 (relative error about 1e-7), branch-free so that loops over it
/// vectorise, unlike `libm`'s.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = r.mul_add(1.0 / 720.0, 1.0 / 120.0);
    p = r.mul_add(p, 1.0 / 24.0);
    p = r.mul_add(p, 1.0 / 6.0);
    p = r.mul_add(p, 0.5);
    p = r.mul_add(p, 1.0);
    p = r.mul_add(p, 1.0);
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The exact GELU, `x·Φ(x)`, with [`erf`].
fn gelu(x: &mut f32) {
    let v = *x;
    *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
}

/// `erf` as a rational function of `x` (the one Eigen and XLA use for f32; error a few ulp),
/// branch-free so that loops over it vectorise, unlike `libm`'s.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    let p = x * p;
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges to ~1e-11 for |x| ≤ 4).
    fn erf_series(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn word_embeddings_in_blocks_of_8_bits_round_trip_within_half_a_step() {
        let v: Vec<f32> = (0..384 * 3)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0 * if i % 64 < 32 { 1.0 } else { 0.01 })
            .collect();
        let (q, scales) = quantize_blocks(&v, word_block(384));
        assert_eq!((q.len(), scales.len()), (v.len(), v.len() / 32));
        for (i, (&x, &qx)) in v.iter().zip(&q).enumerate() {
            let scale = scales[i / 32];
            // Small blocks get their own small scale, so their error stays small too.
            assert!(
                (qx as f32 * scale - x).abs() <= scale / 2.0 + 1e-7,
                "{i}: {x} vs {qx}"
            );
        }
        assert_eq!(word_block(100), 100);
    }

    #[test]
    fn the_rational_erf_matches_the_series() {
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = if x.abs() > 4.0 {
                x.signum() as f64
            } else {
                erf_series(x as f64)
            };
            let got = erf(x) as f64;
            assert!((got - want).abs() < 2e-6, "erf({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn the_polynomial_exp_matches_std() {
        for i in 0..=9000 {
            let x = -87.0 + i as f32 * 0.0097;
            let (want, got) = (x.exp(), exp(x));
            assert!(
                (got - want).abs() <= 4e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(
            max_of(&[1.0, -3.0, 7.5, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 9.0, -1.0]),
            9.0
        );
        assert_eq!(max_of(&[-2.0, -1.0]), -1.0);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let n = Norm {
            w: vec![2.0; 4],
            b: vec![1.0; 4],
        };
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &n, 0.0);
        let sd = (1.25f32).sqrt();
        for (v, raw) in x.iter().zip([1.0f32, 2.0, 3.0, 4.0]) {
            assert!((v - ((raw - 2.5) / sd * 2.0 + 1.0)).abs() < 1e-5, "{x:?}");
        }
    }
}
