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
    // One request on the fresh model: prefill is the time to the first token, decode the rest.
    let mut req = Request::new(Prompt::Text(text.clone()));
    req.max_tokens = gen_tokens;
    let g = rt.block_on(model.generate(req)).unwrap();
    let u = &g.usage;
    let prefill_s = u.first_token_ms as f64 / 1000.0;
    let decode_s = ((u.total_ms - u.first_token_ms) as f64 / 1000.0).max(1e-9);
    // The same prompt again, 4 samples: the prompt's keys and values are reused.
    let mut req = Request::new(Prompt::Text(text));
    req.max_tokens = gen_tokens;
    req.n = 4;
    req.temperature = 0.6;
    let again = rt.block_on(model.generate(req)).unwrap();
    println!(
        "{}",
        serde_json::json!({
            "gguf": gguf, "requantized": model.report.requantized,
            "load_s": (load_s * 1000.0).round() / 1000.0,
            "prompt_tokens": n_prompt, "generated_tokens": u.completion_tokens,
            "prefill_tok_s": ((n_prompt as f64 / prefill_s) * 10.0).round() / 10.0,
            "decode_tok_s": (((u.completion_tokens.saturating_sub(1)) as f64 / decode_s) * 10.0).round() / 10.0,
            "again_n4_first_token_ms": again.usage.first_token_ms,
            "again_n4_cached_prompt_tokens": again.usage.cached_prompt_tokens,
            "again_n4_total_s": (again.usage.total_ms as f64 / 100.0).round() / 10.0,
            "again_n4_generated_tokens": again.usage.completion_tokens,
        })
    );
}

fn codeforge_config_cache() -> std::path::PathBuf {
    match std::env::var_os("CODEFORGE_CACHE_DIR") {
        Some(v) if !v.is_empty() => v.into(),
        _ => std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/codeforge"),
    }
}
