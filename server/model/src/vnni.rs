//! Quantized matrix products for the embedded model on CPUs with AVX-512 VNNI. Q4_0 and Q8_0
//! weights are repacked once, at load, into tiles of 16 output rows. Activations are quantized to
//! 8 bits per 32-value block (as ggml does). One `vpdpbusd` then computes 4 products for each of
//! 16 rows. A tile stays in L1 while every activation row passes over it, so prefill reads each
//! weight once per matmul instead of once per token. Work is split over candle's own thread pool,
//! so no second pool competes for the cores. Other CPUs and other tensor types keep candle's
//! kernels (`QMatMul`); see [`Linear`].
// Off x86-64 only the fallback check runs; the kernels and their data types are unused there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};

/// Output rows per tile (one 512-bit register of i32/f32 lanes).
const TILE: usize = 16;
/// Values per quantization block (Q4_0, Q8_0 and the activations alike).
const QK: usize = 32;
/// Activation rows computed together against one tile (accumulators held in registers).
const MR: usize = 6;

/// Whether this CPU runs the repacked kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(|| {
            std::env::var_os("CODEFORGE_NO_VNNI").is_none()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 4-bit values 0..15 standing for -8..7; two per byte.
    Q4,
    /// 8-bit values stored +128 (so 0..255, as `vpdpbusd` wants its first operand unsigned).
    Q8,
}

/// A weight matrix (`n` outputs × `k` inputs), possibly several stacked on `n` (q, k and v;
/// gate and up), repacked for the kernel, with an optional bias added in the kernel.
#[derive(Debug)]
pub struct Packed {
    n: usize,
    k: usize,
    /// Per tile: its kind and where its blocks start in `quants` and `scales`.
    tiles: Vec<(Kind, usize)>,
    /// Per tile, per block: 16 weight scales.
    scales: Vec<f32>,
    /// Per tile, per block: Q4 as 4 chunks of 64 bytes, chunk `c` holding for row `r` the bytes
    /// `v[r][8c+j] | v[r][8c+4+j] << 4` (j = 0..4); Q8 as 8 chunks, chunk `c` holding `v[r][4c+j]`.
    quants: Vec<u8>,
    bias: Option<Vec<f32>>,
}

fn f16_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// One weight matrix as stored in the GGUF: `n` rows of `k` values in `dtype` blocks.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    pub dtype: GgmlDType,
    pub n: usize,
    pub k: usize,
    pub bytes: &'a [u8],
}

/// Whether a weight of this type and shape can be packed.
pub fn packable(dtype: GgmlDType, n: usize, k: usize) -> bool {
    matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q8_0)
        && n % TILE == 0
        && k % QK == 0
        && n > 0
        && k > 0
}

