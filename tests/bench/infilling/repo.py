#!/usr/bin/env python3
"""Repository-level line infilling through the real `codeforge lsp`: does completion's
repository context help?

HumanEval's infilling tasks (`bench.py`) have no repository, so the context completion takes
from the index cannot show there. Here the workspace is a real Python project (e.g. the Django
sdist of the index benchmark's corpora). In each of N source files (tests and migrations aside,
seeded sample) one line inside a function body is removed: a single-line statement that calls a
function or class the project defines in another file and not in this one (`x = parse_header(v)`,
`return reverse(...)`). Every chosen file is written to a copy of the project with its line
emptied, so the index never holds an answer; the copy is indexed once by the server itself.

Per task, as an editor: `didOpen` the file, a pause (the user reads; the server precomputes the
file's completion contexts in the background), then `textDocument/completion` at the start of the
emptied line, re-asked while `isIncomplete`. The first-ranked item is compared with the removed
line: **exact** (same code, whitespace aside) and **callee** (the item calls the same repository
symbol). Run twice on the same copy and index: with repository context (the default) and
without (`[generation] context_hits = 0`). The server's log says how many prompts had context.

Standard-library Python 3.11. Prints a markdown table and writes every result as JSON.

    B=~/.cache/codeforge/target/dist/codeforge
    python3 tests/bench/infilling/repo.py --codeforge $B --repo ~/.cache/codeforge/bench-corpora/django --n 60
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import Lsp, ask_lsp, apply  # noqa: E402

SKIP_DIRS = {"tests", "test", "migrations", "locale", "docs", "node_modules", ".git", "build", "dist"}
TYPED = 4  # characters the user types before asking again
STMTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)


def py_files(repo: str) -> list[str]:
    out = []
    for d, dirs, files in os.walk(repo):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("."))
        for f in sorted(files):
            if f.endswith(".py") and not f.startswith("test"):
                out.append(os.path.relpath(os.path.join(d, f), repo))
    return out


def defined_names(tree: ast.AST) -> set[str]:
    """Functions, classes and methods a module defines."""
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def callees(stmt: ast.stmt) -> list[str]:
    out = []
    for n in ast.walk(stmt):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                out.append(f.id)
            elif isinstance(f, ast.Attribute):
                out.append(f.attr)
    return out


def choose(repo: str, n: int, seed: int) -> list[dict]:
    trees, defs = {}, {}
    for rel in py_files(repo):
        try:
            src = open(os.path.join(repo, rel), encoding="utf-8").read()
            tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        trees[rel] = (src, tree)
        for name in defined_names(tree):
            defs.setdefault(name, set()).add(rel)
    # Builtins and the methods of builtin types (`copy`, `join`, `setdefault`) are not the
    # repository's, whatever the repository also defines under those names.
    builtin = set(dir(builtins)).union(*(dir(t) for t in (str, bytes, dict, list, set, tuple, int, float)))
    rng = random.Random(seed)
    tasks = []
    for rel in rng.sample(sorted(trees), len(trees)):
        src, tree = trees[rel]
        own = defined_names(tree)
        lines = src.split("\n")
        cands = []
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.end_lineno - fn.lineno < 4:
                continue
            for stmt in fn.body[1:]:  # not the first statement (often the docstring)
                if not isinstance(stmt, STMTS) or stmt.lineno != stmt.end_lineno:
                    continue
                line = lines[stmt.lineno - 1]
                if not 15 <= len(line.strip()) <= 100:
                    continue
                repo_callees = [c for c in callees(stmt) if c in defs and c not in own and c not in builtin
                                and len(c) >= 4 and not c.startswith("__") and defs[c] - {rel}]
                if repo_callees:
                    cands.append((stmt.lineno - 1, repo_callees[0]))
        if not cands:
            continue
        row, callee = rng.choice(cands)
        tasks.append({"path": rel, "row": row, "line": lines[row], "callee": callee})
        if len(tasks) == n:
            break
    return tasks


class LoggingLsp(Lsp):
    """The bench's client, keeping the server's `window/logMessage` lines."""

    def __init__(self, *a, **kw):
        self.logs: list[str] = []
        super().__init__(*a, **kw)

    def on_notification(self, msg: dict):
        if msg.get("method") == "window/logMessage":
            with self.cv:
                self.logs.append(msg["params"]["message"])
                self.cv.notify_all()


def run(binary: str, root: str, tasks: list[dict], context: bool, cache: str, pause_s: float,
        deadline_s: float, prompt_tokens: int | None) -> tuple[list[dict], dict]:
    with open(os.path.join(root, "codeforge.toml"), "w") as f:
        f.write('[embeddings]\nbackend = "none"\n[generation]\n')
        if not context:
            f.write("context_hits = 0\n")
        if prompt_tokens:
            f.write(f"completion_prompt_tokens = {prompt_tokens}\n")
    env = dict(os.environ, CODEFORGE_CACHE_DIR=cache, CODEFORGE_LOG=os.environ.get("BENCH_LOG", "warn,codeforge_ide=info,codeforge_lsp=info"))
    log_path = os.path.join(root, "..", "server.log")
    lsp = LoggingLsp(binary, root, env)
    t0 = time.monotonic()
    with lsp.cv:
        if not lsp.cv.wait_for(lambda: any(l.startswith("indexed ") for l in lsp.logs), 1800):
            raise TimeoutError("the workspace was not indexed")
    index_s = time.monotonic() - t0
    print(f"[{'context' if context else 'none'}] indexed in {index_s:.1f} s: {lsp.logs[-1]}", file=sys.stderr)
    time.sleep(5)  # the name layer loads after the first index
    results = []
    try:
        for i, t in enumerate(tasks):
            path = os.path.join(root, t["path"])
            text = open(path, encoding="utf-8").read()
            offset = sum(len(l) + 1 for l in text.split("\n")[: t["row"]])
            uri = "file://" + path
            lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                  "version": 1, "text": text}})
            time.sleep(pause_s)
            a = ask_lsp(lsp, uri, text, offset, deadline_s, wait_final=False)
            item, secs = a["first"], a["first_s"] or a["final_s"] or deadline_s
            res = {"path": t["path"], "line": t["line"], "callee": t["callee"], "answered": item is not None,
                   "latency_s": round(secs, 3)}
            if item is not None:
                middle = apply(text, offset, item)
                first = next((l for l in middle.split("\n") if l.strip()), "")
                res.update(middle=middle, exact=first.strip() == t["line"].strip(),
                           callee_match=re.search(r"\b%s\s*\(" % re.escape(t["callee"]), first) is not None)
            else:
                res.update(exact=False, callee_match=False)
            # Then the user types the line's first characters (one change per key, as an editor
            # sends them) and the client asks again: the model re-reads only what changed.
            want = t["line"]
            typed = want[: len(want) - len(want.lstrip()) + TYPED]
            for k in range(1, len(typed) + 1):
                lsp.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": 1 + k},
                    "contentChanges": [{"text": text[:offset] + typed[:k] + text[offset:]}]})
            text2 = text[:offset] + typed + text[offset:]
            a2 = ask_lsp(lsp, uri, text2, offset + len(typed), deadline_s, wait_final=False)
            item2, secs2 = a2["first"], a2["first_s"] or a2["final_s"] or deadline_s
            res["typed_latency_s"] = round(secs2, 3)
            res["typed_answered"] = item2 is not None
            if item2 is not None:
                first2 = (typed + apply(text2, offset + len(typed), item2)).split("\n")[0]
                res.update(typed_middle=first2, typed_exact=first2.strip() == want.strip())
            else:
                res["typed_exact"] = False
            lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            results.append(res)
            print(f"[{'context' if context else 'none'} {i + 1}/{len(tasks)}] {t['path']}: "
                  f"{'no item' if item is None else repr(res['middle'][:60])} (want {t['line'].strip()[:60]!r}) "
                  f"{secs:.2f}s", file=sys.stderr, flush=True)
    finally:
        lsp.close()
    with_context = total = 0
    for l in open(log_path, encoding="utf-8", errors="replace"):
        m = re.search(r"repository context: (\d+) symbols", l)
        if m:
            total += 1
            with_context += int(m.group(1)) > 0
    return results, {"index_s": round(index_s, 1), "prompts": total, "prompts_with_context": with_context}


def summary(results: list[dict], meta: dict) -> dict:
    n = len(results) or 1
    lat = sorted(r["latency_s"] for r in results if r["answered"])
    pct = lambda q: lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] if lat else 0.0  # noqa: E731
    typed = sorted(r["typed_latency_s"] for r in results if r.get("typed_answered"))
    tpct = lambda q: typed[min(len(typed) - 1, round(q * (len(typed) - 1)))] if typed else 0.0  # noqa: E731
    return {"tasks": len(results), "answered": sum(r["answered"] for r in results) / n,
            "typed_exact": sum(r.get("typed_exact", False) for r in results) / n,
            "typed_p50_s": tpct(0.5), "typed_p95_s": tpct(0.95),
            "exact": sum(r["exact"] for r in results) / n, "callee": sum(r["callee_match"] for r in results) / n,
            "p50_s": pct(0.5), "p95_s": pct(0.95), **meta}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codeforge", required=True)
    ap.add_argument("--repo", required=True, help="a Python project's source tree")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between opening a file and asking")
    ap.add_argument("--deadline", type=float, default=60.0)
    ap.add_argument("--only", choices=["context", "none"], help="one configuration only")
    ap.add_argument("--prompt-tokens", type=int, help="[generation] completion_prompt_tokens for the server")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    tasks = choose(a.repo, a.n, a.seed)
    work = tempfile.mkdtemp(prefix="cf-repo-infill-")
    root = os.path.join(work, "ws")
    shutil.copytree(a.repo, root, symlinks=True)
    for t in tasks:
        p = os.path.join(root, t["path"])
        lines = open(p, encoding="utf-8").read().split("\n")
        lines[t["row"]] = ""
        open(p, "w", encoding="utf-8").write("\n".join(lines))
    # A cache of its own (the copy's index goes with it), with the installed models.
    cache = os.path.join(work, "cache")
    os.makedirs(cache)
    models = os.path.join(os.environ.get("CODEFORGE_CACHE_DIR", os.path.expanduser("~/.cache/codeforge")), "models")
    os.symlink(models, os.path.join(cache, "models"))
    rows = {}
    try:
        for context in (True, False):
            if a.only and a.only != ("context" if context else "none"):
                continue
            results, meta = run(a.codeforge, root, tasks, context, cache, a.pause, a.deadline, a.prompt_tokens)
            rows["with repository context" if context else "without (context_hits = 0)"] = (summary(results, meta), results)
    finally:
        shutil.rmtree(work, ignore_errors=True) if not os.environ.get("BENCH_KEEP") else print("kept", work)
    print(f"\n{len(tasks)} tasks from {a.repo} (seed {a.seed})\n")
    print(f"| configuration | answered | exact | calls the same symbol | p50 / p95 | exact after {TYPED} characters "
          "typed | p50 / p95 then | prompts with context |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (s, _) in rows.items():
        print(f"| {name} | {s['answered']:.1%} | {s['exact']:.1%} | {s['callee']:.1%} | "
              f"{s['p50_s']:.2f} / {s['p95_s']:.2f} s | {s['typed_exact']:.1%} | "
              f"{s['typed_p50_s']:.2f} / {s['typed_p95_s']:.2f} s | {s['prompts_with_context']}/{s['prompts']} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({k: {"summary": s, "results": r} for k, (s, r) in rows.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
