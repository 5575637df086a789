#!/usr/bin/env python3
"""HumanEval infilling through the real `codeforge lsp`, as an editor asks for completions.

Each task (the FIM paper's single-line or multi-line infilling set, `../shared/eval/humaneval-
infilling/`) becomes a document, `prompt + suffix`, opened in one empty workspace served by
`codeforge lsp` on stdio (only that document: no other task can leak in through retrieval). At the
hole (an empty line, where the user's cursor would be) the client asks `textDocument/completion` and, while the answer is `isIncomplete`,
asks again every 50 ms, as editors re-trigger. The first-ranked item (lowest `sortText`,
then the server's order) of the first answer with items (what the editor shows at once: the
server streams the line item before the block and function items) is applied as its `textEdit`
and the program `prompt + item + suffix` runs the task's `check(entry_point)` in a fresh
interpreter with a timeout. The "waited" columns do the same with the last answer, once it is
complete: what a user who waits and asks again gets.

`--mode plain` is the baseline without CodeForge: the same model asked directly with a plain FIM
prompt (`codeforge model run "<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>"`), the middle cut at its
first line for single-line tasks.

`--api-base URL --model NAME` measures an OpenAI-compatible server (llama.cpp's `llama-server`)
instead of the embedded model: in lsp mode the server's HTTP backend (`backend = "openai"` in the user's
config, in a config home of the run's own) is a recording proxy in front of URL, which times every backend request, so each cursor's latency
splits into the backend's time and CodeForge's own ("overhead": the latency minus the time a
backend request was open, within the cursor's window); in plain mode the same FIM prompt is posted
to URL's `/completions` directly.

Prints a markdown table row per set (answered, pass@1 of the first item, exact match, latency
p50/p95) and writes every result as JSON. Standard-library Python 3.11.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import http.server
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "humaneval"))
import score  # noqa: E402  (run_python: a fresh interpreter, a temp dir, a timeout)

DATA = os.environ.get(
    "INFILLING_DATA", os.path.join(HERE, "..", "..", "..", "..", "shared", "eval", "humaneval-infilling")
)
TEST_TIMEOUT_S = 10.0


def load(kind: str) -> list[dict]:
    with gzip.open(os.path.join(DATA, f"{kind}.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sample(kind: str, n: int, seed: int) -> list[dict]:
    tasks = load(kind)
    rng = random.Random(seed)
    return sorted(rng.sample(tasks, min(n, len(tasks))), key=lambda t: t["task_id"])


def passes(task: dict, middle: str) -> tuple[bool, str]:
    program = task["prompt"] + middle + task["suffix"] + "\n" + task["test"] + f"\ncheck({task['entry_point']})\n"
    return score.run_python(program, TEST_TIMEOUT_S)


def exact(task: dict, middle: str) -> bool:
    norm = lambda s: "\n".join(l.rstrip() for l in s.strip("\n").splitlines())  # noqa: E731
    return norm(middle) == norm(task["canonical_solution"])


# ----------------------------------------------------------------------------------- LSP --

class Lsp:
    """A minimal LSP client over the server's stdio."""

    def __init__(self, binary: str, root: str, env: dict):
        self.p = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(root, "..", "server.log"), "wb"), env=env)
        self.next_id = 0
        self.replies: dict[int, dict] = {}
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        uri = "file://" + root
        self.request("initialize", {
            "processId": os.getpid(), "rootUri": uri,
            "workspaceFolders": [{"uri": uri, "name": "bench"}],
            "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": False}}},
                             "window": {"workDoneProgress": True}},
        })
        self.notify("initialized", {})

    def _read(self):
        out = self.p.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.decode().strip()
                if not line:
                    break
                k, v = line.split(":", 1)
                headers[k.lower()] = v.strip()
            msg = json.loads(out.read(int(headers["content-length"])))
            if "id" in msg and "method" in msg:  # a request from the server: answer null
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                with self.cv:
                    self.replies[msg["id"]] = msg
                    self.cv.notify_all()
            else:
                self.on_notification(msg)

    def on_notification(self, msg: dict):
        """A notification from the server (ignored here; subclasses keep what they need)."""

    def _send(self, msg: dict):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def notify(self, method: str, params: dict):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict, timeout: float = 120.0) -> dict:
        self.next_id += 1
        i = self.next_id
        self._send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        with self.cv:
            if not self.cv.wait_for(lambda: i in self.replies, timeout):
                raise TimeoutError(method)
            msg = self.replies.pop(i)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result")

    def close(self):
        try:
            self.request("shutdown", {}, timeout=10)
            self.notify("exit", {})
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()


