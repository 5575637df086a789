#!/usr/bin/env python3
"""A scripted OpenAI-compatible server for the editor tests (standard library only).

    python3 stub_openai.py RULES.json LOG.jsonl [PORT_FILE]

Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE or printed as `PORT=N`) and answers
POST /v1/chat/completions, both as one JSON document and, when the request says `"stream": true`,
as server-sent events (`data: {...}` chunks ending with `data: [DONE]`). The answer is the first
rule in RULES.json (`[{"match": "text", "answer": "..."}]`) whose `match` occurs in the request's
messages; no rule matching is a 400. Every request is appended to LOG.jsonl with its
Authorization header and the rule that answered, so tests can assert what the model was asked.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RULES = json.load(open(sys.argv[1], encoding="utf-8"))
LOG = sys.argv[2]
PORT_FILE = sys.argv[3] if len(sys.argv) > 3 else None
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "bad json"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        text = "\n".join(
            m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in req.get("messages", [])
        )
        rule = next((r for r in RULES if r["match"] in text), None)
        with LOCK, open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "model": req.get("model"),
                "stream": bool(req.get("stream")),
                "n": req.get("n", 1),
                "rule": rule["match"] if rule else None,
                "prompt": text,
            }) + "\n")
        if rule is None:
            self.send_json(400, {"error": {"message": "stub: no rule matches this prompt"}})
            return
        n = max(1, int(req.get("n") or 1))
        answer = rule["answer"]
        if not req.get("stream"):
            self.send_json(200, {
                "id": "stub-1", "object": "chat.completion", "model": req.get("model"),
                "choices": [{"index": i, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                            for i in range(n)],
                "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": len(answer) // 4,
                          "total_tokens": (len(text) + len(answer)) // 4},
            })
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        pieces = [answer[i:i + 24] for i in range(0, len(answer), 24)] or [""]
        try:
            for i in range(n):
                for p in pieces:
                    chunk = {"id": "stub-1", "object": "chat.completion.chunk", "model": req.get("model"),
                             "choices": [{"index": i, "delta": {"content": p}, "finish_reason": None}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                done = {"id": "stub-1", "object": "chat.completion.chunk",
                        "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(b"data: " + json.dumps(done).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    if PORT_FILE:
        with open(PORT_FILE + ".part", "w") as f:
            f.write(str(port))
        import os
        os.replace(PORT_FILE + ".part", PORT_FILE)
    else:
        print(f"PORT={port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
