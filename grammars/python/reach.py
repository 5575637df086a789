"""Which collected tests reach a function: runs the workspace's pytest suite (its own config
decides what is collected) with a profiler that records, per test, whether the target's code
object was entered (directly or through any caller). Writes one JSON object to fd 3:
{"collected": N, "exit": code, "hits": [nodeid, ...]}.

usage: reach.py REL_PATH NAME FIRST_LINE LAST_LINE [pytest args...]
(REL_PATH: the target's file relative to the workspace, which may be imported from the scratch
copy or through the workspace's own path: both end with it.)
"""
import json
import os
import sys
import threading

import pytest

path, name, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
extra = sys.argv[5:]
suffix = os.sep + path.replace("/", os.sep)
hits = set()
current = [None]
seen_codes = {}


def _is_target(code):
    known = seen_codes.get(code)
    if known is None:
        known = (
            code.co_name == name
            and first <= code.co_firstlineno <= last
            and os.path.abspath(code.co_filename).endswith(suffix)
        )
        seen_codes[code] = known
    return known


def _profile(frame, event, arg):
    if event == "call" and current[0] is not None and _is_target(frame.f_code):
        hits.add(current[0])


class Reach:
    def __init__(self):
        self.collected = 0

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        current[0] = item.nodeid
        sys.setprofile(_profile)
        threading.setprofile(_profile)
        try:
            yield
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
            current[0] = None


plugin = Reach()
code = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts="] + extra, plugins=[plugin])
out = {"collected": plugin.collected, "exit": int(code), "hits": sorted(hits)}
try:
    os.write(3, json.dumps(out).encode())
except OSError:
    print(json.dumps(out))
