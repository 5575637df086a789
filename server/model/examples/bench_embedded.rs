//! Embedded backend figures: load time, prefill and decode tokens/s on the installed Qwen GGUF.
//! Prints one JSON line. Usage: `bench_embedded [--gguf PATH] [--prompt-tokens N] [--gen N]`.

use std::time::Instant;

use codeforge_model::{Backend, EmbeddedConfig, EmbeddedQwen, Prompt, Request};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut gguf = None;
    let mut prompt_tokens = 256usize;
    let mut gen_tokens = 64u32;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--gguf" => gguf = args.next().map(std::path::PathBuf::from),
            "--prompt-tokens" => prompt_tokens = args.next().unwrap().parse().unwrap(),
            "--gen" => gen_tokens = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let cache = codeforge_config_cache();
    let gguf = gguf.unwrap_or_else(|| {
        cache.join("models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf")
    });
    let dir = gguf.parent().unwrap().to_path_buf();
    let t0 = Instant::now();
    let model = EmbeddedQwen::load(&EmbeddedConfig {
        gguf: gguf.clone(),
        cache_dir: dir,
        max_context: 4096,
    })
    .unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    // A prompt of about `prompt_tokens` tokens of ordinary Python.
    let unit = "def add(a, b):\n    \"\"\"Return a plus b.\"\"\"\n    return a + b\n\n";
    let mut text = String::new();
    while model.count_tokens(&text).unwrap() < prompt_tokens {
        text.push_str(unit);
    }
    let n_prompt = model.count_tokens(&text).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Prefill alone: one token generated.
    let mut req = Request::new(Prompt::Text(text.clone()));
    req.max_tokens = 1;
    let t = Instant::now();
    let _ = rt.block_on(model.generate(req));
    let prefill_s = t.elapsed().as_secs_f64();
    let mut req = Request::new(Prompt::Text(text));
    req.max_tokens = gen_tokens;
    let t = Instant::now();
    let g = rt.block_on(model.generate(req)).unwrap();
    let total_s = t.elapsed().as_secs_f64();
    let n_gen = g.usage.completion_tokens as f64;
    let decode_s = (total_s - prefill_s).max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "gguf": gguf, "requantized": model.report.requantized,
            "load_s": (load_s * 1000.0).round() / 1000.0,
            "prompt_tokens": n_prompt, "generated_tokens": n_gen,
            "prefill_tok_s": ((n_prompt as f64 / prefill_s) * 10.0).round() / 10.0,
            "decode_tok_s": ((n_gen / decode_s) * 10.0).round() / 10.0,
        })
    );
}

fn codeforge_config_cache() -> std::path::PathBuf {
    match std::env::var_os("CODEFORGE_CACHE_DIR") {
        Some(v) if !v.is_empty() => v.into(),
        _ => std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/codeforge"),
    }
}
