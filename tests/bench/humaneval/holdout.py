#!/usr/bin/env python3
"""Ranking rules judged on data they were not tuned on.

    holdout.py [--work DIR] [--n 5 10] [--probe-max-inputs 40]

Reads the per-sample cache `run_bench.py --baseline-only --n 10 --work DIR` writes (visible and
hidden verdicts and the probe's behaviour fingerprint of each of the first 10 recorded samples of
every problem) and splits the 164 problems in two halves by task number (even: tune, odd:
held-out). For each rule that picks among the candidates passing the visible tests it prints
shown pass@1 on both halves; the rule with the best pass@1 on the tune half (ties: the simpler,
earlier in the list) is the one kept, and its held-out figure beside plain gating's is what
counts. Likewise for the `disputed` verdict: verified precision with and without it.

Rules (all show nothing when no candidate passes):
  gate              the first candidate that passes (plain gating)
  cluster/earliest  the biggest group of candidates that behave alike on the probe's inputs,
                    its earliest member
  cluster/shortest  CodeForge's order: biggest group, then the shortest body, then the later one
  shortest          the shortest passing body (no probe)
The recorded samples carry no log-probabilities, so no logprob rule can be judged here.
Deterministic: the same cache gives the same table. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import score  # noqa: E402


def fp(s: dict, k: int) -> str:
    return s.get("fp", f"!nofp{k}")


def pick_gate(s, n, lens):
    return next((k for k in range(n) if s[k]["visible"]), None)


def clusters(s, n):
    sizes: dict[str, int] = {}
    for k in range(n):
        if s[k]["visible"]:
            sizes[fp(s[k], k)] = sizes.get(fp(s[k], k), 0) + 1
    return sizes


def pick_cluster_earliest(s, n, lens):
    sizes = clusters(s, n)
    vis = [k for k in range(n) if s[k]["visible"]]
    return max(vis, key=lambda k: (sizes[fp(s[k], k)], -k)) if vis else None


def pick_cluster_shortest(s, n, lens):
    sizes = clusters(s, n)
    vis = [k for k in range(n) if s[k]["visible"]]
    return max(vis, key=lambda k: (sizes[fp(s[k], k)], -lens[k], k)) if vis else None


def pick_shortest(s, n, lens):
    vis = [k for k in range(n) if s[k]["visible"]]
    return min(vis, key=lambda k: (lens[k], k)) if vis else None


RULES = [("gate", pick_gate), ("cluster/earliest", pick_cluster_earliest),
         ("cluster/shortest", pick_cluster_shortest), ("shortest", pick_shortest)]


def disputed(s, n, k) -> bool:
    """CodeForge's rule: more than one candidate passes and none behaves like the shown one."""
    sizes = clusters(s, n)
    passing = sum(sizes.values())
    return passing > 1 and sizes[fp(s[k], k)] < 2


def evaluate(cache, tasks, n, lens_of):
    rows = {}
    for name, rule in RULES:
        ok = shown = 0
        v_ok = v_n = 0
        for t in tasks:
            s = cache[t][:n]
            k = rule(s, n, lens_of(t, n))
            if k is None:
                continue
            shown += 1
            ok += s[k]["hidden"]
            if not disputed(s, n, k):
                v_n += 1
                v_ok += s[k]["hidden"]
        rows[name] = {"pass1": ok / len(tasks), "precision": ok / shown if shown else None,
                      "precision_with_disputed": v_ok / v_n if v_n else None}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/codeforge/humaneval-work"))
    ap.add_argument("--n", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--probe-max-inputs", type=int, default=40)
    a = ap.parse_args()
    path = os.path.join(a.work, f"baseline_cache_m{a.probe_max_inputs}.json")
    if not os.path.exists(path):
        print(f"no cache at {path}: run run_bench.py --baseline-only --n 10 --work {a.work} first",
              file=sys.stderr)
        return 2
    cache = json.load(open(path))
    samples = score.load_samples()
    lens: dict[str, list[int]] = {}

    def lens_of(t, n):
        if t not in lens:
            lens[t] = [len(score.truncate_sample(b).strip()) for b in samples[t]["samples"][:10]]
        return lens[t]

    tasks = sorted(cache, key=lambda t: int(t.split("/")[-1]))
    tune = [t for t in tasks if int(t.split("/")[-1]) % 2 == 0]
    held = [t for t in tasks if int(t.split("/")[-1]) % 2 == 1]
    print(f"{len(tune)} tune problems (even), {len(held)} held-out (odd)\n")
    print("| n | rule | tune pass@1 | held-out pass@1 | held-out precision | held-out precision, disputed not verified |")
    print("|---|---|---|---|---|---|")
    out = {}
    for n in a.n:
        rt, rh = evaluate(cache, tune, n, lens_of), evaluate(cache, held, n, lens_of)
        best = max(RULES, key=lambda r: (rt[r[0]]["pass1"], -RULES.index(r)))[0]
        for name, _ in RULES:
            mark = " **(kept)**" if name == best else ""
            pr = rh[name]["precision"]
            pd = rh[name]["precision_with_disputed"]
            print(f"| {n} | {name}{mark} | {100 * rt[name]['pass1']:.1f}% | {100 * rh[name]['pass1']:.1f}% | "
                  f"{'–' if pr is None else f'{100 * pr:.1f}%'} | {'–' if pd is None else f'{100 * pd:.1f}%'} |")
        out[n] = {"tune": rt, "held_out": rh, "kept": best}
        gain = rh[best]["pass1"] - rh["gate"]["pass1"]
        print(f"|   | kept rule minus gating, held out | | {100 * gain:+.1f} points | | |")
    json.dump(out, open(os.path.join(a.work, "holdout.json"), "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
