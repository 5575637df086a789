//! Embedding throughput benchmark (prints figures): all-MiniLM-L6-v2 (candle's f32 model, and the
//! int8 encoder on the VNNI kernels) on a fixed sample
//! of a real corpus's symbols, each lever measured on its own against the old way (one batch of
//! 32 padded to its longest text, the exact `erf` GELU), with the cosine of every vector against
//! that reference.
//!
//! Usage: bench_embed --path DIR [--limit N] [--model DIR]
//! (model default: <cache>/models/all-MiniLM-L6-v2; `codeforge model pull embeddings`).

use std::path::PathBuf;
use std::time::Instant;

use codeforge_index::embed::embedding_text;
use codeforge_index::walk::{self, WalkOptions};
use codeforge_index::{MiniLm, MiniLmOptions};
use codeforge_syntax::{Language, extract};

fn main() -> anyhow::Result<()> {
    let mut path = None;
    let mut limit = 2000usize;
    let mut model = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--path" => path = args.next().map(PathBuf::from),
            "--limit" => limit = args.next().and_then(|v| v.parse().ok()).unwrap_or(limit),
            "--model" => model = args.next().map(PathBuf::from),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let root = path.ok_or_else(|| anyhow::anyhow!("--path DIR"))?;
    let model = model.unwrap_or_else(|| {
        codeforge_config::default_embedding_model_dir(&codeforge_config::cache_dir(
            None,
            std::env::var_os(codeforge_config::CACHE_DIR_ENV),
        ))
    });

    // Every symbol's text as the indexer builds it, then every k-th for a fixed sample.
    let w = walk::walk(
        &root,
        &WalkOptions {
            max_file_size: 1 << 20,
            exclude: &[],
            languages: &Language::ALL,
        },
    )?;
    let mut texts = Vec::new();
    for c in &w.candidates {
        let Ok(data) = std::fs::read(&c.abs_path) else {
            continue;
        };
        let Ok(text) = walk::classify_content(&data) else {
            continue;
        };
        for s in extract(c.language, &c.rel_path, text).symbols {
            texts.push(embedding_text(
                &s.kind.to_string(),
                &s.qualified_name,
                &s.signature,
                s.docstring.as_deref(),
            ));
        }
    }
    let total = texts.len();
    let step = (total / limit.max(1)).max(1);
    let mut sample: Vec<String> = texts.into_iter().step_by(step).take(limit).collect();
    // The indexer's order: short texts first (by bytes, as it sorts its rows).
    sample.sort_by_key(|t| t.len());

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let old = MiniLmOptions {
        max_tokens: 128,
        bucket: None,
        gelu_tanh: false,
        int8: false,
        batch_tokens: 1024,
    };
    // Today's f32 path (candle's BertModel, batches by token count), the base for its levers.
    let f32_default = MiniLmOptions {
        int8: false,
        ..MiniLmOptions::default()
    };
    let int8 = |batch_tokens| MiniLmOptions {
        batch_tokens,
        ..MiniLmOptions::default()
    };
    let reference = MiniLm::load_with(&model, old)?;
    let tokens = reference.token_counts(&sample)?;
    let mean_tokens = tokens.iter().sum::<usize>() as f64 / tokens.len().max(1) as f64;
    eprintln!(
        "bench_embed: {} of {total} symbols from {}, {mean_tokens:.1} tokens on average, {threads} threads",
        sample.len(),
        root.display()
    );

    // One variant: (symbols/s, vectors), after a warm-up call.
    let run = |options: MiniLmOptions, call: usize| -> anyhow::Result<(f64, Vec<Vec<f32>>)> {
        let m = MiniLm::load_with(&model, options)?;
        m.embed_blocking(&sample[..call.min(sample.len())])?;
        let started = Instant::now();
        let mut out = Vec::with_capacity(sample.len());
        for chunk in sample.chunks(call) {
            out.extend(m.embed_blocking(chunk)?);
        }
        Ok((sample.len() as f64 / started.elapsed().as_secs_f64(), out))
    };
    let (old_rate, base) = run(old, 32)?;
    let bucketed = |bucket| MiniLmOptions {
        bucket: Some(bucket),
        ..old
    };
    let variants = [
        ("buckets of 16 by token count", bucketed(16)),
        ("buckets of 8 by token count", bucketed(8)),
        ("buckets of 32 by token count", bucketed(32)),
        (
            "tanh GELU",
            MiniLmOptions {
                gelu_tanh: true,
                ..old
            },
        ),
        (
            "buckets of 16 + tanh GELU",
            MiniLmOptions {
                gelu_tanh: true,
                ..f32_default
            },
        ),
        (
            "buckets of 16, texts cut at 64 tokens",
            MiniLmOptions {
                max_tokens: 64,
                ..f32_default
            },
        ),
        (
            "int8 on the VNNI kernels, unpadded passes of 512 tokens (the default)",
            int8(512),
        ),
        ("int8, passes of 1024 tokens", int8(1024)),
        ("int8, passes of 2048 tokens", int8(2048)),
    ];
    println!("| variant | symbols/s | × old | cosine to old: min / mean |");
    println!("|---|---|---|---|");
    println!(
        "| old: batches of 32 padded to the longest, exact GELU | {old_rate:.0} | 1.00 | 1.0000 / 1.0000 |"
    );
    for (name, options) in variants {
        // Bucketing needs a call larger than a batch: the indexer passes a whole round per call.
        let call = if options.bucket.is_some() { 128 } else { 32 };
        let (rate, got) = run(options, call)?;
        let cos: Vec<f32> = got
            .iter()
            .zip(&base)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
            .collect();
        let min = cos.iter().cloned().fold(f32::MAX, f32::min);
        let mean = cos.iter().sum::<f32>() / cos.len().max(1) as f32;
        println!(
            "| {name} | {rate:.0} | {:.2} | {min:.4} / {mean:.4} |",
            rate / old_rate
        );
    }
    Ok(())
}
