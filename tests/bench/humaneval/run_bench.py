#!/usr/bin/env python3
"""HumanEval replay benchmark: what verification does to the suggestion a user is shown.

    run_bench.py [--codeforge BIN] [--limit N] [--n 1 5 10] [--jobs 1] [--out results.json]
                 [--work DIR] [--no-probe] [--baseline-only]

Baselines (pure Python, no CodeForge), over the recorded CodeGen-16B samples, for each n:
  first      the first sample, shown as is (independent of n)
  gate       plain gating: the first of the n samples that passes the visible tests is shown;
             none is shown when none passes (`gate_fb`: then the first sample, unverified)
  probe      agreement ranking: the visible-passing samples are run through
             grammars/python/probe.py; the biggest cluster of equal fingerprints wins (tie: the
             cluster holding the earliest sample), its earliest sample is shown
             (`probe/short`: CodeForge's own order instead: cluster size, then the shortest
             body, then the later sample)
  oracle     any of the n samples passes the hidden tests
With --codeforge: the replay server is started, one workspace per problem is written, and
`BIN generate --json solution.py:LINE -w WORKSPACE` runs per problem with `[generation] n = <n>`;
the shown `code` is scored against the hidden tests.

Prints a markdown table and writes every per-problem result to --out (JSON).
Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
PROBE = os.path.join(REPO, "grammars", "python", "probe.py")
sys.path.insert(0, HERE)
import make_workspaces  # noqa: E402
import score  # noqa: E402


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def p95(xs: list[float]) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(0.95 * len(xs)) - 1))]


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def _eval_sample(task_id: str, k: int) -> dict:
    code = score.sample_function(task_id, k)
    vis = score.run_visible(task_id, code)
    hid, why = score.score_code_reason(task_id, code)
    return {"visible": vis, "hidden": hid, "why": why}


def _probe_sample(task_id: str, k: int, work: str, max_inputs: int) -> str:
    """Fingerprint of sample k (written into a scratch copy of the workspace)."""
    with tempfile.TemporaryDirectory(prefix="he-probe-", dir=work) as d:
        for name, text in make_workspaces.workspace_files(task_id).items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(d, "solution.py"), "w", encoding="utf-8") as f:
            f.write(score.sample_function(task_id, k))
        entry = score.load_problems()[task_id]["entry_point"]
        try:
            r = subprocess.run(
                [sys.executable, PROBE, "--root", d, "--module-file", "solution.py", "--function", entry,
                 "--tests", "test_solution.py", "--max-inputs", str(max_inputs)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300, cwd=d)
            out = json.loads(r.stdout.decode().strip().splitlines()[-1])
        except Exception as e:  # noqa: BLE001
            return f"!probe-failed:{type(e).__name__}"
        return out.get("fingerprint") or "!error:" + str(out.get("error"))[:80]


def compute_baselines(tasks: list[str], kmax: int, work: str, jobs: int, probe: bool,
                      max_inputs: int) -> dict:
    """{task: [{"visible", "hidden", "why", "fp"?} for the first kmax samples]}, cached in work
    (the fingerprints depend on the probe's --max-inputs, hence one cache per value)."""
    cache_path = os.path.join(work, f"baseline_cache_m{max_inputs}.json")
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)
    todo = [(t, k) for t in tasks for k in range(kmax)
            if not (t in cache and len(cache[t]) > k and cache[t][k] is not None)]
    for t in tasks:
        cache.setdefault(t, [None] * kmax)
        cache[t] += [None] * (kmax - len(cache[t]))
    t0 = time.time()
    with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = {ex.submit(_eval_sample, t, k): (t, k) for t, k in todo}
        for i, fu in enumerate(cf.as_completed(futs), 1):
            t, k = futs[fu]
            cache[t][k] = fu.result()
            if i % 200 == 0:
                print(f"  baseline: {i}/{len(todo)} samples scored ({time.time() - t0:.0f} s)", file=sys.stderr)
    if probe:
        todo = [(t, k) for t in tasks for k in range(kmax)
                if cache[t][k]["visible"] and "fp" not in cache[t][k]]
        with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(_probe_sample, t, k, work, max_inputs): (t, k) for t, k in todo}
            for i, fu in enumerate(cf.as_completed(futs), 1):
                t, k = futs[fu]
                cache[t][k]["fp"] = fu.result()
                if i % 100 == 0:
                    print(f"  probe: {i}/{len(todo)} candidates ({time.time() - t0:.0f} s)", file=sys.stderr)
    with open(cache_path, "w") as f:
        json.dump(cache, f)
    return cache