class Proxy:
    """A recording HTTP proxy in front of an OpenAI-compatible server: forwards every request as
    it comes (streamed answers chunk by chunk, so the client sees them as soon as the backend
    writes them) and keeps each request's open interval (monotonic seconds)."""

    def __init__(self, upstream: str, log: str | None = None):
        u = urllib.parse.urlsplit(upstream)
        self.log = open(log, "a") if log else None
        self.host, self.port, self.base = u.hostname, u.port or 80, u.path.rstrip("/")
        self.spans: list[list] = []  # [start, end or None while open]
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path
                if path.startswith(proxy.base):
                    path = path[len(proxy.base):]
                span = [time.monotonic(), None]
                with proxy.lock:
                    proxy.spans.append(span)
                up = http.client.HTTPConnection(proxy.host, proxy.port, timeout=600)
                try:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() not in ("host", "content-length", "connection")}
                    up.request(self.command, proxy.base + path, body=body or None, headers=hdrs)
                    r = up.getresponse()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while True:
                        chunk = r.read1(65536)
                        if not chunk:
                            span[1] = time.monotonic()
                            break
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client cancelled: the backend is cut off too
                finally:
                    up.close()
                    with proxy.lock:
                        if span[1] is None:
                            span[1] = time.monotonic()
                        if proxy.log:
                            proxy.log.write(json.dumps({"path": path, "request": body.decode(errors="replace"),
                                                        "secs": round(span[1] - span[0], 3)}) + "\n")
                            proxy.log.flush()

            do_POST = do_GET = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.base}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def busy(self, a: float, b: float) -> float:
        """Seconds within [a, b] during which at least one backend request was open."""
        with self.lock:
            spans = sorted((max(s, a), b if e is None else min(e, b))
                           for s, e in self.spans if (e is None or e > a) and s < b)
        total, end = 0.0, a
        for s, e in spans:
            s = max(s, end)
            if e > s:
                total += e - s
                end = e
        return total

    def close(self):
        self.server.shutdown()


def position_of(text: str, offset: int) -> dict:
    before = text[:offset]
    line = before.count("\n")
    # LSP columns count UTF-16 code units.
    return {"line": line, "character": len(before[before.rfind("\n") + 1:].encode("utf-16-le")) // 2}


def offset_of(text: str, pos: dict) -> int:
    lines = text.split("\n")
    off = sum(len(l) + 1 for l in lines[: pos["line"]])
    line = lines[pos["line"]] if pos["line"] < len(lines) else ""
    units, i = 0, 0
    while i < len(line) and units < pos["character"]:
        units += len(line[i].encode("utf-16-le")) // 2
        i += 1
    return off + i


def first_item(items: list[dict]) -> dict | None:
    if not items:
        return None
    return sorted(enumerate(items), key=lambda e: (e[1].get("sortText") or e[1]["label"], e[0]))[0][1]


def ask_lsp(lsp: Lsp, uri: str, text: str, offset: int, deadline_s: float, wait_final: bool = True) -> dict:
    """Asks at the cursor as an editor does, and on while the answer is `isIncomplete`: the first
    answer with items is what the editor shows at once (the line item streams before the rest);
    the last is what a user who waits and asks again gets (`wait_final`; else the first)."""
    pos = position_of(text, offset)
    t0 = time.monotonic()
    tries = 0
    first = first_s = None
    while True:
        tries += 1
        r = lsp.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})
        items = (r or {}).get("items", []) if isinstance(r, dict) else (r or [])
        incomplete = isinstance(r, dict) and r.get("isIncomplete")
        now = time.monotonic() - t0
        if items and first is None:
            first, first_s = first_item(items), now
        if not incomplete or now > deadline_s or (first is not None and not wait_final):
            last = first_item(items)
            return {"first": first, "first_s": first_s, "final": last or first,
                    "final_s": now if last or first is None else first_s, "tries": tries, "t0": t0}
        time.sleep(0.05)


