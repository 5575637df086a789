#!/usr/bin/env python3
"""The embedded Qwen model on HumanEval: pass@1 of what the user is shown, without and with
verification.

    embedded_bench.py --codeforge BIN [--problems 41] [--arms plain verified sampled]
                      [--work DIR] [--out results.json] [--timeout 900]

One workspace per problem (make_workspaces.py: the stub and the visible tests), evenly spread
over the 164 problems (every 4th by default: HumanEval/0, 4, 8, …). For each arm the real
`BIN generate --json --force solution.py:LINE -w WORKSPACE` runs with no generation endpoint
configured, i.e. the embedded Qwen2.5-Coder-0.5B-Instruct on the CPU, and the shown function is
scored against the hidden tests (score.py):

  plain     `--no-verify`: the model's greedy answer, as a tool without verification shows it
  verified  the defaults with the workspace trusted: the greedy answer is tested, a failing one is
            refined with the failures (`rounds` = 2), nothing is shown when nothing passes
  sampled   as `verified` with n = 4 candidates (temperature 0.6) and 1 refinement round

Prints a markdown table and writes every per-problem result to --out. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_workspaces  # noqa: E402
import run_bench  # noqa: E402

ARMS = {
    "plain": ("[embeddings]\nbackend = \"none\"\n", ["--no-verify"]),
    "verified": ("[embeddings]\nbackend = \"none\"\n\n[verify]\ntrust = \"always\"\n", []),
    "sampled": (
        "[embeddings]\nbackend = \"none\"\n\n[generation]\nn = 4\n\n"
        "[verify]\ntrust = \"always\"\nrounds = 1\n",
        [],
    ),
}


def summarize(rows: list[dict]) -> dict:
    P = len(rows)
    verified = [r for r in rows if r["verified"]]
    times = [r["wall_s"] for r in rows]
    return {
        "problems": P,
        "shown": sum(r["shown"] for r in rows) / P,
        "shown_pass1": sum(r["shown"] and r["hidden_pass"] for r in rows) / P,
        "verified_share": len(verified) / P,
        "verified_precision": (sum(r["hidden_pass"] for r in verified) / len(verified)) if verified else None,
        "errors": sum(r["rc"] not in (0, 1) for r in rows),
        "mean_s": statistics.mean(times) if times else None,
        "p95_s": run_bench.p95(times),
    }


def table(res: dict) -> str:
    lines = ["| arm | problems | shown | shown pass@1 | marked verified | verified precision | mean s | p95 s |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, r in res.items():
        s = r["summary"]
        lines.append(
            f"| {arm} | {s['problems']} | {run_bench.pct(s['shown'])} | **{run_bench.pct(s['shown_pass1'])}** | "
            f"{run_bench.pct(s['verified_share'])} | {run_bench.pct(s['verified_precision'])} | "
            f"{s['mean_s']:.1f} | {s['p95_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="embedded Qwen on HumanEval, without and with verification")
    ap.add_argument("--codeforge", required=True)
    ap.add_argument("--problems", type=int, default=41, help="how many, evenly spread over the 164")
    ap.add_argument("--arms", nargs="+", default=["plain", "verified"], choices=list(ARMS))
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default="humaneval_embedded.json")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args(argv)

    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="humaneval-embedded-"))
    index = make_workspaces.make(os.path.join(work, "workspaces"))
    step = max(1, len(index) // a.problems)
    index = index[::step][: a.problems]
    # The model files are shared with the user's cache; indexes and feedback go to a scratch one.
    models = os.path.join(os.environ.get("CODEFORGE_CACHE_DIR") or os.path.expanduser("~/.cache/codeforge"), "models")
    results: dict = {}
    for arm in a.arms:
        toml, flags = ARMS[arm]
        cache_dir = tempfile.mkdtemp(prefix="codeforge-embedded-cache-")
        os.symlink(models, os.path.join(cache_dir, "models"))
        env = dict(os.environ)
        for k in ("CODEFORGE_API_BASE", "CODEFORGE_MODEL", "CODEFORGE_API_KEY"):
            env.pop(k, None)
        env["CODEFORGE_CACHE_DIR"] = cache_dir
        rows = []
        t0 = time.time()
        for i, ws in enumerate(index, 1):
            with open(os.path.join(ws["dir"], "codeforge.toml"), "w") as f:
                f.write(toml)
            r = run_bench.run_one(os.path.abspath(a.codeforge), ws, env, a.timeout, extra=flags)
            rows.append(r)
            print(f"  {arm}: {i}/{len(index)} {ws['task_id']} shown={r['shown']} pass={r['hidden_pass']} "
                  f"verified={r['verified']} {r['wall_s']:.0f} s (total {time.time() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
            results[arm] = {"summary": summarize(rows), "rows": rows}
            with open(a.out, "w") as f:
                json.dump({"problems": [w["task_id"] for w in index], "arms": results}, f, indent=1)
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(table(results))
    print(f"results: {os.path.abspath(a.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
