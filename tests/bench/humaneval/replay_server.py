#!/usr/bin/env python3
"""An OpenAI-compatible server that replays CodeGen-16B's recorded HumanEval samples.

    replay_server.py [--port 0] [--samples codegen16b_samples.jsonl.gz]

Port 0 picks a free one; the first stdout line is always `PORT=<n>`.

POST /v1/chat/completions and /v1/completions: the problem is the one whose entry point the request
asks for (header `X-Replay-Task: HumanEval/12` wins; else the function named in the last user
message's "Implement `NAME`", else the longest `def NAME(` there, else in any message; entry points
shared by several problems are told apart by their `def` line). Each request hands out the task's
next unused samples in order (one cursor per task), `n` of them (default 1), each as a choice whose
content is "```python\\n<the entry point's function: signature, docstring without examples, sample
body cut where the function ends>\\n```" (`--whole-prompt`: all of prompt_without_examples + body).
When the samples are exhausted the choices hold an empty block. Refinement requests are answered
the same way (the next samples); test-writing requests get an empty block and use no sample.
`stream: true` answers with server-sent events.

POST /reset resets the cursors (optionally {"task": "HumanEval/12"}); GET /v1/models lists
"replay"; GET /stats shows the cursors and how many requests were served.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402

MODEL = "replay"
_DEF = re.compile(r"def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_IMPLEMENT = re.compile(r"Implement\s+`([^`]+)`")
_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub("", s)


class Replay:
    def __init__(self, samples_path: str, whole_prompt: bool = False):
        self.samples = score.load_samples(samples_path)
        problems = score.load_problems()
        self.by_name: dict[str, list[str]] = {}
        self.def_line: dict[str, str] = {}
        self.answers: dict[str, list[str]] = {}
        for task_id, s in self.samples.items():
            entry = problems[task_id]["entry_point"] if task_id in problems else None
            if entry is None:
                m = list(_DEF.finditer(s["prompt_without_examples"]))
                entry = m[-1].group(1) if m else None
            if entry is None:
                continue
            self.by_name.setdefault(entry, []).append(task_id)
            func = score.entry_function_text(s["prompt_without_examples"], entry)
            self.def_line[task_id] = _norm(func.split(":\n", 1)[0])
            head = (s["prompt_without_examples"] if whole_prompt else func).rstrip("\n") + "\n"
            self.answers[task_id] = [head + score.truncate_sample(b) for b in s["samples"]]
        self.lock = threading.Lock()
        self.cursor: dict[str, int] = {}
        self.requests = 0
        self.unmatched = 0

    def reset(self, task: str | None = None):
        with self.lock:
            if task:
                self.cursor.pop(task, None)
            else:
                self.cursor.clear()
                self.requests = 0
                self.unmatched = 0

    def _pick(self, names: list[str], text: str) -> str | None:
        """The task for the first name (in preference order) that is an entry point."""
        flat = _norm(text)
        for name in names:
            tasks = self.by_name.get(name)
            if not tasks:
                continue
            if len(tasks) == 1:
                return tasks[0]
            for t in tasks:  # shared entry point: the one whose def line is in the request
                if self.def_line[t] in flat:
                    return t
            return tasks[0]
        return None

    def task_for(self, messages: list[dict], header: str | None) -> str | None:
        if header:
            t = header.strip()
            t = score.task_id_of(t) if not t.startswith("HumanEval/") else t
            if t in self.samples:
                return t
        users = [m for m in messages if m.get("role") == "user"]
        last = _content(users[-1]) if users else ""
        everything = "\n".join(_content(m) for m in messages)
        for text in (last, everything):
            names = [q.rsplit(".", 1)[-1].rsplit("::", 1)[-1] for q in _IMPLEMENT.findall(text)]
            names += sorted(set(_DEF.findall(text)), key=len, reverse=True)
            t = self._pick(names, everything)
            if t:
                return t
        return None

    def take(self, task: str, n: int) -> list[str]:
        with self.lock:
            i = self.cursor.get(task, 0)
            got = self.answers[task][i: i + n]
            self.cursor[task] = i + len(got)
        return got + [""] * (n - len(got))


def _content(m: dict) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # [{"type": "text", "text": ...}]
        return "\n".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def _fence(code: str) -> str:
    return "```python\n" + code.rstrip("\n") + ("\n" if code.strip() else "") + "```"


def _is_test_request(messages: list[dict]) -> bool:
    users = [m for m in messages if m.get("role") == "user"]
    return bool(users) and "tests for `" in _content(users[-1]) and "Write 3 to 5 tests" in _content(users[-1])


class Handler(BaseHTTPRequestHandler):
    server_version = "ReplayServer/1"
    protocol_version = "HTTP/1.1"
    replay: Replay = None  # set by serve()

    def log_message(self, fmt, *args):
        if os.environ.get("REPLAY_LOG"):
            sys.stderr.write("replay: " + fmt % args + "\n")

    def _send_json(self, code: int, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        return json.loads(raw)

    def do_GET(self):
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "replay"}]})
        elif self.path.rstrip("/") == "/stats":
            r = self.replay
            with r.lock:
                self._send_json(200, {"requests": r.requests, "unmatched": r.unmatched, "cursors": dict(r.cursor)})
        elif self.path.rstrip("/") in ("", "/health"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        try:
            body = self._body()
        except (ValueError, json.JSONDecodeError):
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/reset":
            self.replay.reset(body.get("task") if isinstance(body, dict) else None)
            self._send_json(200, {"ok": True})
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            self._complete(body, chat=True)
        elif path in ("/v1/completions", "/completions"):
            self._complete(body, chat=False)
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _complete(self, body: dict, chat: bool):
        r = self.replay
        if chat:
            messages = body.get("messages") or []
        else:
            prompt = body.get("prompt") or ""
            if isinstance(prompt, list):
                prompt = "\n".join(map(str, prompt))
            messages = [{"role": "user", "content": prompt}]
        try:
            n = max(1, int(body.get("n") or 1))
        except (TypeError, ValueError):
            n = 1
        with r.lock:
            r.requests += 1
        if _is_test_request(messages):
            texts = [_fence("")] * n
            task = None
        else:
            task = r.task_for(messages, self.headers.get("X-Replay-Task"))
            if task is None:
                with r.lock:
                    r.unmatched += 1
                self._send_json(400, {"error": {"message": "replay: no HumanEval entry point in the request"}})
                return
            texts = [_fence(c) for c in r.take(task, n)]
        created = int(time.time())
        rid = f"replay-{r.requests}"
        prompt_tokens = sum(len(_content(m).split()) for m in messages)
        completion_tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if body.get("stream"):
            self._stream(texts, chat, rid, created, usage, body)
            return
        if chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                       for i, t in enumerate(texts)]
            obj = "chat.completion"
        else:
            choices = [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None}
                       for i, t in enumerate(texts)]
            obj = "text_completion"
        self._send_json(200, {"id": rid, "object": obj, "created": created, "model": MODEL,
                              "choices": choices, "usage": usage, "replay_task": task})

    def _stream(self, texts, chat, rid, created, usage, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choice, with_usage=False):
            d = {"id": rid, "object": obj, "created": created, "model": MODEL, "choices": [choice]}
            if with_usage:
                d["usage"] = usage
            return ("data: " + json.dumps(d) + "\n\n").encode()

        try:
            for i, t in enumerate(texts):
                if chat:
                    c = {"index": i, "delta": {"role": "assistant", "content": t}, "finish_reason": None}
                else:
                    c = {"index": i, "text": t, "finish_reason": None}
                self.wfile.write(chunk(c))
            for i in range(len(texts)):
                c = {"index": i, "delta": {}, "finish_reason": "stop"} if chat else \
                    {"index": i, "text": "", "finish_reason": "stop"}
                self.wfile.write(chunk(c, with_usage=(i == len(texts) - 1)))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading once its code block closed


def serve(port: int, samples: str, whole_prompt: bool = False) -> ThreadingHTTPServer:
    Handler.replay = Replay(samples, whole_prompt)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    return httpd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="OpenAI-compatible replay of recorded HumanEval samples")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--samples", default=score.SAMPLES)
    ap.add_argument("--whole-prompt", action="store_true",
                    help="answer with all of prompt_without_examples (imports, helpers) + the sample, "
                         "not just the entry point's function")
    a = ap.parse_args(argv)
    httpd = serve(a.port, a.samples, a.whole_prompt)
    print(f"PORT={httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
