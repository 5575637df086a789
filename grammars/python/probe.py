#!/usr/bin/env python3
"""Behaviour probe for one Python candidate (CodeT-style agreement ranking).

    python3 probe.py --root DIR --module-file REL_PATH --function NAME \
        --tests REL_TEST_FILE [--tests ...] [--max-inputs 40] [--timeout 2.0] [--seed 0]

Runs with the candidate already written into DIR/REL_PATH. The inputs are derived from the test
files alone (parsed with `ast`, never imported): every call `NAME(...)` / `x.NAME(...)` whose
arguments are literals is a seed input; deterministic mutations of the seeds follow. The input
set depends only on the test files, `--seed` and `--max-inputs`, never on the candidate, so every
candidate of a target is run on identical inputs in identical order.

Prints one JSON line on the real stdout:
    {"inputs": N, "outputs": [N strings], "fingerprint": sha256(outputs joined by "\\n")}
and exits 0; an outcome is the canonical repr of the result, `!ExcTypeName`, or `!timeout`.
When the module cannot be imported or the function is missing: {"error": "..."}, exit 3.
Bad usage: exit 2. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib
import importlib.util
import io
import json
import math
import os
import random
import re
import signal
import sys
import contextlib

MAX_REPR = 1000
MAX_CONSECUTIVE_TIMEOUTS = 3

# ---------------------------------------------------------------------------------------------
# Seed inputs from the test files
# ---------------------------------------------------------------------------------------------


class Input:
    """One call's arguments: positional args and keyword args (all literal values)."""

    __slots__ = ("args", "kwargs")

    def __init__(self, args, kwargs=None):
        self.args = list(args)
        self.kwargs = dict(kwargs or {})

    def key(self) -> str:
        return canon((tuple(self.args), sorted(self.kwargs.items())), strict=True)

    def __repr__(self):  # pragma: no cover - debugging aid
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def _call_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def extract_seeds(test_sources: list[str], function: str) -> list[Input]:
    """Every call of `function` (bare or as an attribute) whose arguments are all literals."""
    short = function.rsplit(".", 1)[-1]
    seeds: list[Input] = []
    for src in test_sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n.func) == short]
        # ast.walk is breadth-first; keep source order instead.
        calls.sort(key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            try:
                if any(isinstance(a, ast.Starred) for a in call.args):
                    continue
                if any(k.arg is None for k in call.keywords):
                    continue
                args = [ast.literal_eval(a) for a in call.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            seeds.append(Input(args, kwargs))
    return seeds


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------


class Domain:
    """What the seeds show about the values: used to keep mutants plausible (mostly valid)."""

    def __init__(self, values):
        self.values = list(values)  # the seeds' values at this position (for splicing)
        self.chars: list[str] = []
        self.negative_ints = False
        self.any_ints = False
        self.any_floats = False
        seen = set()

        def visit(v, depth=0):
            if depth > 6:
                return
            if isinstance(v, bool):
                return
            if isinstance(v, int):
                self.any_ints = True
                if v < 0:
                    self.negative_ints = True
            elif isinstance(v, float):
                self.any_floats = True
                if v < 0:
                    self.negative_ints = True
            elif isinstance(v, str):
                for c in v:
                    if c not in seen:
                        seen.add(c)
                        self.chars.append(c)
            elif isinstance(v, (list, tuple, set, frozenset)):
                for x in v:
                    visit(x, depth + 1)
            elif isinstance(v, dict):
                for k, x in v.items():
                    visit(k, depth + 1)
                    visit(x, depth + 1)

        for v in values:
            visit(v)
        self.chars.sort()
        self.has_upper = any(c.isupper() for c in self.chars)
        self.has_lower = any(c.islower() for c in self.chars)
        self.has_space = " " in self.chars
        self.has_digit = any(c.isdigit() for c in self.chars)
        if not self.chars:
            self.chars = list("abcxyz")

    def random_char(self, rng: random.Random) -> str:
        return self.chars[rng.randrange(len(self.chars))]


def _sortable(seq) -> bool:
    try:
        sorted(seq)
        return True
    except Exception:
        return False


def mutate_value(v, rng: random.Random, dom: Domain, depth: int = 0) -> list:
    """Deterministic list of variants of `v` (may contain duplicates or `v` itself)."""
    out: list = []
    if v is None:
        return [None]
    if isinstance(v, bool):
        return [not v]
    if isinstance(v, int):
        out = [v + 1, v - 1, v * 2, 0, v + rng.randint(2, 12), abs(v) + rng.randint(5, 15), 1]
        if dom.negative_ints:
            out += [-v, -abs(v) - 1]
        else:
            out = [x for x in out if x >= 0]
        if dom.any_floats:  # the seeds mix ints and floats here: 3 and 3.0 may differ
            out += [float(v), v + 0.5]
        return out
    if isinstance(v, float):
        out = [v + 0.5, v * 2, 0.0, float(round(v)), round(v + rng.uniform(-1.5, 1.5), 2), v / 3]
        if dom.negative_ints:
            out += [-v]
        else:
            out = [x for x in out if x >= 0]
        if dom.any_ints and math.isfinite(v):
            out += [int(round(v))]
        return out
    if isinstance(v, str):
        out = ["", v[::-1]]
        if v:
            i = rng.randrange(len(v))
            out.append(v[:i] + v[i + 1:])  # drop one char
            j = rng.randrange(len(v))
            out.append(v[:j] + v[j] + v[j:])  # duplicate one char
            out.append(v[0])
            out.append(v + v[: rng.randint(1, len(v))])
        k = rng.randint(0, len(v))
        out.append(v[:k] + dom.random_char(rng) + v[k:])  # insert a plausible char
        out.append(v + dom.random_char(rng) + dom.random_char(rng))
        if dom.has_upper or dom.has_lower:
            out.append(v.swapcase())
            out.append(v.upper() if rng.random() < 0.5 else v.lower())
        if dom.has_space:
            out.append(" " + v)
            out.append(v + "  ")
        if dom.has_digit:
            out.append(v + str(rng.randint(0, 9)))
        if depth == 0:
            others = [o for o in dom.values if isinstance(o, str) and o != v]
            if others:
                o = others[rng.randrange(len(others))]
                i = rng.randint(0, len(v))
                out.append(v[:i] + o + v[i:])
        return out
    if isinstance(v, (list, tuple)):
        kind = type(v)
        lst = list(v)
        out.append([])
        out.append(lst[::-1])
        if _sortable(lst):
            out.append(sorted(lst))
            out.append(sorted(lst, reverse=True))
        if lst:
            i = rng.randrange(len(lst))
            out.append(lst[:i] + lst[i + 1:])
            j = rng.randrange(len(lst))
            out.append(lst[:j] + [lst[j]] + lst[j:])
            out.append(lst[:1])
            if depth < 3:
                k = rng.randrange(len(lst))
                subs = mutate_value(lst[k], rng, dom, depth + 1)
                if subs:
                    out.append(lst[:k] + [subs[rng.randrange(len(subs))]] + lst[k + 1:])
                m = rng.randrange(len(lst))
                subs = mutate_value(lst[m], rng, dom, depth + 1)
                if subs:
                    out.append(lst + [subs[rng.randrange(len(subs))]])
                # mutate every element once
                whole = []
                for x in lst:
                    s = mutate_value(x, rng, dom, depth + 1)
                    whole.append(s[rng.randrange(len(s))] if s else x)
                out.append(whole)
            out.append(lst + lst[: rng.randint(1, len(lst))])
            if depth < 3:
                # a longer list of mutated elements
                longer = []
                for _ in range(rng.randint(len(lst) + 1, len(lst) + 5)):
                    s = mutate_value(lst[rng.randrange(len(lst))], rng, dom, depth + 1)
                    longer.append(s[rng.randrange(len(s))] if s else lst[0])
                out.append(longer)
        if depth == 0:
            # splice with another seed's value at this position: mixes what the seeds show
            others = [o for o in dom.values if isinstance(o, (list, tuple)) and list(o) != lst]
            if others:
                o = list(others[rng.randrange(len(others))])
                i = rng.randint(0, len(lst))
                out.append(lst[:i] + o + lst[i:])
        if kind is tuple:
            # a tuple is usually a fixed-shape record: keep its length
            keep = [tuple(x) for x in out if len(x) == len(lst)] if lst else []
            return keep or [tuple(x) for x in out]
        return out
    if isinstance(v, (set, frozenset)):
        kind = type(v)
        lst = sorted(v, key=canon)
        return [kind(x) for x in mutate_value(lst, rng, dom, depth) if _hashable_all(x)]
    if isinstance(v, dict):
        items = list(v.items())
        out.append({})
        if items:
            i = rng.randrange(len(items))
            out.append(dict(items[:i] + items[i + 1:]))
            if depth < 3:
                k = rng.randrange(len(items))
                subs = mutate_value(items[k][1], rng, dom, depth + 1)
                if subs:
                    d = dict(items)
                    d[items[k][0]] = subs[rng.randrange(len(subs))]
                    out.append(d)
                m = rng.randrange(len(items))
                keys = mutate_value(items[m][0], rng, dom, depth + 1)
                for nk in keys[:3]:
                    try:
                        if nk not in v:
                            d = dict(items)
                            d[nk] = items[m][1]
                            out.append(d)
                            break
                    except TypeError:
                        break
        return out
    if isinstance(v, bytes):
        return [b"", v[::-1], v[:-1], v + v[-1:]]
    if isinstance(v, complex):
        return [v + 1, v * 1j, 0j]
    return [v]


def _hashable_all(xs) -> bool:
    try:
        for x in xs:
            hash(x)
        return True
    except TypeError:
        return False


def build_inputs(seeds: list[Input], max_inputs: int, seed: int) -> list[Input]:
    """Seeds first (deduplicated), then mutants round-robin over the seeds, capped."""
    rng = random.Random(seed)
    out: list[Input] = []
    seen: set[str] = set()

    def add(inp: Input) -> bool:
        if len(out) >= max_inputs:
            return False
        try:
            k = inp.key()
        except Exception:
            return True
        if k in seen:
            return True
        seen.add(k)
        out.append(inp)
        return True

    for s in seeds:
        add(s)
    if not seeds or len(out) >= max_inputs:
        return out[:max_inputs]

    # Per-position domains from every seed.
    nargs = max(len(s.args) for s in seeds)
    doms = []
    for i in range(nargs):
        doms.append(Domain([s.args[i] for s in seeds if len(s.args) > i]))
    kwdom = Domain([v for s in seeds for v in s.kwargs.values()])

    def mutants_of(base: list[Input]) -> list[list[Input]]:
        per_seed = []
        for s in base:
            ms: list[Input] = []
            for i, a in enumerate(s.args):
                for m in mutate_value(a, rng, doms[i] if i < len(doms) else kwdom):
                    args = list(s.args)
                    args[i] = m
                    ms.append(Input(args, s.kwargs))
            for k, a in s.kwargs.items():
                for m in mutate_value(a, rng, kwdom):
                    kw = dict(s.kwargs)
                    kw[k] = m
                    ms.append(Input(s.args, kw))
            if len(s.args) > 1:
                # every argument mutated at once
                for _ in range(2):
                    args = []
                    for i, a in enumerate(s.args):
                        vs = mutate_value(a, rng, doms[i])
                        args.append(vs[rng.randrange(len(vs))] if vs else a)
                    ms.append(Input(args, s.kwargs))
            rng.shuffle(ms)
            per_seed.append(ms)
        return per_seed

    generation = list(out)
    for _ in range(3):  # first-order mutants, then mutants of mutants
        per_seed = mutants_of(generation)
        made: list[Input] = []
        longest = max((len(m) for m in per_seed), default=0)
        for r in range(longest):
            for ms in per_seed:
                if r < len(ms):
                    before = len(out)
                    add(ms[r])
                    if len(out) > before:
                        made.append(out[-1])
                    if len(out) >= max_inputs:
                        return out
        if not made:
            break
        generation = made
    return out


# ---------------------------------------------------------------------------------------------
# Canonical outcomes
# ---------------------------------------------------------------------------------------------

_ADDR = re.compile(r" at 0x[0-9a-fA-F]+")


def _canon_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    y = float("%.9g" % x)
    if y == 0:
        y = 0.0
    if y.is_integer() and abs(y) < 1e15:
        return str(int(y))  # 2.0 == 2 for the tests' `==`; agree on it
    return repr(y)


def canon(v, depth: int = 0, strict: bool = False) -> str:
    """Deterministic repr: floats to 9 significant digits, sets and dicts sorted, no addresses.
    An integral float reads like the int (`2.0 == 2` for the tests) unless strict."""
    if depth > 50:
        return "..."
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        return repr(v) if strict else _canon_float(v)
    if isinstance(v, complex):
        return "complex(%s,%s)" % (_canon_float(v.real), _canon_float(v.imag))
    if isinstance(v, (str, bytes)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(canon(x, depth + 1, strict) for x in v) + "]"
    if isinstance(v, tuple):
        inner = ", ".join(canon(x, depth + 1, strict) for x in v)
        return "(" + inner + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, (set, frozenset)):
        name = "set" if isinstance(v, set) else "frozenset"
        return name + "{" + ", ".join(sorted(canon(x, depth + 1, strict) for x in v)) + "}"
    if isinstance(v, dict):
        items = sorted((canon(k, depth + 1, strict), canon(x, depth + 1, strict)) for k, x in v.items())
        return "{" + ", ".join(f"{k}: {x}" for k, x in items) + "}"
    try:
        r = repr(v)
    except Exception as e:  # a broken __repr__ is behaviour too
        r = "<repr raised %s>" % type(e).__name__
    return _ADDR.sub("", r)


def clip(s: str) -> str:
    if len(s) <= MAX_REPR:
        return s
    digest = hashlib.sha256(s.encode("utf-8", "backslashreplace")).hexdigest()[:16]
    return s[:MAX_REPR] + "…[len=%d sha=%s]" % (len(s), digest)


# ---------------------------------------------------------------------------------------------
# Running the candidate
# ---------------------------------------------------------------------------------------------


class _Timeout(BaseException):
    """Raised by the timer; a BaseException so `except Exception` in candidates lets it through."""


class Runner:
    def __init__(self, real_stdout_fd: int, timeout: float):
        self.fd = real_stdout_fd
        self.timeout = timeout
        self.outputs: list[str] = []
        self.total = 0
        self.fires = 0

    # The timer keeps firing every 0.1 s after the deadline; a candidate that swallows the
    # exception over and over (bare `except:` in a loop) is cut off hard after ~3 s more.
    def _on_alarm(self, signum, frame):
        self.fires += 1
        if self.fires > 30:
            self.outputs.append("!timeout")
            self.finish()
        raise _Timeout()

    def arm(self, seconds: float):
        self.fires = 0
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)

    @staticmethod
    def disarm():
        signal.setitimer(signal.ITIMER_REAL, 0, 0)

    def finish(self):
        """Writes the JSON line (padding with !timeout) on the real stdout and exits at once."""
        self.disarm()
        outs = list(self.outputs[: self.total])
        outs += ["!timeout"] * (self.total - len(outs))
        fp = hashlib.sha256("\n".join(outs).encode("utf-8", "backslashreplace")).hexdigest()
        emit(self.fd, {"inputs": self.total, "outputs": outs, "fingerprint": fp})
        os._exit(0)

    def call(self, fn, inp: Input) -> str:
        sink = io.StringIO()
        try:
            args = copy.deepcopy(inp.args)
            kwargs = copy.deepcopy(inp.kwargs)
            self.arm(self.timeout)
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    result = fn(*args, **kwargs)
                    text = clip(canon(result))
            finally:
                self.disarm()
            return text
        except _Timeout:
            return "!timeout"
        except BaseException as e:  # SystemExit, KeyboardInterrupt from candidates included
            self.disarm()
            return "!" + type(e).__name__


def emit(fd: int, obj) -> None:
    data = (json.dumps(obj, ensure_ascii=True) + "\n").encode()
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _module_name_for(root: str, rel: str) -> str | None:
    """Dotted name when the file sits in a package importable from root or root/src."""
    path = os.path.normpath(os.path.join(root, rel))
    for base in (os.path.join(root, "src"), root):
        base = os.path.normpath(base)
        if not path.startswith(base + os.sep):
            continue
        parts = os.path.relpath(path, base)[:-3].split(os.sep)
        if len(parts) < 2:
            continue
        pkg_dir = base
        ok = True
        for p in parts[:-1]:
            pkg_dir = os.path.join(pkg_dir, p)
            if not os.path.isfile(os.path.join(pkg_dir, "__init__.py")):
                ok = False
                break
        if ok and all(p.isidentifier() for p in parts):
            return ".".join(parts)
    return None


def load_function(root: str, rel: str, name: str):
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        raise LookupError(f"module file not found: {rel}")
    for p in (os.path.join(root, "src"), root):
        if p not in sys.path:
            sys.path.insert(0, p)
    dotted = _module_name_for(root, rel)
    if dotted:
        mod = importlib.import_module(dotted)
    else:
        stem = os.path.splitext(os.path.basename(rel))[0]
        modname = stem if stem.isidentifier() and stem not in sys.modules else "_probe_candidate"
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {rel}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    if "." not in name:
        fn = getattr(mod, name, None)
        if fn is None or not callable(fn):
            raise LookupError(f"function `{name}` not found in {rel}")
        return fn
    cls_name, meth = name.split(".", 1)
    cls = getattr(mod, cls_name, None)
    if cls is None or "." in meth:
        raise LookupError(f"`{name}` not found in {rel}")
    raw = cls.__dict__.get(meth)
    if raw is None:
        raise LookupError(f"`{name}` not found in {rel}")
    if isinstance(raw, (staticmethod, classmethod)):
        return getattr(cls, meth)
    # A plain method: only when the class can be built without arguments.
    def bound(*a, **k):
        return getattr(cls(), meth)(*a, **k)
    return bound


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="behaviour probe for one candidate")
    ap.add_argument("--root", required=True)
    ap.add_argument("--module-file", required=True)
    ap.add_argument("--function", required=True)
    ap.add_argument("--tests", action="append", default=[])
    ap.add_argument("--max-inputs", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--print-inputs", action="store_true", help="list the inputs (debugging) and exit")
    a = ap.parse_args(argv)

    root = os.path.abspath(a.root)
    os.chdir(root)
    # The probe's own directory is no place to import the workspace's modules from.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    # Keep the real stdout; from here on fd 1 and 2 go to /dev/null so nothing the candidate
    # prints (even from C or os.write) can corrupt the JSON line; stdin is empty.
    real = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = io.StringIO()
    sys.stderr = io.StringIO()

    sources = []
    for t in a.tests:
        try:
            with open(os.path.join(root, t), encoding="utf-8", errors="replace") as f:
                sources.append(f.read())
        except OSError:
            pass
    inputs = build_inputs(extract_seeds(sources, a.function), max(0, a.max_inputs), a.seed)

    if a.print_inputs:
        emit(real, {"inputs": [repr(i) for i in inputs]})
        os._exit(0)

    runner = Runner(real, a.timeout)
    runner.total = len(inputs)
    signal.signal(signal.SIGALRM, runner._on_alarm)
    try:
        runner.arm(max(10.0, a.timeout * 5))
        try:
            fn = load_function(root, a.module_file, a.function)
        finally:
            runner.disarm()
    except _Timeout:
        emit(real, {"error": "importing the module timed out"})
        os._exit(3)
    except BaseException as e:
        emit(real, {"error": f"{type(e).__name__}: {e}"[:2000]})
        os._exit(3)

    streak = 0
    for inp in inputs:
        out = runner.call(fn, inp)
        runner.outputs.append(out)
        streak = streak + 1 if out == "!timeout" else 0
        if streak >= MAX_CONSECUTIVE_TIMEOUTS:
            break
    runner.finish()
    return 0  # not reached


def _ensure_hash_seed():
    """Re-executes with PYTHONHASHSEED=0 so set/dict iteration of strings is reproducible."""
    if os.environ.get("PYTHONHASHSEED") != "0" and not os.environ.get("_CODEFORGE_PROBE_CHILD"):
        env = dict(os.environ, PYTHONHASHSEED="0", _CODEFORGE_PROBE_CHILD="1")
        try:
            os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
        except OSError:
            pass


if __name__ == "__main__":
    _ensure_hash_seed()
    sys.exit(main())