def probe_pick(samples: list[dict], n: int) -> int | None:
    """Index of the shown sample under agreement ranking: biggest fingerprint cluster among the
    visible-passing ones of the first n; a tie goes to the cluster with the earliest sample."""
    clusters: dict[str, list[int]] = {}
    for k in range(n):
        if samples[k]["visible"]:
            clusters.setdefault(samples[k].get("fp", f"!nofp{k}"), []).append(k)
    if not clusters:
        return None
    best = max(clusters.values(), key=lambda ks: (len(ks), -ks[0]))
    return best[0]


def probe_pick_shortest(samples: list[dict], n: int, body_len: list[int]) -> int | None:
    """CodeForge's own order among passing candidates: biggest cluster, then the shortest body,
    then the later candidate (Rust's max_by_key keeps the last maximum)."""
    sizes: dict[str, int] = {}
    vis = [k for k in range(n) if samples[k]["visible"]]
    for k in vis:
        fp = samples[k].get("fp", f"!nofp{k}")
        sizes[fp] = sizes.get(fp, 0) + 1
    if not vis:
        return None
    return max(vis, key=lambda k: (sizes[samples[k].get("fp", f"!nofp{k}")], -body_len[k], k))


def baseline_table(cache: dict, tasks: list[str], ns: list[int], probe: bool) -> dict:
    res = {}
    P = len(tasks)
    for n in ns:
        first = sum(cache[t][0]["hidden"] for t in tasks)
        gate_shown = gate_ok = gate_fb_ok = probe_ok = probe_short_ok = 0
        oracle = 0
        for t in tasks:
            s = cache[t][:n]
            oracle += any(x["hidden"] for x in s)
            idx = next((k for k in range(n) if s[k]["visible"]), None)
            if idx is not None:
                gate_shown += 1
                gate_ok += s[idx]["hidden"]
                gate_fb_ok += s[idx]["hidden"]
            else:
                gate_fb_ok += s[0]["hidden"]
            if probe:
                pk = probe_pick(s, n)
                if pk is not None:
                    probe_ok += s[pk]["hidden"]
                lens = [len(score.truncate_sample(b).strip()) for b in score.load_samples()[t]["samples"][:n]]
                pk = probe_pick_shortest(s, n, lens)
                if pk is not None:
                    probe_short_ok += s[pk]["hidden"]
        row = {
            "problems": P,
            "first_pass1": first / P,
            "gate_shown": gate_shown / P,
            "gate_pass1": gate_ok / P,
            "gate_precision": gate_ok / gate_shown if gate_shown else None,
            "gate_fallback_pass1": gate_fb_ok / P,
            "oracle": oracle / P,
        }
        if probe:
            row["probe_pass1"] = probe_ok / P
            row["probe_precision"] = probe_ok / gate_shown if gate_shown else None
            row["probe_short_pass1"] = probe_short_ok / P
            row["probe_short_precision"] = probe_short_ok / gate_shown if gate_shown else None
        res[n] = row
    return res


# ---------------------------------------------------------------------------------------------
# CodeForge runs against the replay server
# ---------------------------------------------------------------------------------------------


def codeforge_toml(n: int, verify_section: bool, base_url: str) -> str:
    # backend/url/model are written too (the same as the CODEFORGE_* variables): a layer that
    # switches the backend discards the earlier layers' generation keys, n included.
    s = (
        "[embeddings]\n"
        'backend = "none"\n\n'
        "[generation]\n"
        'backend = "openai"\n'
        f'url = "{base_url}"\n'
        'model = "replay"\n'
        f"n = {n}\n"
        "supports_n = true\n"
    )
    if verify_section:
        s += '\n[verify]\nrounds = 0\n'
    return s


