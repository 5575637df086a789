#!/usr/bin/env python3
"""Writes one workspace per HumanEval problem:

    make_workspaces.py OUT_DIR [--limit N]

OUT_DIR/HumanEval_12/
    solution.py        the prompt the model saw (prompt_without_examples: imports, helpers,
                       signature and the docstring without its examples) + `raise NotImplementedError`
    test_solution.py   `from solution import *` and one `def test_visible_K(): assert ...` per
                       visible test (the docstring examples); the hidden tests are never written
    pytest.ini         empty (marks the root for pytest)

Prints one line per workspace: `<dir> <1-based line of the entry point's def>` (the FILE:LINE
target for `codeforge generate`), and writes OUT_DIR/index.json with the same. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402


def workspace_files(task_id: str) -> dict[str, str]:
    p = score.load_problems()[task_id]
    s = score.load_samples()[task_id]
    solution = score.stub_source(s["prompt_without_examples"], p["entry_point"])
    tests = ["from solution import *  # noqa: F401,F403", ""]
    for k, line in enumerate(p["given_tests"], 1):
        tests += ["", f"def test_visible_{k}():", "    " + line.strip(), ""]
    return {"solution.py": solution, "test_solution.py": "\n".join(tests).rstrip() + "\n", "pytest.ini": ""}


def entry_line(task_id: str) -> int:
    p = score.load_problems()[task_id]
    src = score.stub_source(score.load_samples()[task_id]["prompt_without_examples"], p["entry_point"])
    node = score.entry_def_node(src, p["entry_point"])
    return node.lineno if node else 1


def make(out_dir: str, limit: int | None = None) -> list[dict]:
    os.makedirs(out_dir, exist_ok=True)
    index = []
    for i, task_id in enumerate(score.load_problems()):
        if limit is not None and i >= limit:
            break
        d = os.path.join(out_dir, score.dir_name_of(task_id))
        os.makedirs(d, exist_ok=True)
        for name, text in workspace_files(task_id).items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        index.append({
            "task_id": task_id,
            "dir": os.path.abspath(d),
            "file": "solution.py",
            "line": entry_line(task_id),
            "entry_point": score.load_problems()[task_id]["entry_point"],
        })
    with open(os.path.join(out_dir, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="one workspace per HumanEval problem")
    ap.add_argument("out_dir")
    ap.add_argument("--limit", type=int, default=None, help="only the first N problems")
    a = ap.parse_args(argv)
    for w in make(a.out_dir, a.limit):
        print(f"{w['dir']} {w['line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
