#!/usr/bin/env python3
"""Scores a candidate against a HumanEval problem's hidden tests (`check(ENTRY_POINT)`).

As a module:
    import score
    score.score_code("HumanEval/12", code)          -> True / False
    score.run_visible("HumanEval/12", code)         -> True / False (the docstring examples)
    score.load_problems(), score.load_samples(), score.sample_function(task_id, k)

As a command:
    score.py --problem HumanEval/12 --code FILE          # a file holding the candidate function
    score.py --workspace OUT/HumanEval_12 --generate-json OUT.json   # `codeforge generate --json`
    prints {"task_id", "passed", "reason"}; exit 0 when it passes, 1 when not, 2 on bad input.

The candidate runs in a fresh `python3` subprocess in a temporary directory with a timeout
(10 s by default): it is untrusted model output. The program is the problem's `prompt` (imports and
helper functions), then the candidate, then the hidden `check` and `check(ENTRY_POINT)`.
Only the standard library is used.
"""

from __future__ import annotations

import argparse
import ast
import functools
import gzip
import json
import os
import subprocess
import sys
import tempfile

DATA_DIR = os.environ.get("HUMANEVAL_DATA", "/work/shared/eval/humaneval")
PROBLEMS = os.path.join(DATA_DIR, "problems.jsonl.gz")
SAMPLES = os.path.join(DATA_DIR, "codegen16b_samples.jsonl.gz")
HIDDEN_TIMEOUT_S = 10.0
VISIBLE_TIMEOUT_S = 5.0


def _read_jsonl_gz(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@functools.lru_cache(maxsize=None)
def _problems(path: str) -> dict:
    return {p["task_id"]: p for p in _read_jsonl_gz(path)}


@functools.lru_cache(maxsize=None)
def _samples(path: str) -> dict:
    return {s["task_id"]: s for s in _read_jsonl_gz(path)}


def load_problems(path: str = PROBLEMS) -> dict:
    """task_id -> problem (in file order)."""
    return _problems(path)


def load_samples(path: str = SAMPLES) -> dict:
    """task_id -> {"task_id", "prompt_without_examples", "samples"}."""
    return _samples(path)


def task_id_of(name: str) -> str:
    """`HumanEval_12`, `HumanEval/12`, `12` or a path ending in one of them -> `HumanEval/12`."""
    base = os.path.basename(os.path.normpath(name))
    if base.isdigit():
        return f"HumanEval/{base}"
    return base.replace("_", "/", 1) if base.startswith("HumanEval_") else base


def dir_name_of(task_id: str) -> str:
    return task_id.replace("/", "_")


def truncate_sample(sample: str) -> str:
    """Cuts a function body at the first line that starts at column 0 with non-whitespace: the
    code after the function (`def `, `if __name__`, `print(`, `class `, a comment...)."""
    lines = sample.split("\n")
    keep = []
    for line in lines:
        if line and not line[0].isspace():
            break
        keep.append(line)
    return "\n".join(keep).rstrip() + "\n"


def entry_def_node(source: str, entry_point: str):
    """The last top-level `def entry_point` in source (None when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            found = node
    return found


def entry_function_text(prompt: str, entry_point: str) -> str:
    """The text of prompt from the entry point's `def` line on (drops imports and helpers)."""
    node = entry_def_node(prompt, entry_point)
    if node is None:
        return prompt
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(prompt.split("\n")[first - 1:])


def sample_function(task_id: str, k: int, whole_prompt: bool = True) -> str:
    """Sample k of a task as source: prompt_without_examples + truncated body. With
    whole_prompt=False only the entry point's function (no imports or helpers)."""
    s = load_samples()[task_id]
    prompt = s["prompt_without_examples"]
    if not whole_prompt:
        prompt = entry_function_text(prompt, load_problems()[task_id]["entry_point"])
    return prompt.rstrip("\n") + "\n" + truncate_sample(s["samples"][k])


def run_python(program: str, timeout: float) -> tuple[bool, str]:
    """Runs program in a fresh interpreter in a temporary directory; (exit 0?, reason)."""
    with tempfile.TemporaryDirectory(prefix="he-score-") as d:
        path = os.path.join(d, "prog.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONHASHSEED"] = "0"
        try:
            r = subprocess.run(
                [sys.executable, "-I", path],
                cwd=d,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return False, "timeout"
        if r.returncode == 0:
            return True, "passed"
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, (err[-1] if err else f"exit {r.returncode}")[:300]


def body_indent(source: str, entry_point: str) -> str:
    """The indentation of the entry point's docstring (its body), "    " when unknown."""
    node = entry_def_node(source, entry_point)
    if node is None or not node.body:
        return "    "
    line = source.split("\n")[node.body[0].lineno - 1]
    return line[: len(line) - len(line.lstrip())] or "    "


def stub_source(prompt: str, entry_point: str, body: str = "raise NotImplementedError") -> str:
    """prompt (ending with the entry point's docstring) plus one body line: a stub function."""
    return prompt.rstrip() + "\n" + body_indent(prompt, entry_point) + body + "\n"


def _program(problem: dict, code: str, tests: str) -> str:
    prelude = stub_source(problem["prompt"], problem["entry_point"], "pass")
    return prelude + "\n\n" + code.rstrip() + "\n\n" + tests + "\n"


def score_code(task_id: str, code: str | None, timeout: float = HIDDEN_TIMEOUT_S) -> bool:
    return score_code_reason(task_id, code, timeout)[0]


def score_code_reason(task_id: str, code: str | None, timeout: float = HIDDEN_TIMEOUT_S) -> tuple[bool, str]:
    """Hidden tests: the problem's prompt (imports, helpers), the candidate, `check(ENTRY)`."""
    if not code or not code.strip():
        return False, "no code"
    p = load_problems()[task_id]
    tests = p["test"] + f"\n\ncheck({p['entry_point']})\n"
    return run_python(_program(p, code, tests), timeout)


def run_visible(task_id: str, code: str | None, timeout: float = VISIBLE_TIMEOUT_S) -> bool:
    """The visible tests (the docstring examples as asserts), what the workspace holds."""
    if not code or not code.strip():
        return False
    p = load_problems()[task_id]
    return run_python(_program(p, code, "\n".join(p["given_tests"])), timeout)[0]


def code_from_generate_json(path: str) -> str | None:
    """The shown function of a `codeforge generate --json` output file (None when none)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line).get("code")
            except json.JSONDecodeError:
                continue
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", help="a workspace made by make_workspaces.py (names the problem)")
    ap.add_argument("--problem", help="HumanEval/12 (default: from the workspace's name)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--code", help="file holding the candidate function ('-' for stdin)")
    g.add_argument("--generate-json", help="a `codeforge generate --json` output file")
    ap.add_argument("--timeout", type=float, default=HIDDEN_TIMEOUT_S)
    a = ap.parse_args(argv)
    if not a.problem and not a.workspace:
        ap.error("give --problem or --workspace")
    task_id = task_id_of(a.problem or a.workspace)
    if task_id not in load_problems():
        print(f"unknown problem {task_id}", file=sys.stderr)
        return 2
    if a.code:
        code = sys.stdin.read() if a.code == "-" else open(a.code, encoding="utf-8").read()
    else:
        code = code_from_generate_json(a.generate_json)
    ok, reason = score_code_reason(task_id, code, a.timeout)
    print(json.dumps({"task_id": task_id, "passed": ok, "reason": reason}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