def apply(text: str, offset: int, item: dict) -> str:
    """The middle the item puts at the hole: the document with its edit applied, minus the rest."""
    edit = item.get("textEdit")
    if edit:
        a, b = offset_of(text, edit["range"]["start"]), offset_of(text, edit["range"]["end"])
        new = text[:a] + edit["newText"] + text[b:]
    else:
        new = text[:offset] + (item.get("insertText") or item["label"]) + text[offset:]
    # prompt + middle + suffix == new; the prompt is text[:offset] and the suffix text[offset:].
    return new[offset: len(new) - (len(text) - offset)] if new.startswith(text[:offset]) else new


def run_lsp(binary: str, tasks: list[dict], kind: str, deadline_s: float, cache: str | None,
            fim: bool | None, prompt_tokens: int | None = None, api_base: str | None = None,
            model: str | None = None) -> list[dict]:
    work = tempfile.mkdtemp(prefix="cf-infill-")
    root = os.path.join(work, "ws")
    os.makedirs(root)
    # Every backend request, for a look at what the server asked.
    proxy = Proxy(api_base, os.path.join(work, "backend.jsonl")) if api_base else None
    with open(os.path.join(root, "codeforge.toml"), "w") as f:
        f.write('[embeddings]\nbackend = "none"\n')
        if fim is not None or prompt_tokens:
            f.write("[generation]\n")
        if fim is not None:
            f.write(f"fim = {str(fim).lower()}\n")
        if prompt_tokens:
            f.write(f"completion_prompt_tokens = {prompt_tokens}\n")
    env = dict(os.environ)
    if cache:
        env["CODEFORGE_CACHE_DIR"] = cache
    if proxy:
        # The backend is the user's choice (a workspace's own codeforge.toml cannot choose one
        # until the user trusts it): the user's config, in a home of this run's own.
        conf = os.path.join(work, "config", "codeforge")
        os.makedirs(conf)
        with open(os.path.join(conf, "config.toml"), "w") as f:
            f.write(f'[generation]\nbackend = "openai"\nurl = "{proxy.url}"\nmodel = "{model or "default"}"\n'
                    f"supports_n = false\n" + ("" if fim is None else f"fim = {str(fim).lower()}\n"))
        env["XDG_CONFIG_HOME"] = os.path.join(work, "config")
        for k in ("CODEFORGE_API_BASE", "CODEFORGE_MODEL"):
            env.pop(k, None)
    # The server's reasons for a cursor without items are logged at info.
    env.setdefault("CODEFORGE_LOG", "warn,codeforge_ide=info,codeforge_lsp=info")
    lsp = Lsp(binary, root, env)
    results = []
    try:
        for i, t in enumerate(tasks):
            uri = f"file://{root}/task_{i}.py"
            # The hole is a run of whole lines: the user's cursor is on an empty line there.
            text = t["prompt"] + "\n" + t["suffix"]
            offset = len(t["prompt"])
            lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                  "version": 1, "text": text}})
            a = ask_lsp(lsp, uri, text, offset, deadline_s)
            lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            item, secs = a["first"], a["first_s"]
            res = {"task_id": t["task_id"], "kind": kind, "answered": item is not None,
                   "latency_s": None if secs is None else round(secs, 3), "requests": a["tries"]}
            if proxy and secs is not None:
                backend = proxy.busy(a["t0"], a["t0"] + secs)
                res.update(backend_s=round(backend, 3), overhead_s=round(secs - backend, 3))
            if item is not None:
                middle = apply(text, offset, item) + "\n"  # the empty line's own newline
                ok, why = passes(t, middle)
                res.update(middle=middle, passed=ok, why=why, exact=exact(t, middle),
                           label=item.get("labelDetails", {}).get("description"))
                # What the user gets who waits for the rest (block and function items).
                final = a["final"]
                fmiddle = apply(text, offset, final) + "\n"
                fok = ok if fmiddle == middle else passes(t, fmiddle)[0]
                res.update(final_middle=fmiddle, final_passed=fok, final_exact=exact(t, fmiddle),
                           final_latency_s=round(a["final_s"], 3))
            else:
                res.update(passed=False, exact=False, final_passed=False, final_exact=False,
                           reason=server_reason(os.path.join(work, "server.log"), f"task_{i}.py"))
            results.append(res)
            print(f"[{kind} {i + 1}/{len(tasks)}] {t['task_id']}: "
                  f"{'no item' if item is None else ('pass' if res['passed'] else 'fail')}"
                  f"{'' if item is None else ' ' + format(secs, '.2f') + 's'}"
                  f"{'' if item is None else ', waited: ' + ('pass' if res['final_passed'] else 'fail') + ' ' + format(res['final_latency_s'], '.2f') + 's'}",
                  file=sys.stderr, flush=True)
    finally:
        lsp.close()
        if proxy:
            proxy.close()
    return results