class ReplayServer:
    def __init__(self, extra: list[str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "replay_server.py"), "--port", "0"] + (extra or []),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT="):
            self.proc.kill()
            raise RuntimeError(f"replay server did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def post(self, path: str, obj=None) -> dict:
        r = urllib.request.Request(self.base + path, data=json.dumps(obj or {}).encode(),
                                   headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=30) as f:
            return json.loads(f.read())

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base + "/stats", timeout=30) as f:
            return json.loads(f.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def _descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kills proc and everything it started (test runs in their own process groups included)."""
    for p in [proc.pid] + _descendants(proc.pid):
        try:
            os.kill(p, 9)
        except OSError:
            pass


def run_one(binary: str, ws: dict, env: dict, timeout: float, extra: list[str] | None = None) -> dict:
    target = f"{os.path.join(ws['dir'], ws['file'])}:{ws['line']}"
    t0 = time.time()
    # --force: builds before 2026-11-23 read HumanEval/115's stub (`import math` above the
    # docstring) as an implemented body.
    # A workspace's own codeforge.toml cannot trust itself: the run trusts it with --trust.
    flags = list(extra or [])
    if "--no-verify" not in flags:
        flags.append("--trust")
    proc = subprocess.Popen([binary, "generate", "--json", "--force", *flags, target, "-w", ws["dir"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        o, e = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        try:
            o, e = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # an escaped process still holds the pipes
            o, e = b"", b""
        rc = "timeout"
    out, err = o.decode("utf-8", "replace"), e.decode("utf-8", "replace")
    wall = time.time() - t0
    j = _last_json(out) or {}
    ver = j.get("verification") if isinstance(j.get("verification"), dict) else None
    code = j.get("code")
    ok, why = score.score_code_reason(ws["task_id"], code) if code else (False, "nothing shown")
    return {
        "task_id": ws["task_id"], "rc": rc, "status": j.get("status"), "shown": bool(code),
        "verification": ver, "verified": bool(ver and ver.get("status") == "passed"),
        "hidden_pass": ok, "hidden_why": why, "wall_s": wall, "elapsed_ms": j.get("elapsed_ms"),
        "code": code, "stderr_tail": err.strip()[-600:], "json": j,
    }


def run_codeforge(binary: str, index: list[dict], ns: list[int], jobs: int, timeout: float,
                  replay_extra: list[str], on_result=None) -> dict:
    cache_dir = tempfile.mkdtemp(prefix="codeforge-bench-cache-")
    server = ReplayServer(replay_extra)
    results = {}
    try:
        env = dict(os.environ)
        env.update({
            "CODEFORGE_API_BASE": f"{server.base}/v1",
            "CODEFORGE_MODEL": "replay",
            "CODEFORGE_CACHE_DIR": cache_dir,
        })
        env.pop("CODEFORGE_API_KEY", None)
        verify_section = True
        for n in ns:
            server.post("/reset")
            for ws in index:
                with open(os.path.join(ws["dir"], "codeforge.toml"), "w") as f:
                    f.write(codeforge_toml(n, verify_section, env["CODEFORGE_API_BASE"]))
            # A binary without the [verify] section refuses the file (exit 2): write it without.
            probe = run_one(binary, index[0], env, timeout)
            if probe["rc"] == 2 and "verify" in probe["stderr_tail"]:
                print("  note: this codeforge has no [verify] section; running without it", file=sys.stderr)
                verify_section = False
                for ws in index:
                    with open(os.path.join(ws["dir"], "codeforge.toml"), "w") as f:
                        f.write(codeforge_toml(n, verify_section, env["CODEFORGE_API_BASE"]))
                server.post("/reset")
                probe = run_one(binary, index[0], env, timeout)
            rows = [probe]
            t0 = time.time()
            with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
                futs = [ex.submit(run_one, binary, ws, env, timeout) for ws in index[1:]]
                for i, fu in enumerate(cf.as_completed(futs), 2):
                    rows.append(fu.result())
                    if i % 20 == 0:
                        print(f"  n={n}: {i}/{len(index)} problems ({time.time() - t0:.0f} s)", file=sys.stderr)
            rows.sort(key=lambda r: int(r["task_id"].split("/")[1]))
            P = len(rows)
            verified = [r for r in rows if r["verified"]]
            times = [r["wall_s"] for r in rows]
            stats = server.stats()
            results[n] = {
                "problems": P,
                "samples_used_mean": sum(stats["cursors"].values()) / P,
                "shown": sum(r["shown"] for r in rows) / P,
                "shown_pass1": sum(r["shown"] and r["hidden_pass"] for r in rows) / P,
                "verified_share": len(verified) / P,
                "verified_precision": (sum(r["hidden_pass"] for r in verified) / len(verified)) if verified else None,
                "has_verification": sum(r["verification"] is not None for r in rows),
                "errors": sum(r["rc"] not in (0, 1) for r in rows),
                "mean_s": statistics.mean(times) if times else None,
                "p95_s": p95(times),
                "replay": stats,
                "rows": rows,
            }
            if on_result:
                on_result(results)
    finally:
        server.close()
        shutil.rmtree(cache_dir, ignore_errors=True)
    return results


# ---------------------------------------------------------------------------------------------


def table(ns, base, cf_res) -> str:
    lines = []
    head = ["n", "first pass@1", "gate pass@1", "gate prec.", "gate+fallback pass@1"]
    probe = any("probe_pass1" in base[n] for n in ns)
    if probe:
        head += ["probe pass@1", "probe prec.", "probe/short pass@1"]
    head += ["oracle"]
    if cf_res:
        head += ["CF shown pass@1", "CF verified", "CF verified prec.", "CF mean s", "CF p95 s"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for n in ns:
        b = base[n]
        row = [str(n), pct(b["first_pass1"]), pct(b["gate_pass1"]), pct(b["gate_precision"]),
               pct(b["gate_fallback_pass1"])]
        if probe:
            row += [pct(b.get("probe_pass1")), pct(b.get("probe_precision")), pct(b.get("probe_short_pass1"))]
        row += [pct(b["oracle"])]
        c = (cf_res or {}).get(n)
        if cf_res and not c:
            row += ["–"] * 5
        elif c:
            row += [pct(c["shown_pass1"]), pct(c["verified_share"]), pct(c["verified_precision"]),
                    f"{c['mean_s']:.1f}" if c["mean_s"] is not None else "–",
                    f"{c['p95_s']:.1f}" if c["p95_s"] is not None else "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="HumanEval replay benchmark")
    ap.add_argument("--codeforge", help="the codeforge binary (omit for the baselines only)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N problems")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--jobs", type=int, default=1, help="problems run at once")
    ap.add_argument("--out", default="humaneval_results.json")
    ap.add_argument("--work", default=None, help="workspaces and caches (default: a temp dir, kept)")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds per `codeforge generate` (then it and every process it started are killed)")
    ap.add_argument("--no-probe", action="store_true", help="skip the probe-ranking baseline")
    ap.add_argument("--probe-max-inputs", type=int, default=40)
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--whole-prompt", action="store_true", help="passed to replay_server.py")
    ap.add_argument("--table-from", metavar="RESULTS_JSON", help="print the table of a results file and exit")
    a = ap.parse_args(argv)

    if a.table_from:
        with open(a.table_from) as f:
            r = json.load(f)
        ns = r["n"]
        base = {int(k): v for k, v in r["baseline"].items()}
        cf_res = {int(k): v for k, v in r["codeforge"].items()} if r.get("codeforge") else None
        print(table(ns, base, cf_res))
        return 0

    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="humaneval-bench-"))
    os.makedirs(work, exist_ok=True)
    print(f"work dir: {work}", file=sys.stderr)
    tasks = list(score.load_problems())[: a.limit] if a.limit else list(score.load_problems())
    ns = sorted(set(a.n))
    kmax = max(ns)

    t0 = time.time()
    cache = compute_baselines(tasks, kmax, work, max(1, a.jobs), not a.no_probe, a.probe_max_inputs)
    base = baseline_table(cache, tasks, ns, not a.no_probe)
    print(f"baselines: {time.time() - t0:.0f} s", file=sys.stderr)

    def save(cf_res):
        out = {"problems": len(tasks), "n": ns, "baseline": base, "codeforge": cf_res,
               "baseline_samples": {t: cache[t][:kmax] for t in tasks}}
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)

    save(None)
    cf_res = None
    if a.codeforge and not a.baseline_only:
        index = make_workspaces.make(os.path.join(work, "workspaces"), a.limit)
        cf_res = run_codeforge(os.path.abspath(a.codeforge), index, ns, max(1, a.jobs), a.timeout,
                               ["--whole-prompt"] if a.whole_prompt else [], on_result=save)

    print(table(ns, base, cf_res))
    save(cf_res)
    print(f"results: {os.path.abspath(a.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
