#!/usr/bin/env python3
"""Real-repository verification benchmark: does CodeForge show the right body and reject a subtly
wrong one, on real projects with their own test suites, set up the way their users set them up?

    bench.py setup --codeforge BIN [--work DIR] [--only NAME ...]
    bench.py run   --codeforge BIN [--work DIR] [--only NAME ...] [--out results.json]
    bench.py embedded --codeforge BIN [--work DIR] [--limit N]   (Python functions, real model)

setup: fetches every project of projects.py from its registry (PyPI sdist, crates.io crate, Debian
source package), installs it as its users do (a `.venv` with an editable install, cargo, Maven
offline), checks that its whole suite passes, then chooses documented functions (`codeforge
symbols --json`, in file order) and for each the first mutant of its body (see mutate.py) that
the whole suite rejects (a mutant that does not compile does not count). Writes WORK/tasks.json.

run: for every task and both answers (the original body, the mutant), stubs the function in the
project (doc comment kept), starts an OpenAI-compatible replay server that answers with that
function, runs `codeforge generate --json --trust FILE:LINE -w PROJECT`, restores the file and
checks that the project is byte-identical to before. Prints per language: original shown and
passed, mutant marked passed, mutants the selected tests cannot detect (verdict not "failed")
although the whole suite does, and the time per run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mutate  # noqa: E402
from projects import PROJECTS  # noqa: E402

DEFAULT_WORK = os.path.join(os.path.expanduser("~"), ".cache", "codeforge", "realrepo")
SETTINGS = os.environ.get("CODEFORGE_MAVEN_SETTINGS",
                          os.path.join(os.path.expanduser("~"), ".cache", "codeforge",
                                       "maven-settings.xml"))
FENCE = {"python": "python", "rust": "rust", "java": "java"}
EXT = {"python": ".py", "rust": ".rs", "java": ".java"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ setup --

def fetch(p: dict, work: str) -> str:
    dest = os.path.join(work, "projects", p["name"])
    if os.path.isdir(dest):
        return dest
    os.makedirs(os.path.join(work, "downloads"), exist_ok=True)
    kind = p["fetch"][0]
    tmp = tempfile.mkdtemp(dir=os.path.join(work, "downloads"))
    if kind == "pypi":
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                        "--no-deps", p["fetch"][1], "-d", tmp], check=True)
        sdist = next(f for f in os.listdir(tmp) if f.endswith(".tar.gz"))
        with tarfile.open(os.path.join(tmp, sdist)) as t:
            t.extractall(tmp, filter="data")
        top = next(d for d in os.listdir(tmp) if os.path.isdir(os.path.join(tmp, d)))
        shutil.move(os.path.join(tmp, top), dest)
    elif kind == "crate":
        _, name, ver = p["fetch"]
        path = os.path.join(tmp, f"{name}.crate")
        urllib.request.urlretrieve(f"https://static.crates.io/crates/{name}/{name}-{ver}.crate", path)
        with tarfile.open(path) as t:
            t.extractall(tmp, filter="data")
        shutil.move(os.path.join(tmp, f"{name}-{ver}"), dest)
    elif kind == "debian":
        out = os.path.join(work, "projects")
        subprocess.run(["bash", os.path.join(HERE, p["fetch"][1]), out], check=True,
                       env={**os.environ, "MAVEN_SETTINGS": SETTINGS})
        if not os.path.isdir(dest):
            raise SystemExit(f"{p['fetch'][1]} did not create {dest}")
    shutil.rmtree(tmp, ignore_errors=True)
    for argv in p["install"]:
        argv = [sys.executable if a == "{python}" else a for a in argv]
        subprocess.run(argv, cwd=dest, check=True)
    return dest


def suite_argv(p: dict) -> list[str]:
    return [SETTINGS if a == "{settings}" else a for a in p["suite"]]


def suite_env(p: dict, work: str) -> dict:
    env = dict(os.environ)
    if p["language"] == "rust":
        env["CARGO_TARGET_DIR"] = os.path.join(work, "suite-target", p["name"])
    env.pop("PYTHONPATH", None)
    return env


def run_suite(p: dict, proj: str, work: str, timeout: float = 900) -> tuple[str, float, str]:
    """("pass" | "fail" | "build"), seconds, output tail."""
    t0 = time.time()
    try:
        r = subprocess.run(suite_argv(p), cwd=proj, env=suite_env(p, work), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out, rc = r.stdout.decode("utf-8", "replace"), r.returncode
    except subprocess.TimeoutExpired:
        return "fail", time.time() - t0, "timeout"
    dt = time.time() - t0
    if p["language"] == "java" and rc == 0:
        # Surefire with failures ignored still exits 0 on some setups: read the reports.
        rc = 1 if _surefire_failed(proj) else 0
    if rc == 0:
        return "pass", dt, out[-400:]
    build = {"rust": ("error[E", "error: could not compile"),
             "java": ("COMPILATION ERROR", "Compilation failure"),
             "python": ()}[p["language"]]
    if any(m in out for m in build):
        return "build", dt, out[-400:]
    return "fail", dt, out[-400:]


def _surefire_failed(proj: str) -> bool:
    d = os.path.join(proj, "target", "surefire-reports")
    if not os.path.isdir(d):
        return False
    for f in os.listdir(d):
        if f.startswith("TEST-") and f.endswith(".xml"):
            head = open(os.path.join(d, f), encoding="utf-8", errors="replace").read(2000)
            if ' failures="0"' not in head or ' errors="0"' not in head:
                return True
    return False


def symbols(binary: str, path: str) -> list[dict]:
    r = subprocess.run([binary, "symbols", "--json", path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, check=True)
    return json.loads(r.stdout)["symbols"]


def source_files(p: dict, proj: str) -> list[str]:
    if p["sources"]:
        return p["sources"]
    out = []
    main = os.path.join(proj, "src", "main", "java")
    for d, _, fs in os.walk(main):
        for f in sorted(fs):
            if f.endswith(".java"):
                out.append(os.path.relpath(os.path.join(d, f), proj))
    return sorted(out)


def candidates(binary: str, p: dict, proj: str) -> list[dict]:
    """Documented, non-test functions with a body of 3..40 lines, in file order."""
    out = []
    for rel in source_files(p, proj):
        path = os.path.join(proj, rel)
        src = open(path, encoding="utf-8").read()
        for s in symbols(binary, path):
            if s["kind"] not in ("function", "method") or s["is_test"] or not s.get("docstring"):
                continue
            if s["name"].startswith("__") or s["name"].startswith("test"):
                continue
            span = mutate.body_span(p["language"], src, s["start_byte"], s["end_byte"])
            if span is None:
                continue
            body = src.encode()[span[0]:span[1]].decode()
            n = sum(1 for ln in body.split("\n") if ln.strip())
            if not 2 <= n <= 40:
                continue
            out.append({"file": rel, "name": s["qualified_name"], "line": s["line"],
                        "start_byte": s["start_byte"], "end_byte": s["end_byte"], "span": span})
    return out


def setup(a) -> None:
    work = a.work
    os.makedirs(work, exist_ok=True)
    tasks_path = os.path.join(work, "tasks.json")
    tasks = json.load(open(tasks_path)) if os.path.exists(tasks_path) else {"tasks": [], "projects": {}}
    for p in PROJECTS:
        if a.only and p["name"] not in a.only:
            continue
        if p["name"] in tasks["projects"] and tasks["projects"][p["name"]]["functions"]:
            log(f"{p['name']}: already set up")
            continue
        log(f"{p['name']}: fetching and installing")
        proj = fetch(p, work)
        status, dt, tail = run_suite(p, proj, work)
        if status != "pass":
            raise SystemExit(f"{p['name']}: the whole suite does not pass as fetched:\n{tail}")
        log(f"{p['name']}: whole suite passes ({dt:.1f} s)")
        chosen = []
        tried = 0
        for c in candidates(a.codeforge, p, proj):
            if len(chosen) >= p["take"]:
                break
            path = os.path.join(proj, c["file"])
            orig = open(path, encoding="utf-8").read()
            found = None
            for site in mutate.sites(p["language"], orig, tuple(c["span"]))[: a.tries]:
                mutant = mutate.apply(orig, site)
                tried += 1
                try:
                    open(path, "w", encoding="utf-8").write(mutant)
                    st, mdt, _ = run_suite(p, proj, work)
                    # Rejected twice, or not at all: a flaky suite once failed commons-codec's
                    # equivalent `resizeBuffer` mutant (`<` -> `<=` where both branches agree).
                    if st == "fail":
                        st = run_suite(p, proj, work)[0]
                finally:
                    open(path, "w", encoding="utf-8").write(orig)
                log(f"  {c['name']}: {site[2]!r} -> {site[3]!r}: {st} ({mdt:.1f} s)")
                if st == "fail":
                    found = site
                    break
            if not found:
                continue
            a_, z_, old, new = found
            mutant_src = mutate.apply(orig, found)
            delta = len(new.encode()) - len(old.encode())
            chosen.append({
                "project": p["name"], "language": p["language"], **c,
                "original": mutate.function_text(orig, c["start_byte"], c["end_byte"]),
                "mutant": mutate.function_text(mutant_src, c["start_byte"], c["end_byte"] + delta),
                "mutation": f"{old} -> {new} at byte {a_}",
                "site": list(found),
            })
        tasks["tasks"] = [t for t in tasks["tasks"] if t["project"] != p["name"]] + chosen
        tasks["projects"][p["name"]] = {"language": p["language"], "suite_s": round(dt, 1),
                                        "functions": len(chosen), "mutants_tried": tried}
        json.dump(tasks, open(tasks_path, "w"), indent=1)
        log(f"{p['name']}: {len(chosen)} functions with a mutant the whole suite rejects")


# ----------------------------------------------------------------------------- replay server --

class Replay:
    """Answers every chat/completions request whose `model` is a task key with that function."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.requests = 0
        replay = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, obj, code=200):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "replay", "object": "model"}]})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(n) or b"{}")
                replay.requests += 1
                text = replay.answer(req)
                k = max(1, int(req.get("n") or 1))
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"} for i in range(k)]
                else:
                    choices = [{"index": i, "text": text, "finish_reason": "stop"} for i in range(k)]
                self._send({"id": "r", "object": "chat.completion", "model": req.get("model"),
                            "choices": choices,
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, req: dict) -> str:
        msgs = req.get("messages") or []
        last = msgs[-1].get("content", "") if msgs else ""
        if isinstance(last, str) and "Write 3 to 5 tests" in last:
            return "```\n```"
        return self.answers.get(req.get("model", ""), "```\n```")

    def close(self):
        self.httpd.shutdown()


# --------------------------------------------------------------------------------------- run --

def tree_digest(root: str) -> str:
    h = hashlib.sha256()
    for d, dirs, fs in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in (".venv", "target", "__pycache__"))
        for f in sorted(fs):
            p = os.path.join(d, f)
            h.update(os.path.relpath(p, root).encode())
            try:
                h.update(open(p, "rb").read())
            except OSError:
                pass
    return h.hexdigest()


