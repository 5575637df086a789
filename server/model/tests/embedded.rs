//! The real embedded Qwen model (installed by `codeforge model pull`): a prompt is prefilled once for all its
//! samples, and the next request reuses the cached keys and values of the prefix it shares; a
//! retry steered away from an answer's start gives another answer that holds code.

use codeforge_model::{Backend, EmbeddedConfig, EmbeddedQwen, Prompt, Request};

fn request(prompt: &str, n: u32, max_tokens: u32) -> Request {
    let mut r = Request::new(Prompt::Text(prompt.to_string()));
    r.n = n;
    r.max_tokens = max_tokens;
    r.temperature = 0.0;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefilled_prompt_is_shared_by_samples_and_reused_by_the_next_request() {
    let gguf = codeforge_testkit::real_qwen_gguf();
    let dir = gguf.parent().unwrap().to_path_buf();
    let model = tokio::task::spawn_blocking(move || {
        EmbeddedQwen::load(&EmbeddedConfig {
            gguf,
            cache_dir: dir,
            max_context: 2048,
        })
    })
    .await
    .unwrap()
    .unwrap();
    let prompt = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n";

    let first = model.generate(request(prompt, 1, 24)).await.unwrap();
    assert_eq!(
        first.usage.cached_prompt_tokens, 0,
        "a fresh model has nothing cached"
    );
    assert!(!first.samples[0].text.trim().is_empty());

    // The same prompt again, two greedy samples: one prompt token is recomputed, the rest is
    // reused, and both samples equal the answer computed from scratch.
    let again = model.generate(request(prompt, 2, 24)).await.unwrap();
    assert_eq!(
        again.usage.cached_prompt_tokens,
        first.usage.prompt_tokens - 1
    );
    assert_eq!(again.samples.len(), 2);
    for s in &again.samples {
        assert_eq!(s.text, first.samples[0].text, "reuse changes nothing");
    }

    // A longer prompt with the same beginning (the user typed on) prefills only the new part.
    let longer = format!("{prompt}    if n < 2:\n        return n\n");
    let g = model.generate(request(&longer, 1, 8)).await.unwrap();
    assert!(
        g.usage.cached_prompt_tokens + 3 >= first.usage.prompt_tokens
            && g.usage.cached_prompt_tokens < g.usage.prompt_tokens,
        "{:?}",
        g.usage
    );

    // An unrelated prompt shares nothing.
    let other = model
        .generate(request(
            "class Stack:\n    \"\"\"A LIFO stack.\"\"\"\n",
            1,
            4,
        ))
        .await
        .unwrap();
    assert_eq!(other.usage.cached_prompt_tokens, 0);

    // The longer prompt from scratch (nothing shared with the last one) gives what the prefix
    // reuse gave: the cache cut and appended to holds the same keys and values.
    let fresh = model.generate(request(&longer, 1, 8)).await.unwrap();
    assert_eq!(fresh.usage.cached_prompt_tokens, 0);
    assert_eq!(fresh.samples[0].text, g.samples[0].text);

    // Steered away from its own first line of code (and from ending at once), the model still
    // answers with code, starting otherwise; with nothing to avoid, it only may not end at once.
    let first_code = |t: &str| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(String::from)
    };
    let greedy = first_code(&first.samples[0].text).unwrap();
    let mut r = request(prompt, 1, 24);
    r.avoid_starts = Some(vec![greedy.clone()]);
    assert!(model.steers());
    let steered = model.generate(r).await.unwrap();
    let other_start = first_code(&steered.samples[0].text).expect("an answer with code");
    assert!(
        codeforge_model::may_start(&other_start, std::slice::from_ref(&greedy)),
        "{greedy:?} then {other_start:?}"
    );
    let mut r = request(prompt, 1, 24);
    r.avoid_starts = Some(Vec::new());
    let same = model.generate(r).await.unwrap();
    assert_eq!(
        same.samples[0].text, first.samples[0].text,
        "nothing else changes"
    );
}