impl Packed {
    /// Stacks `parts` (all with the same `k`, each [`packable`]) on the output dimension.
    pub fn new(parts: &[Raw<'_>], bias: Option<Vec<f32>>) -> Result<Packed> {
        let k = parts.first().map(|t| t.k).unwrap_or(0);
        let nb = k / QK;
        // Sized once and zeroed by the allocator (fresh pages), then filled in place.
        let bytes: usize = parts
            .iter()
            .map(|p| {
                p.n * nb
                    * if p.dtype == GgmlDType::Q4_0 {
                        QK / 2
                    } else {
                        QK
                    }
            })
            .sum();
        let rows: usize = parts.iter().map(|p| p.n).sum();
        let mut out = Packed {
            n: 0,
            k,
            tiles: Vec::new(),
            scales: vec![0.0; rows * nb],
            quants: vec![0; bytes],
            bias,
        };
        let (mut q0, mut s0) = (0, 0);
        for t in parts {
            let n = t.n;
            if t.k != k || !packable(t.dtype, n, k) {
                candle_core::bail!("cannot pack a {:?} {n}×{} tensor", t.dtype, t.k);
            }
            let (kind, block, tile_bytes) = match t.dtype {
                GgmlDType::Q4_0 => (Kind::Q4, 18, nb * TILE * QK / 2),
                _ => (Kind::Q8, 34, nb * TILE * QK),
            };
            let data = t.bytes;
            if data.len() != n * nb * block {
                candle_core::bail!("unexpected {:?} data size", t.dtype);
            }
            let tiles = n / TILE;
            for tile in 0..tiles {
                out.tiles.push((kind, q0 + tile * tile_bytes));
            }
            let qp = out.quants[q0..].as_mut_ptr() as usize;
            let sp = out.scales[s0..].as_mut_ptr() as usize;
            candle_core::utils::barrier_pool().execute_chunked(tiles, |range| {
                for tile in range {
                    // SAFETY: each tile fills its own `tile_bytes` quants and `nb*16` scales.
                    let (q, sc) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(
                                (qp as *mut u8).add(tile * tile_bytes),
                                tile_bytes,
                            ),
                            std::slice::from_raw_parts_mut(
                                (sp as *mut f32).add(tile * nb * TILE),
                                nb * TILE,
                            ),
                        )
                    };
                    pack_tile(kind, &data[tile * TILE * nb * block..], nb, block, q, sc);
                }
            });
            out.n += n;
            q0 += tiles * tile_bytes;
            s0 += tiles * nb * TILE;
        }
        if let Some(b) = &out.bias
            && b.len() != out.n
        {
            candle_core::bail!("bias of {} for {} outputs", b.len(), out.n);
        }
        Ok(out)
    }

    /// `dst[m×n] = lhs[m×k] · Wᵀ (+ bias)`.
    pub fn matmul(&self, lhs: &[f32], m: usize, dst: &mut [f32]) {
        assert!(available(), "the repacked kernels need AVX-512 VNNI");
        assert_eq!(lhs.len(), m * self.k);
        assert_eq!(dst.len(), m * self.n);
        let act = Activations::quantize(lhs, m, self.k);
        let dst_ptr = dst.as_mut_ptr() as usize;
        candle_core::utils::barrier_pool().execute_chunked(self.tiles.len(), |range| {
            for t in range {
                // SAFETY: each tile writes its own 16 columns of every row; the pool's ranges
                // are disjoint, and `dst` holds m×n values (asserted above).
                unsafe { self.tile(t, &act, m, dst_ptr as *mut f32) }
            }
        });
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn tile(&self, t: usize, act: &Activations, m: usize, dst: *mut f32) {
        let (kind, qoff) = self.tiles[t];
        let nb = self.k / QK;
        let w = Weights {
            q: unsafe { self.quants.as_ptr().add(qoff) },
            d: unsafe { self.scales.as_ptr().add(t * nb * TILE) },
            bias: self
                .bias
                .as_ref()
                .map(|b| unsafe { b.as_ptr().add(t * TILE) }),
        };
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(MR);
            let dst = unsafe { dst.add(r * self.n + t * TILE) };
            let run = match kind {
                Kind::Q4 => rows_kernel::<true>,
                Kind::Q8 => rows_kernel::<false>,
            };
            unsafe { run(rows, &w, act, r, nb, dst, self.n) };
            r += rows;
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn tile(&self, _t: usize, _act: &Activations, _m: usize, _dst: *mut f32) {
        unreachable!("available() is false off x86_64")
    }
}

/// Packs 16 rows (`src`: row-major GGUF blocks of `block` bytes, `nb` per row) into `q` and `sc`.
fn pack_tile(kind: Kind, src: &[u8], nb: usize, block: usize, q: &mut [u8], sc: &mut [f32]) {
    let per = q.len() / nb;
    for b in 0..nb {
        let out = &mut q[b * per..(b + 1) * per];
        for r in 0..TILE {
            let at = (r * nb + b) * block;
            let blk = &src[at..at + block];
            sc[b * TILE + r] = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
            match kind {
                Kind::Q4 => {
                    // Value i of the block is qs[i] & 15 (i < 16) or qs[i-16] >> 4; chunk c of
                    // the tile holds values 8c..8c+4 (low nibbles) and 8c+4..8c+8 (high).
                    let qs: &[u8; 16] = blk[2..18].try_into().expect("Q4_0 block");
                    let out: &mut [u8; 256] = out.try_into().expect("Q4 tile block");
                    for j in 0..4 {
                        out[r * 4 + j] = (qs[j] & 0x0f) | (qs[4 + j] << 4);
                        out[64 + r * 4 + j] = (qs[8 + j] & 0x0f) | (qs[12 + j] << 4);
                        out[128 + r * 4 + j] = (qs[j] >> 4) | (qs[4 + j] & 0xf0);
                        out[192 + r * 4 + j] = (qs[8 + j] >> 4) | (qs[12 + j] & 0xf0);
                    }
                }
                Kind::Q8 => {
                    // i8 + 128 as u8 is a flip of the sign bit.
                    let qs: &[u8; 32] = blk[2..34].try_into().expect("Q8_0 block");
                    let out: &mut [u8; 512] = out.try_into().expect("Q8 tile block");
                    for c in 0..8 {
                        for j in 0..4 {
                            out[c * 64 + r * 4 + j] = qs[4 * c + j] ^ 0x80;
                        }
                    }
                }
            }
        }
    }
}

/// Activation rows quantized to 8 bits per 32-value block: values, scales, and block sums.
struct Activations {
    k: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    sum: Vec<i32>,
}

impl Activations {
    fn quantize(lhs: &[f32], m: usize, k: usize) -> Activations {
        let nb = k / QK;
        let mut a = Activations {
            k,
            q: vec![0; m * k],
            d: vec![0.0; m * nb],
            sum: vec![0; m * nb],
        };
        let blocks = m * nb;
        let (qp, dp, sp) = (
            a.q.as_mut_ptr() as usize,
            a.d.as_mut_ptr() as usize,
            a.sum.as_mut_ptr() as usize,
        );
        let run = |range: std::ops::Range<usize>| {
            for i in range {
                let x = &lhs[i * QK..(i + 1) * QK];
                // SAFETY: block `i` owns its 32 values, scale and sum; ranges are disjoint.
                let (q, d, sum) = unsafe {
                    (
                        std::slice::from_raw_parts_mut((qp as *mut i8).add(i * QK), QK),
                        &mut *(dp as *mut f32).add(i),
                        &mut *(sp as *mut i32).add(i),
                    )
                };
                // SAFETY: `quantize` runs only where `available()` (asserted by `matmul`).
                let scale = unsafe { quantize_block(x, q, sum) };
                *d = half::f16::from_f32(scale).to_f32();
            }
        };
        // Prefill-sized inputs are split over the pool; a decode step's row is not worth it.
        if blocks >= 1024 {
            candle_core::utils::barrier_pool().execute_chunked(blocks, run);
        } else {
            run(0..blocks);
        }
        a
    }
}

/// One block of 32 values to 8 bits: `q` and the sum of `q` written, the scale returned. As ggml
/// does: the scale is `max |x| / 127` (kept as f16 by the caller), the values divided by the exact
/// one and rounded to nearest (ties to even, as ggml's SIMD paths).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_block(x: &[f32], q: &mut [i8], sum: &mut i32) -> f32 {
    use std::arch::x86_64::*;
    assert!(x.len() == QK && q.len() == QK);
    let (a, b) = unsafe {
        (
            _mm512_loadu_ps(x.as_ptr()),
            _mm512_loadu_ps(x.as_ptr().add(16)),
        )
    };
    let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    let scale = amax / 127.0;
    let id = _mm512_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
    let qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, id));
    let qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, id));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    unsafe {
        _mm_storeu_si128(q.as_mut_ptr() as *mut __m128i, _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128(
            q.as_mut_ptr().add(16) as *mut __m128i,
            _mm512_cvtepi32_epi8(qb),
        );
    }
    scale
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn quantize_block(_x: &[f32], _q: &mut [i8], _sum: &mut i32) -> f32 {
    unreachable!("available() is false off x86_64")
}

struct Weights {
    q: *const u8,
    d: *const f32,
    bias: Option<*const f32>,
}

/// [`kernel`] for `rows` (1..=MR) activation rows: the row count is a compile-time constant there.
#[cfg(target_arch = "x86_64")]
unsafe fn rows_kernel<const Q4: bool>(
    rows: usize,
    w: &Weights,
    act: &Activations,
    r0: usize,
    nb: usize,
    dst: *mut f32,
    ldd: usize,
) {
    unsafe {
        match rows {
            1 => kernel::<1, Q4>(w, act, r0, nb, dst, ldd),
            2 => kernel::<2, Q4>(w, act, r0, nb, dst, ldd),
            3 => kernel::<3, Q4>(w, act, r0, nb, dst, ldd),
            4 => kernel::<4, Q4>(w, act, r0, nb, dst, ldd),
            5 => kernel::<5, Q4>(w, act, r0, nb, dst, ldd),
            _ => kernel::<MR, Q4>(w, act, r0, nb, dst, ldd),
        }
    }
}

/// `R` activation rows (from `r0`) against one tile of 16 weight rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn kernel<const R: usize, const Q4: bool>(
    w: &Weights,
    act: &Activations,
    r0: usize,
    nb: usize,
    dst: *mut f32,
    ldd: usize,
) {
    use std::arch::x86_64::*;
    let k = act.k;
    let aq = unsafe { act.q.as_ptr().add(r0 * k) };
    let ad = unsafe { act.d.as_ptr().add(r0 * nb) };
    let asum = unsafe { act.sum.as_ptr().add(r0 * nb) };
    let off: i32 = if Q4 { 8 } else { 128 };
    let bytes = if Q4 { TILE * QK / 2 } else { TILE * QK };
    let mut facc = [_mm512_setzero_ps(); R];
    if let Some(b) = w.bias {
        let b = unsafe { _mm512_loadu_ps(b) };
        for f in facc.iter_mut() {
            *f = b;
        }
    }
    let mask = _mm512_set1_epi8(0x0f);
    for b in 0..nb {
        let wq = unsafe { w.q.add(b * bytes) };
        let mut acc = [_mm512_setzero_si512(); R];
        if Q4 {
            for c in 0..4 {
                let raw = unsafe { _mm512_loadu_si512(wq.add(c * 64) as *const _) };
                let lo = _mm512_and_si512(raw, mask);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), mask);
                for (r, a) in acc.iter_mut().enumerate() {
                    let p = unsafe { aq.add(r * k + b * QK + 8 * c) };
                    let a0 = _mm512_set1_epi32(unsafe { (p as *const i32).read_unaligned() });
                    let a1 =
                        _mm512_set1_epi32(unsafe { (p.add(4) as *const i32).read_unaligned() });
                    *a = _mm512_dpbusd_epi32(*a, lo, a0);
                    *a = _mm512_dpbusd_epi32(*a, hi, a1);
                }
            }
        } else {
            for c in 0..8 {
                let raw = unsafe { _mm512_loadu_si512(wq.add(c * 64) as *const _) };
                for (r, a) in acc.iter_mut().enumerate() {
                    let p = unsafe { aq.add(r * k + b * QK + 4 * c) };
                    let a0 = _mm512_set1_epi32(unsafe { (p as *const i32).read_unaligned() });
                    *a = _mm512_dpbusd_epi32(*a, raw, a0);
                }
            }
        }
        let ws = unsafe { _mm512_loadu_ps(w.d.add(b * TILE)) };
        for (r, (a, f)) in acc.iter().zip(facc.iter_mut()).enumerate() {
            let corr = _mm512_set1_epi32(off * unsafe { *asum.add(r * nb + b) });
            let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(*a, corr));
            let s = _mm512_mul_ps(ws, _mm512_set1_ps(unsafe { *ad.add(r * nb + b) }));
            *f = _mm512_fmadd_ps(v, s, *f);
        }
    }
    for (r, f) in facc.iter().enumerate() {
        unsafe { _mm512_storeu_ps(dst.add(r * ldd), *f) };
    }
}