def apply_edits(src: str, edit: dict) -> str:
    b = src.encode()
    edits = [edit] + list(edit.get("additional_edits") or [])
    for e in sorted(edits, key=lambda e: e["start_byte"], reverse=True):
        b = b[: e["start_byte"]] + e["new_text"].encode() + b[e["end_byte"]:]
    return b.decode()


def norm(s: str) -> str:
    return "\n".join(ln.rstrip() for ln in s.split("\n") if ln.strip())


CONFIG = """[embeddings]
backend = "none"

[generation]
n = 1

[verify]
trust = "always"
rounds = 0
generate_tests = false
"""


CONTEXTS = {
    # The repository context a prompt is offered (`[generation]`): ranked by the repository's
    # structure (the default), the index's search hits alone, or none.
    "structure": "",
    "search": 'context_ranking = "search"\n',
    "none": "context_hits = 0\n",
}


def config_for(context: str) -> str:
    return CONFIG.replace("n = 1\n", "n = 1\n" + CONTEXTS[context], 1)


def run_one(binary: str, t: dict, variant: str, work: str, env: dict, timeout: float,
            context: str = "structure") -> dict:
    proj = os.path.join(work, "projects", t["project"])
    path = os.path.join(proj, t["file"])
    orig = open(path, encoding="utf-8").read()
    stubbed = mutate.stub(t["language"], orig, tuple(t["span"]))
    mutant_src = mutate.apply(orig, tuple(t["site"]))
    cfg = os.path.join(proj, "codeforge.toml")
    had_cfg = os.path.exists(cfg)
    before = tree_digest(proj)
    open(path, "w", encoding="utf-8").write(stubbed)
    if not had_cfg:
        open(cfg, "w").write(config_for(context))
    after_stub = tree_digest(proj)
    t0 = time.time()
    line = t["line"]
    e = dict(env)
    if variant != "embedded":
        e["CODEFORGE_MODEL"] = f"{t['project']}:{t['name']}:{variant}"
    try:
        r = subprocess.run([binary, "generate", "--json", "--trust", f"{path}:{line}", "-w", proj],
                           env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        out, err, rc = r.stdout.decode(), r.stderr.decode("utf-8", "replace"), r.returncode
    except subprocess.TimeoutExpired as x:
        out, err, rc = "", (x.stderr or b"").decode("utf-8", "replace"), "timeout"
    wall = time.time() - t0
    unchanged = tree_digest(proj) == after_stub
    result = None
    j = _last_json(out)
    if j.get("edit"):
        result = apply_edits(stubbed, j["edit"])
    suite = None
    if variant == "embedded" and result is not None:
        # The shown code, judged by the project's whole suite.
        open(path, "w", encoding="utf-8").write(result)
        p = next(p for p in PROJECTS if p["name"] == t["project"])
        suite = run_suite(p, proj, work)[0]
    open(path, "w", encoding="utf-8").write(orig)
    if not had_cfg:
        os.remove(cfg)
    restored = tree_digest(proj) == before
    ver = j.get("verification") or {}
    shown = None
    if result is not None:
        shown = ("original" if norm(result) == norm(orig)
                 else "mutant" if norm(result) == norm(mutant_src) else "other")
    return {
        "project": t["project"], "language": t["language"], "name": t["name"], "variant": variant,
        "context": context,
        "rc": rc, "status": j.get("status"), "shown": shown,
        "verdict": ver.get("status"), "label": ver.get("label"),
        "selected": len(ver.get("selected_tests") or []), "passed": ver.get("passed"),
        "failed": ver.get("failed"), "tests_from": ver.get("tests_from"),
        "wall_s": round(wall, 2), "workspace_unchanged": unchanged and restored,
        "whole_suite": suite,
        "stderr_tail": err.strip()[-500:],
    }


def _last_json(out: str) -> dict:
    for ln in reversed(out.strip().split("\n")):
        try:
            return json.loads(ln)
        except json.JSONDecodeError:
            continue
    return {}


def chosen_tasks(a) -> list[dict]:
    """The tasks of WORK/tasks.json that --only and --limit (per project) leave."""
    tasks = [t for t in json.load(open(os.path.join(a.work, "tasks.json")))["tasks"]
             if not a.only or t["project"] in a.only]
    if a.limit:
        by: dict[str, list] = {}
        for t in tasks:
            by.setdefault(t["project"], []).append(t)
        tasks = [t for ts in by.values() for t in ts[: a.limit]]
    return tasks


def embedded(a) -> None:
    """The embedded Qwen model (nothing configured) on the Python functions; what it shows is
    judged by the project's whole suite."""
    tasks = [t for t in chosen_tasks(a) if t["language"] == "python"]
    env = dict(os.environ)
    for k in ("CODEFORGE_API_BASE", "CODEFORGE_MODEL", "CODEFORGE_API_KEY", "PYTHONPATH"):
        env.pop(k, None)
    # A cache dir of its own (the projects live under the default one, which CodeForge refuses as
    # a workspace), with the installed models linked in.
    cache = tempfile.mkdtemp(prefix="codeforge-realrepo-cache-")
    os.symlink(os.path.join(os.path.expanduser("~"), ".cache", "codeforge", "models"),
               os.path.join(cache, "models"))
    env["CODEFORGE_CACHE_DIR"] = cache
    rows = []
    for i, t in enumerate(tasks, 1):
        for c in a.contexts:
            r = run_one(a.codeforge, t, "embedded", a.work, env, a.timeout, context=c)
            rows.append(r)
            log(f"[{i}/{len(tasks)}] {t['project']} {t['name']} ({c}): shown={r['shown']} "
                f"verdict={r['verdict']} whole suite={r['whole_suite']} {r['wall_s']:.1f} s")
            if a.out:
                json.dump({"rows": rows}, open(a.out, "w"), indent=1)
    print(embedded_table(rows))


def embedded_table(rows: list[dict]) -> str:
    out = ["| repository context | functions | shown | shown and the whole suite passes | verified | "
           "verified and the whole suite passes | time median / p95 |",
           "|---|---|---|---|---|---|---|"]
    for c in dict.fromkeys(r.get("context", "structure") for r in rows):
        rs = [r for r in rows if r.get("context", "structure") == c]
        n = len(rs)
        shown = [r for r in rs if r["shown"] is not None]
        ok = sum(r["whole_suite"] == "pass" for r in shown)
        verified = [r for r in shown if r["verdict"] == "passed"]
        times = [r["wall_s"] for r in rs] or [0.0]
        out.append(
            f"| {c} | {n} | {pct(len(shown), n)} | {pct(ok, n)} | {pct(len(verified), n)} | "
            f"{pct(sum(r['whole_suite'] == 'pass' for r in verified), len(verified))} | "
            f"{statistics.median(times):.0f} s / {p95(times):.0f} s |")
    return "\n".join(out)


def run(a) -> None:
    tasks = chosen_tasks(a)[a.start:]
    answers = {}
    for t in tasks:
        for v in ("original", "mutant"):
            answers[f"{t['project']}:{t['name']}:{v}"] = f"```{FENCE[t['language']]}\n{t[v]}```"
    server = Replay(answers)
    cache = tempfile.mkdtemp(prefix="codeforge-realrepo-cache-")
    env = dict(os.environ)
    env.update({"CODEFORGE_API_BASE": server.base, "CODEFORGE_CACHE_DIR": cache})
    env.pop("CODEFORGE_API_KEY", None)
    env.pop("PYTHONPATH", None)
    if os.path.exists(SETTINGS):
        # Where `.ci/setup` puts the offline Maven settings for a user: the cache dir.
        shutil.copy(SETTINGS, os.path.join(cache, "maven-settings.xml"))
    rows = []
    try:
        for i, t in enumerate(tasks, 1):
            for v in ("original", "mutant"):
                r = run_one(a.codeforge, t, v, a.work, env, a.timeout)
                rows.append(r)
                log(f"[{i}/{len(tasks)}] {t['project']} {t['name']} {v}: shown={r['shown']} "
                    f"verdict={r['verdict']} ({r['passed']}/{r['selected']}) {r['wall_s']:.1f} s"
                    + ("" if r["workspace_unchanged"] else "  WORKSPACE CHANGED"))
                if a.out:
                    json.dump({"rows": rows}, open(a.out, "w"), indent=1)
    finally:
        server.close()
        shutil.rmtree(cache, ignore_errors=True)
    print(table(rows))


def pct(x: int, n: int) -> str:
    return f"{100 * x / n:.0f}% ({x}/{n})" if n else "–"


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def table(rows: list[dict]) -> str:
    out = ["| language | functions | original shown and passed | mutant marked passed | "
           "mutant not detected by the selected tests | time per run median / p95 | "
           "workspace unchanged |",
           "|---|---|---|---|---|---|---|"]
    langs = sorted({r["language"] for r in rows}, key=["python", "rust", "java"].index)
    for lang in langs + ["all"]:
        rs = [r for r in rows if lang == "all" or r["language"] == lang]
        orig = [r for r in rs if r["variant"] == "original"]
        mut = [r for r in rs if r["variant"] == "mutant"]
        ok = sum(r["shown"] == "original" and r["verdict"] == "passed" for r in orig)
        mpass = sum(r["verdict"] == "passed" for r in mut)
        undetected = sum(r["verdict"] != "failed" for r in mut)
        times = [r["wall_s"] for r in rs]
        out.append(f"| {lang} | {len(orig)} | {pct(ok, len(orig))} | {pct(mpass, len(mut))} | "
                   f"{pct(undetected, len(mut))} | "
                   f"{statistics.median(times):.1f} s / {p95(times):.1f} s | "
                   f"{sum(r['workspace_unchanged'] for r in rs)}/{len(rs)} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["setup", "run", "embedded", "table"])
    ap.add_argument("--codeforge", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/codeforge/target")),
        "dist", "codeforge"))
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--limit", type=int, help="functions per project")
    ap.add_argument("--start", type=int, default=0, help="skip the first N functions (run)")
    ap.add_argument("--tries", type=int, default=4, help="mutants tried per function")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--contexts", nargs="+", choices=list(CONTEXTS), default=["structure"],
                    help="embedded: the repository contexts to run each function with")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.codeforge = os.path.abspath(a.codeforge)
    if a.cmd == "setup":
        setup(a)
    elif a.cmd == "run":
        run(a)
    elif a.cmd == "embedded":
        embedded(a)
    else:
        rows = json.load(open(a.out))["rows"]
        print(embedded_table(rows) if rows and rows[0]["variant"] == "embedded" else table(rows))


if __name__ == "__main__":
    main()
