"""Tests of probe.py (pytest; standard library otherwise)."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import probe  # noqa: E402

PROBE = os.path.join(HERE, "probe.py")

TESTS = textwrap.dedent(
    """
    import solution
    from solution import clamp_sum

    def test_basic():
        assert clamp_sum([1, 2, 3], 10) == 6
        assert clamp_sum([5, 5, 5], 7) == 7

    def test_nested():
        assert [clamp_sum([4], 2)] == [2]
        assert solution.clamp_sum([], 3) == 0
        x = 5
        assert clamp_sum([x], 3) == 3           # not literal: skipped
        assert clamp_sum(values=[1, 1], limit=1) == 1
    """
)

GOOD = """
def clamp_sum(values, limit):
    total = sum(values)
    return total if total < limit else limit
"""

GOOD_TOO = """
def clamp_sum(values, limit):
    t = 0
    for v in values:
        t += v
    return min(t, limit)
"""

# Right on every seed, off by one when the total is exactly the limit (no seed has that).
SUBTLY_WRONG = """
def clamp_sum(values, limit):
    total = sum(values)
    if total >= limit:
        return limit - (total == limit)
    return total
"""


def make_ws(tmp_path, candidate, tests=TESTS, name="solution.py"):
    (tmp_path / name).write_text(textwrap.dedent(candidate))
    (tmp_path / "test_solution.py").write_text(tests)
    return tmp_path


def run_probe(root, function="clamp_sum", extra=(), timeout=60):
    cmd = [sys.executable, PROBE, "--root", str(root), "--module-file", "solution.py",
           "--function", function, "--tests", "test_solution.py", *extra]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    lines = r.stdout.decode().strip().splitlines()
    assert len(lines) == 1, r.stdout
    return r.returncode, json.loads(lines[0])


def test_seed_extraction_from_asserts():
    seeds = probe.extract_seeds([TESTS], "clamp_sum")
    got = [(s.args, s.kwargs) for s in seeds]
    assert got == [
        ([[1, 2, 3], 10], {}),
        ([[5, 5, 5], 7], {}),
        ([[4], 2], {}),
        ([[], 3], {}),
        ([], {"values": [1, 1], "limit": 1}),
    ]


def test_seed_extraction_ignores_other_functions_and_bad_files():
    src = "assert f(1) == g(2)\nassert other.f((1, 'a'), None, -3.5)\n"
    seeds = probe.extract_seeds([src, "def broken(:\n"], "f")
    assert [s.args for s in seeds] == [[1], [(1, "a"), None, -3.5]]


def test_inputs_are_deterministic_and_seeds_come_first():
    seeds = probe.extract_seeds([TESTS], "clamp_sum")
    a = probe.build_inputs(seeds, 40, 0)
    b = probe.build_inputs(probe.extract_seeds([TESTS], "clamp_sum"), 40, 0)
    assert [i.key() for i in a] == [i.key() for i in b]
    assert len(a) == 40
    assert [i.key() for i in a[:5]] == [s.key() for s in seeds]
    assert len({i.key() for i in a}) == len(a)  # deduplicated
    c = probe.build_inputs(seeds, 40, 1)
    assert [i.key() for i in c[:5]] == [s.key() for s in seeds]
    assert len(probe.build_inputs(seeds, 7, 0)) == 7


def test_mutations_cover_types():
    rng = __import__("random").Random(0)
    dom = probe.Domain(["ab", 3, [1, 2]])
    assert "" in probe.mutate_value("abc", rng, dom)
    assert "cba" in probe.mutate_value("abc", rng, dom)
    assert [] in probe.mutate_value([3, 1, 2], rng, dom)
    assert [1, 2, 3] in probe.mutate_value([3, 1, 2], rng, dom)
    assert 4 in probe.mutate_value(3, rng, dom)
    assert probe.mutate_value(None, rng, dom) == [None]
    assert probe.mutate_value(True, rng, dom) == [False]
    assert all(isinstance(x, tuple) for x in probe.mutate_value((1, 2), rng, dom))
    assert {} in probe.mutate_value({"a": 1}, rng, dom)


def test_same_inputs_for_every_candidate(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_ws(tmp_path / "a", GOOD)
    b = make_ws(tmp_path / "b", "def clamp_sum(values, limit):\n    raise ValueError\n")
    _, ia = run_probe(a, extra=["--print-inputs"])
    _, ib = run_probe(b, extra=["--print-inputs"])
    assert ia == ib and len(ia["inputs"]) == 40


def test_equal_candidates_agree_and_subtly_wrong_one_differs(tmp_path):
    outs = {}
    for name, src in [("good", GOOD), ("good_too", GOOD_TOO), ("wrong", SUBTLY_WRONG)]:
        d = tmp_path / name
        d.mkdir()
        rc, out = run_probe(make_ws(d, src))
        assert rc == 0
        assert out["inputs"] == len(out["outputs"]) == 40
        outs[name] = out
    assert outs["good"]["fingerprint"] == outs["good_too"]["fingerprint"]
    assert outs["good"]["outputs"][:5] == outs["wrong"]["outputs"][:5]  # the seeds agree
    assert outs["good"]["fingerprint"] != outs["wrong"]["fingerprint"]
    # twice the same candidate: the same answer
    rc, again = run_probe(tmp_path / "good")
    assert again == outs["good"]


def test_infinite_loop_times_out_without_hanging(tmp_path):
    src = """
    def clamp_sum(values, limit):
        if limit == 10:
            return 6
        while True:
            try:
                pass
            except BaseException:
                pass
    """
    t0 = time.time()
    rc, out = run_probe(make_ws(tmp_path, src), extra=["--timeout", "0.3"], timeout=30)
    assert rc == 0
    assert time.time() - t0 < 15
    assert out["outputs"][0] == "6"
    assert out["outputs"][1:] == ["!timeout"] * (out["inputs"] - 1)
    assert len(out["outputs"]) == out["inputs"] == 40


def test_loop_that_swallows_the_timeout_is_cut_off(tmp_path):
    src = """
    def clamp_sum(values, limit):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                continue
    """
    t0 = time.time()
    rc, out = run_probe(make_ws(tmp_path, src), extra=["--timeout", "0.2"], timeout=30)
    assert rc == 0 and time.time() - t0 < 15
    assert out["outputs"] == ["!timeout"] * out["inputs"]


def test_exceptions_are_outcomes(tmp_path):
    src = """
    import sys
    def clamp_sum(values, limit):
        if not values:
            raise ValueError("empty")
        if limit == 7:
            sys.exit(3)
        return values[10]
    """
    rc, out = run_probe(make_ws(tmp_path, src))
    assert rc == 0
    assert out["outputs"][:4] == ["!IndexError", "!SystemExit", "!IndexError", "!ValueError"]


def test_stdout_noise_is_ignored(tmp_path):
    src = """
    import os, sys
    print("import-time noise")
    def clamp_sum(values, limit):
        print("noise", values)
        sys.stderr.write("more noise\\n")
        os.write(1, b"raw fd noise\\n")
        return min(sum(values), limit)
    """
    d = tmp_path / "noisy"
    d.mkdir()
    rc, noisy = run_probe(make_ws(d, src))
    d2 = tmp_path / "quiet"
    d2.mkdir()
    _, quiet = run_probe(make_ws(d2, GOOD))
    assert rc == 0
    assert noisy["fingerprint"] == quiet["fingerprint"]


def test_floats_sets_and_dicts_are_canonical():
    assert probe.canon(0.1 + 0.2) == probe.canon(0.3)
    assert probe.canon(2.0) == probe.canon(2)
    assert probe.canon({"b", "a", "c"}) == "set{'a', 'b', 'c'}"
    assert probe.canon({2: "x", 1: "y"}) == probe.canon({1: "y", 2: "x"})
    assert probe.canon(object()).startswith("<object object")
    assert " at 0x" not in probe.canon(object())
    big = probe.clip(probe.canon(list(range(10000))))
    assert len(big) < 1100


def test_huge_output_is_clipped(tmp_path):
    src = """
    def clamp_sum(values, limit):
        return "x" * 10_000_000
    """
    rc, out = run_probe(make_ws(tmp_path, src))
    assert rc == 0
    assert all(len(o) < 1100 for o in out["outputs"])


def test_missing_function_or_broken_module_exit_3(tmp_path):
    d = tmp_path / "missing"
    d.mkdir()
    rc, out = run_probe(make_ws(d, "def other():\n    pass\n"))
    assert rc == 3 and "clamp_sum" in out["error"]
    d = tmp_path / "broken"
    d.mkdir()
    rc, out = run_probe(make_ws(d, "def clamp_sum(:\n"))
    assert rc == 3 and "SyntaxError" in out["error"]


def test_arguments_are_copied(tmp_path):
    src = """
    def clamp_sum(values, limit):
        values.append(100)
        return len(values)
    """
    rc, out = run_probe(make_ws(tmp_path, src))
    assert out["outputs"][:2] == ["4", "4"]  # each call sees the seed's own list


def test_static_method(tmp_path):
    src = """
    class Util:
        @staticmethod
        def clamp_sum(values, limit):
            return min(sum(values), limit)
    """
    d = tmp_path / "cls"
    d.mkdir()
    rc, out = run_probe(make_ws(d, src), function="Util.clamp_sum")
    d2 = tmp_path / "plain"
    d2.mkdir()
    _, plain = run_probe(make_ws(d2, GOOD))
    assert rc == 0 and out["fingerprint"] == plain["fingerprint"]


def test_package_module_under_src(tmp_path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def total(v):\n    return sum(v)\n")
    (pkg / "core.py").write_text("from .helpers import total\n\ndef clamp_sum(values, limit):\n"
                                 "    return min(total(values), limit)\n")
    (tmp_path / "test_solution.py").write_text(TESTS)
    cmd = [sys.executable, PROBE, "--root", str(tmp_path), "--module-file", "src/pkg/core.py",
           "--function", "clamp_sum", "--tests", "test_solution.py"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=60)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["outputs"][0] == "6"


@pytest.mark.parametrize("max_inputs", [0, 3])
def test_max_inputs_cap(tmp_path, max_inputs):
    rc, out = run_probe(make_ws(tmp_path, GOOD), extra=["--max-inputs", str(max_inputs)])
    assert rc == 0 and out["inputs"] == max_inputs == len(out["outputs"])


def test_set_inputs_do_not_depend_on_hash_randomisation(tmp_path):
    tests = "from solution import *\n\ndef test_s():\n    assert count({'apple', 'kiwi', 'fig', 'plum'}, 'i') == 2\n"
    (tmp_path / "solution.py").write_text("def count(words, ch):\n    return sorted(words)\n")
    (tmp_path / "test_solution.py").write_text(tests)
    seen = []
    for hs in ("1", "2", "random"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        cmd = [sys.executable, PROBE, "--root", str(tmp_path), "--module-file", "solution.py",
               "--function", "count", "--tests", "test_solution.py"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, timeout=60)
        seen.append(json.loads(r.stdout))
        r = subprocess.run(cmd + ["--print-inputs"], stdout=subprocess.PIPE, env=env, timeout=60)
        seen.append(json.loads(r.stdout))
    assert seen[0] == seen[2] == seen[4] and seen[1] == seen[3] == seen[5]
    assert seen[0]["inputs"] > 5