impl CustomOp1 for Packed {
    fn name(&self) -> &'static str {
        "codeforge-vnni-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("the repacked matmul takes f32 input");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the repacked matmul takes contiguous input");
        };
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&self.k) {
            candle_core::bail!("input {:?} does not end in k = {}", dims, self.k);
        }
        let m = (end - start) / self.k;
        *dims.last_mut().unwrap() = self.n;
        let mut dst = vec![0f32; m * self.n];
        self.matmul(&data[start..end], m, &mut dst);
        Ok((CpuStorage::F32(dst), Shape::from(dims)))
    }
}

/// A linear layer without bias on the CPU: the repacked kernel where it applies, else candle's.
#[derive(Debug, Clone)]
pub enum Linear {
    Packed(std::sync::Arc<Packed>),
    Candle(QMatMul, Option<Tensor>),
}

impl Linear {
    /// One weight (and optional bias), read into a `QTensor` already.
    pub fn new(w: QTensor, bias: Option<Tensor>) -> Result<Linear> {
        let (n, k) = w.shape().dims2()?;
        if available() && packable(w.dtype(), n, k) {
            let data = w.data()?;
            let raw = Raw {
                dtype: w.dtype(),
                n,
                k,
                bytes: &data,
            };
            return Linear::packed(&[raw], bias.as_ref().map(std::slice::from_ref));
        }
        Ok(Linear::Candle(QMatMul::from_qtensor(w)?, bias))
    }

