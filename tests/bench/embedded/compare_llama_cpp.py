#!/usr/bin/env python3
"""The embedded backend against llama.cpp's CPU engine, on the same GGUF, in one run.

    compare_llama_cpp.py --bench-embedded BIN [--gguf FILE ...] [--prompt-tokens 256] [--gen 64]

For each GGUF (default: the requantized files CodeForge's embedded backend runs, i.e. the shipped
Qwen2.5-Coder-0.5B-Instruct requantized once, to Q8_0 by default and to Q4_0 with
`CODEFORGE_EMBEDDED_QUANT=q4_0`; CodeForge requantizes other quant types on load, so only
Q4_0/Q8_0/F16 files compare like with like), runs
  - CodeForge: `BIN --gguf FILE` (server/model/examples/bench_embedded.rs), which loads the model
    with candle, prefills a ~256-token prompt and decodes 64 tokens greedily;
  - llama.cpp through llama-cpp-python (built locally from its PyPI sdist by
    `.ci/bench-embedded`): the same prompt text, prefill timed around `eval`, then 64 greedy
    tokens one `eval` each;
both with every core of the machine, one after the other. Prints one JSON line per engine and
file, then a markdown table with the ratio (llama.cpp / CodeForge; below 1.5 meets the target).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

UNIT = 'def add(a, b):\n    """Return a plus b."""\n    return a + b\n\n'


def bench_llama(gguf: str, prompt_tokens: int, gen: int) -> dict:
    import llama_cpp  # noqa: F401  (import cost is not load time)
    from llama_cpp import Llama

    threads = os.cpu_count() or 1
    t = time.perf_counter()
    llm = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False)
    load_s = time.perf_counter() - t
    text = ""
    while len(llm.tokenize(text.encode(), add_bos=False)) < prompt_tokens:
        text += UNIT
    toks = llm.tokenize(text.encode(), add_bos=False)
    # Warm-up (page in the weights), as candle's load does by reading them.
    llm.reset()
    llm.eval(toks[:8])
    llm.reset()
    t = time.perf_counter()
    llm.eval(toks)
    prefill_s = time.perf_counter() - t
    t = time.perf_counter()
    n = 0
    for _ in range(gen):
        logits = llm.scores[llm.n_tokens - 1]
        nxt = int(max(range(len(logits)), key=logits.__getitem__)) if not hasattr(logits, "argmax") else int(logits.argmax())
        llm.eval([nxt])
        n += 1
    decode_s = time.perf_counter() - t
    return {
        "engine": "llama.cpp (llama-cpp-python %s)" % getattr(llama_cpp, "__version__", "?"),
        "gguf": gguf, "threads": threads, "load_s": round(load_s, 3),
        "prompt_tokens": len(toks), "generated_tokens": n,
        "prefill_tok_s": round(len(toks) / prefill_s, 1),
        "decode_tok_s": round(n / decode_s, 1),
    }


def bench_codeforge(binary: str, gguf: str, prompt_tokens: int, gen: int) -> dict:
    out = subprocess.run([binary, "--gguf", gguf, "--prompt-tokens", str(prompt_tokens), "--gen", str(gen)],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    j["engine"] = "CodeForge embedded (candle)"
    return j


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-embedded", required=True, help="the bench_embedded example binary")
    ap.add_argument("--gguf", nargs="*", default=None)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--gen", type=int, default=64)
    a = ap.parse_args(argv)
    cache = os.environ.get("CODEFORGE_CACHE_DIR") or os.path.expanduser("~/.cache/codeforge")
    d = os.path.join(cache, "models", "qwen2.5-coder-0.5b-instruct")
    ggufs = a.gguf
    if not ggufs:
        ggufs = [os.path.join(d, f) for f in sorted(os.listdir(d))
                 if f.endswith(".q8_0.gguf") or f.endswith(".q4_0.gguf")]
        if not ggufs:
            sys.exit(f"no requantized file in {d}: run `codeforge model prepare` first")
    rows = []
    for g in ggufs:
        cf = bench_codeforge(a.bench_embedded, g, a.prompt_tokens, a.gen)
        print(json.dumps(cf), flush=True)
        ll = bench_llama(g, a.prompt_tokens, a.gen)
        print(json.dumps(ll), flush=True)
        rows.append((g, cf, ll))
    print()
    print("| GGUF | engine | load s | prefill tok/s | decode tok/s |")
    print("|---|---|---|---|---|")
    for g, cf, ll in rows:
        name = os.path.basename(g)
        for r in (cf, ll):
            print(f"| {name} | {r['engine']} | {r['load_s']} | {r['prefill_tok_s']} | {r['decode_tok_s']} |")
        print(f"| {name} | llama.cpp ÷ CodeForge | | {ll['prefill_tok_s'] / cf['prefill_tok_s']:.2f}× | "
              f"{ll['decode_tok_s'] / cf['decode_tok_s']:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