def server_reason(log: str, name: str) -> str | None:
    """The server's stated reason for offering nothing in `name` (its log's last such line)."""
    reason = None
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                if "no completion" in line and f" of {name}: " in line:
                    reason = line.split(f" of {name}: ", 1)[1].strip()
    except OSError:
        pass
    return reason


def ask_http(api_base: str, model: str | None, prompt: str, max_tokens: int) -> str:
    """The plain FIM prompt posted to an OpenAI-compatible `/completions`, greedy."""
    u = urllib.parse.urlsplit(api_base)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    body = json.dumps({"model": model or "default", "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "stream": False})
    try:
        c.request("POST", u.path.rstrip("/") + "/completions", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read())
        return data["choices"][0]["text"] if r.status == 200 else ""
    finally:
        c.close()


def run_plain(binary: str, tasks: list[dict], kind: str, max_tokens: int, cache: str | None,
              api_base: str | None = None, model: str | None = None) -> list[dict]:
    env = dict(os.environ)
    if cache:
        env["CODEFORGE_CACHE_DIR"] = cache
    results = []
    for i, t in enumerate(tasks):
        prompt = f"<|fim_prefix|>{t['prompt']}<|fim_suffix|>{t['suffix']}<|fim_middle|>"
        t0 = time.monotonic()
        if api_base:
            middle = ask_http(api_base, model, prompt, max_tokens)
        else:
            r = subprocess.run([binary, "model", "run", "--json", "--max-tokens", str(max_tokens), prompt],
                               capture_output=True, env=env, timeout=600)
            middle = json.loads(r.stdout)["text"] if r.returncode == 0 else ""
        secs = time.monotonic() - t0
        if kind == "single-line":
            middle = middle.split("\n", 1)[0] + "\n"
        ok, why = passes(t, middle)
        results.append({"task_id": t["task_id"], "kind": kind, "answered": bool(middle.strip()),
                        "latency_s": round(secs, 3), "middle": middle, "passed": ok, "why": why,
                        "exact": exact(t, middle)})
        print(f"[plain {kind} {i + 1}/{len(tasks)}] {t['task_id']}: {'pass' if ok else 'fail'} {secs:.2f}s",
              file=sys.stderr, flush=True)
    return results


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(results: list[dict]) -> dict:
    n = len(results)
    lat = [r["latency_s"] for r in results if r["answered"]]
    flat = [r.get("final_latency_s", r["latency_s"]) for r in results if r["answered"]]
    over = [r["overhead_s"] for r in results if r.get("overhead_s") is not None]
    return {
        "tasks": n,
        "answered": sum(r["answered"] for r in results) / n if n else 0,
        "pass@1": sum(r["passed"] for r in results) / n if n else 0,
        "exact": sum(r["exact"] for r in results) / n if n else 0,
        "p50_s": round(statistics.median(lat), 2) if lat else None,
        "p95_s": round(pct(lat, 0.95), 2) if lat else None,
        # After waiting for the rest (lsp mode; the same as above in plain mode).
        "waited_pass@1": sum(r.get("final_passed", r["passed"]) for r in results) / n if n else 0,
        "waited_p50_s": round(statistics.median(flat), 2) if flat else None,
        "waited_p95_s": round(pct(flat, 0.95), 2) if flat else None,
        # HTTP backends (lsp mode): the latency less the time a backend request was open.
        "overhead_p50_s": round(statistics.median(over), 3) if over else None,
        "overhead_p95_s": round(pct(over, 0.95), 3) if over else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codeforge", required=True, help="the codeforge binary")
    ap.add_argument("--mode", choices=["lsp", "plain"], default="lsp")
    ap.add_argument("--single", type=int, default=200, help="single-line tasks sampled")
    ap.add_argument("--multi", type=int, default=200, help="multi-line tasks sampled")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds a cursor may wait for items")
    ap.add_argument("--max-tokens", type=int, default=128, help="plain mode: tokens per answer")
    ap.add_argument("--cache-dir", help="CODEFORGE_CACHE_DIR for the server")
    ap.add_argument("--prompt", choices=["default", "fim", "chat"], default="default",
                    help="lsp mode: the completion prompt (generation.fim), default: the server's choice")
    ap.add_argument("--prompt-tokens", type=int, help="[generation] completion_prompt_tokens for the server")
    ap.add_argument("--api-base", help="an OpenAI-compatible server (e.g. llama-server's http://127.0.0.1:8080/v1) "
                    "instead of the embedded model")
    ap.add_argument("--model", help="with --api-base: the model name to ask for")
    ap.add_argument("--label", default="", help="a name for this configuration in the table")
    ap.add_argument("--out", help="write every result as JSON here")
    args = ap.parse_args(argv)

    rows, everything = [], []
    for kind, n in [("single-line", args.single), ("multi-line", args.multi)]:
        if n <= 0:
            continue
        tasks = sample(kind, n, args.seed)
        if args.mode == "lsp":
            fim = {"default": None, "fim": True, "chat": False}[args.prompt]
            res = run_lsp(args.codeforge, tasks, kind, args.deadline, args.cache_dir, fim,
                          args.prompt_tokens, args.api_base, args.model)
        else:
            res = run_plain(args.codeforge, tasks, kind, args.max_tokens, args.cache_dir,
                            args.api_base, args.model)
        everything += res
        rows.append((kind, summary(res)))
    label = args.label or (args.mode if args.mode == "plain" else f"lsp ({args.prompt} prompt)")
    print("| configuration | set | tasks | answered | pass@1 | exact | p50 | p95 | pass@1 waited | p50 / p95 waited |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, s in rows:
        print(f"| {label} | {kind} | {s['tasks']} | {s['answered']:.1%} | {s['pass@1']:.1%} | {s['exact']:.1%} "
              f"| {s['p50_s']} s | {s['p95_s']} s | {s['waited_pass@1']:.1%} "
              f"| {s['waited_p50_s']} / {s['waited_p95_s']} s |")
    for kind, s in rows:
        if s["overhead_p50_s"] is not None:
            print(f"{kind}: CodeForge's own time (latency less the backend's) p50 {s['overhead_p50_s']} s, "
                  f"p95 {s['overhead_p95_s']} s")
    reasons = Counter(r.get("reason") or "no reason logged" for r in everything if not r["answered"])
    for why, k in reasons.most_common():
        print(f"not answered, {k}x: {why}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"label": label, "args": vars(args), "summary": dict(rows), "results": everything}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