    /// Whether [`Linear::packed`] takes these weights (stacked, so all with one `k`).
    pub fn can_pack(parts: &[Raw<'_>]) -> bool {
        available()
            && parts
                .iter()
                .all(|p| p.k == parts[0].k && packable(p.dtype, p.n, p.k))
    }

    /// Weights sharing an input, stacked on the output (their biases likewise): one product.
    pub fn packed(parts: &[Raw<'_>], biases: Option<&[Tensor]>) -> Result<Linear> {
        let bias = match biases {
            Some(bs) => {
                let mut all = Vec::new();
                for b in bs {
                    all.extend(b.flatten_all()?.to_vec1::<f32>()?);
                }
                Some(all)
            }
            None => None,
        };
        Ok(Linear::Packed(std::sync::Arc::new(Packed::new(
            parts, bias,
        )?)))
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Packed(p) => xs.contiguous()?.apply_op1_no_bwd(p.as_ref()),
            Linear::Candle(w, None) => w.forward(xs),
            Linear::Candle(w, Some(b)) => w.forward(xs)?.broadcast_add(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    pub(super) fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    /// The product with the weights dequantized, in f32: what the kernels approximate.
    fn exact(w: &QTensor, x: &Tensor) -> Vec<f32> {
        let wd = w.dequantize(&Device::Cpu).unwrap();
        x.broadcast_matmul(&wd.t().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn assert_close(what: &str, want: &[f32], got: &[f32], rel: f32) {
        assert_eq!(want.len(), got.len(), "{what}: lengths");
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
        for (i, (a, b)) in want.iter().zip(got).enumerate() {
            assert!(
                (a - b).abs() <= rel * scale,
                "{what} [{i}]: want {a}, got {b} (max |want| {scale})"
            );
        }
    }

    /// The repacked kernel against the exact product of the same quantized weights, and against
    /// candle's own quantized matmul, for both types, every row-group remainder, with and without
    /// bias, stacked (mixed types) and not.
    #[test]
    fn repacked_matmul_matches_the_weights_product() {
        let dev = Device::Cpu;
        if !available() {
            // Off AVX-512 VNNI the model runs candle's kernels only; `Linear::new` must say so.
            let w = Tensor::from_vec(data(16 * 64, 1), (16, 64), &dev).unwrap();
            let w = QTensor::quantize(&w, GgmlDType::Q4_0).unwrap();
            assert!(matches!(Linear::new(w, None).unwrap(), Linear::Candle(..)));
            return;
        }
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q8_0] {
            for (m, n, k) in [
                (1, 16, 32),
                (7, 48, 96),
                (13, 32, 896),
                (3, 64, 256),
                (6, 16, 64),
            ] {
                let what = format!("{dtype:?} m={m} n={n} k={k}");
                let w1 = Tensor::from_vec(data(n * k, 7 + m as u64), (n, k), &dev).unwrap();
                let w2 = Tensor::from_vec(data(16 * k, 11), (16, k), &dev).unwrap();
                let x = Tensor::from_vec(data(m * k, 3), (1, m, k), &dev).unwrap();
                let bias = Tensor::from_vec(data(n, 5), n, &dev).unwrap();
                let bias_v = flat(&bias);
                let q1 = QTensor::quantize(&w1, dtype).unwrap();
                let q2 = QTensor::quantize(&w2, GgmlDType::Q8_0).unwrap();
                let exact1: Vec<f32> = exact(&q1, &x)
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v + bias_v[i % n])
                    .collect();
                let exact2 = exact(&q2, &x);

                let lin = Linear::new(QTensor::quantize(&w1, dtype).unwrap(), Some(bias.clone()))
                    .unwrap();
                assert!(matches!(lin, Linear::Packed(_)), "{what}: not packed");
                let got1 = flat(&lin.forward(&x).unwrap());
                assert_close(&format!("{what} alone"), &exact1, &got1, 1e-2);
                let candle = QMatMul::from_qtensor(QTensor::quantize(&w1, dtype).unwrap())
                    .unwrap()
                    .forward(&x)
                    .unwrap()
                    .broadcast_add(&bias)
                    .unwrap();
                assert_close(&format!("{what} vs candle"), &flat(&candle), &got1, 2e-2);

                let (d1, d2) = (q1.data().unwrap(), q2.data().unwrap());
                let raw = |dtype, n, bytes| Raw { dtype, n, k, bytes };
                let parts = [raw(dtype, n, &d1[..]), raw(GgmlDType::Q8_0, 16, &d2[..])];
                assert!(Linear::can_pack(&parts));
                let both = Linear::packed(&parts, None).unwrap();
                let got = both.forward(&x).unwrap();
                assert_eq!(got.dims(), &[1, m, n + 16]);
                let got_a = flat(&got.narrow(2, 0, n).unwrap().broadcast_add(&bias).unwrap());
                let got_b = flat(&got.narrow(2, n, 16).unwrap());
                assert_close(&format!("{what} stacked, first"), &exact1, &got_a, 1e-2);
                assert_close(
                    &format!("{what} stacked, second (Q8_0)"),
                    &exact2,
                    &got_b,
                    1e-2,
                );
            }
        }
    }
}
