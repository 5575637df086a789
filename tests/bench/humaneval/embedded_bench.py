#!/usr/bin/env python3
"""The embedded Qwen model on HumanEval: pass@1 of what the user is shown, without and with
verification.

    embedded_bench.py --codeforge BIN [--problems 41] [--check-plain 5] [--rounds 1] [--n 1]
                      [--work DIR] [--out results.json] [--timeout 900]

One workspace per problem (make_workspaces.py: the stub and the visible tests), evenly spread
over the 164 problems (every 4th by default: HumanEval/0, 4, 8, …). The real
`BIN generate --json --explain --force solution.py:LINE -w WORKSPACE` runs with no generation
endpoint configured, i.e. the embedded Qwen2.5-Coder-0.5B-Instruct on the CPU, with the
workspace trusted (`codeforge generate --trust`), `plan = "off"` and `rounds` refinement rounds.
Scored against the hidden tests (score.py):

  without verification  the model's first answer (greedy, n = 1): candidate 0 of the run, which is
                        exactly what `--no-verify` shows (same prompt, temperature 0; checked by
                        running `--no-verify` on the first --check-plain problems and comparing)
  with verification     what CodeForge shows: the first answer if it passes the visible tests,
                        else a refinement that does, else nothing

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
import score  # noqa: E402

def toml(rounds: int, verify: bool, n: int = 1) -> str:
    s = "[embeddings]\nbackend = \"none\"\n\n[generation]\nplan = \"off\"\n"
    if n > 1:
        s += f"n = {n}\n"  # sampled at the config's default temperature for n > 1 (0.6)
    if verify:
        s += f"\n[verify]\nrounds = {rounds}\n"
    return s


def summarize(rows: list[dict]) -> dict:
    P = len(rows)
    verified = [r for r in rows if r["verified"]]
    times = [r["wall_s"] for r in rows]
    return {
        "problems": P,
        "plain_pass1": sum(r["plain_pass"] for r in rows) / P,
        "shown": sum(r["shown"] for r in rows) / P,
        "shown_pass1": sum(r["shown"] and r["hidden_pass"] for r in rows) / P,
        "verified_share": len(verified) / P,
        "verified_precision": (sum(r["hidden_pass"] for r in verified) / len(verified)) if verified else None,
        "shown_unverified_pass": sum(r["shown"] and r["hidden_pass"] and not r["verified"] for r in rows),
        # Suggestions shown that fail the hidden tests: what a user would have to catch.
        "plain_wrong_shown": sum(bool(r["plain_code"]) and not r["plain_pass"] for r in rows) / P,
        "verified_wrong_shown": sum(r["shown"] and not r["hidden_pass"] for r in rows) / P,
        "errors": sum(r["rc"] not in (0, 1) for r in rows),
        "mean_s": statistics.mean(times) if times else None,
        "p95_s": run_bench.p95(times),
        "mean_generated_tokens": statistics.mean(r["completion_tokens"] for r in rows),
        "mean_prompt_tokens": statistics.mean(r["prompt_tokens"] for r in rows),
    }


def table(s: dict) -> str:
    return "\n".join([
        "| problems | pass@1 without verification | wrong suggestions shown without | pass@1 with verification | wrong suggestions shown with | marked verified | verified precision | mean s / p95 s per problem |",
        "|---|---|---|---|---|---|---|---|",
        f"| {s['problems']} | {run_bench.pct(s['plain_pass1'])} | {run_bench.pct(s['plain_wrong_shown'])} | "
        f"**{run_bench.pct(s['shown_pass1'])}** | {run_bench.pct(s['verified_wrong_shown'])} | "
        f"{run_bench.pct(s['verified_share'])} | {run_bench.pct(s['verified_precision'])} | "
        f"{s['mean_s']:.0f} / {s['p95_s']:.0f} |",
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="embedded Qwen on HumanEval, without and with verification")
    ap.add_argument("--codeforge", required=True)
    ap.add_argument("--problems", type=int, default=41, help="how many, evenly spread over the 164")
    ap.add_argument("--rounds", type=int, default=1, help="refinement rounds (verify.rounds)")
    ap.add_argument("--n", type=int, default=1,
                    help="candidates per problem (generation.n; above 1 they are sampled at temperature 0.6, "
                         "and 'without verification' is then the first sample, not the greedy answer)")
    ap.add_argument("--check-plain", type=int, default=5,
                    help="run --no-verify on this many problems and check it shows candidate 0")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default="humaneval_embedded.json")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--table-from", metavar="RESULTS_JSON", help="print the table of a results file and exit")
    ap.add_argument("--only", nargs="+", metavar="TASK_ID", help="run just these problems (e.g. HumanEval/12)")
    a = ap.parse_args(argv)
    if a.table_from:
        with open(a.table_from) as f:
            r = json.load(f)
        print(table(summarize(r["rows"])))
        checks = r.get("plain_checks", [])
        print(f"--no-verify identical to candidate 0 on {sum(c['same'] for c in checks)}/{len(checks)} checked problems")
        return 0

    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="humaneval-embedded-"))
    index = make_workspaces.make(os.path.join(work, "workspaces"))
    step = max(1, len(index) // a.problems)
    index = index[::step][: a.problems]
    if a.only:
        index = [w for w in make_workspaces.make(os.path.join(work, "workspaces")) if w["task_id"] in a.only]
    # The model files are shared with the user's cache; indexes and feedback go to a scratch one.
    models = os.path.join(os.environ.get("CODEFORGE_CACHE_DIR") or os.path.expanduser("~/.cache/codeforge"), "models")
    cache_dir = tempfile.mkdtemp(prefix="codeforge-embedded-cache-")
    os.symlink(models, os.path.join(cache_dir, "models"))
    env = dict(os.environ)
    for k in ("CODEFORGE_API_BASE", "CODEFORGE_MODEL", "CODEFORGE_API_KEY"):
        env.pop(k, None)
    env["CODEFORGE_CACHE_DIR"] = cache_dir
    binary = os.path.abspath(a.codeforge)
    rows, checks = [], []
    t0 = time.time()
    out = {"problems": [w["task_id"] for w in index], "rounds": a.rounds, "n": a.n}
    for i, ws in enumerate(index, 1):
        with open(os.path.join(ws["dir"], "codeforge.toml"), "w") as f:
            f.write(toml(a.rounds, True, a.n))
        r = run_bench.run_one(binary, ws, env, a.timeout, extra=["--explain"])
        j = r.pop("json", {}) or {}
        cands = j.get("candidates") or []
        first = cands[0] if cands else {}
        r["plain_code"] = first.get("function") if not first.get("rejected") else None
        r["plain_pass"] = bool(r["plain_code"]) and score.score_code_reason(ws["task_id"], r["plain_code"])[0]
        usage = j.get("usage") or {}
        r["prompt_tokens"] = usage.get("prompt_tokens", 0)
        r["completion_tokens"] = usage.get("completion_tokens", 0)
        r["rounds"] = (j.get("verification") or {}).get("rounds")
        rows.append(r)
        print(f"  {i}/{len(index)} {ws['task_id']} plain={r['plain_pass']} shown={r['shown']} pass={r['hidden_pass']} "
              f"verified={r['verified']} rounds={r['rounds']} {r['wall_s']:.0f} s (total {time.time() - t0:.0f} s)",
              file=sys.stderr, flush=True)
        out["summary"], out["rows"] = summarize(rows), rows
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    # The claim that candidate 0 is what --no-verify shows, checked on the first problems.
    for ws, r in list(zip(index, rows))[: a.check_plain]:
        with open(os.path.join(ws["dir"], "codeforge.toml"), "w") as f:
            f.write(toml(a.rounds, False))
        p = run_bench.run_one(binary, ws, env, a.timeout, extra=["--no-verify"])
        checks.append({"task_id": ws["task_id"], "same": p["code"] == r["plain_code"]})
        print(f"  check {ws['task_id']}: --no-verify shows candidate 0: {checks[-1]['same']}", file=sys.stderr, flush=True)
    out["plain_checks"] = checks
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    shutil.rmtree(cache_dir, ignore_errors=True)
    print(table(out["summary"]))
    print(f"--no-verify identical to candidate 0 on {sum(c['same'] for c in checks)}/{len(checks)} checked problems")
    print(f"results: {os.path.abspath(a.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
