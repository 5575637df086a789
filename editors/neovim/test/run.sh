#!/usr/bin/env bash
# Runs test/e2e.lua in a real headless Neovim against the real server and a scripted model server,
# then test/enable.lua in a fresh Neovim on a fresh copy of the fixture (lsp/codeforge.lua with
# vim.lsp.enable on 0.11+, :help codeforge, setup{} with a missing binary).
# Usage: CODEFORGE_BIN=/path/to/codeforge CF_PY=/venv/bin/python bash run.sh NVIM [ARTIFACT_DIR]
# CF_PY: a python with pytest (verification runs the fixture's test with it).
set -euo pipefail
NVIM="${1:?usage: run.sh NVIM [ARTIFACT_DIR]}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN="$(dirname "$HERE")"
TESTKIT="$(cd "$HERE/../../testkit" && pwd)"
: "${CODEFORGE_BIN:?set CODEFORGE_BIN}" "${CF_PY:?set CF_PY to a python with pytest}"
[ -x "$CODEFORGE_BIN" ] || { echo "run.sh: $CODEFORGE_BIN is not an executable" >&2; exit 1; }

tmp="$(mktemp -d)"
stub_pid=""
cleanup() {
  [ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The workspaces: copies of the fixture (the tests write to them).
mkdir -p "$tmp/ws" "$tmp/ws2" "$tmp/cache" "$tmp/cache2" "$tmp/config" "$tmp/home" "$tmp/scratch"
cp -r "$TESTKIT/fixture/." "$tmp/ws/"
cp -r "$TESTKIT/fixture/." "$tmp/ws2/"
ws="$(cd "$tmp/ws" && pwd -P)"
ws2="$(cd "$tmp/ws2" && pwd -P)"

python3 "$TESTKIT/stub_openai.py" "$TESTKIT/rules.json" "$tmp/requests.jsonl" "$tmp/port" &
stub_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "run.sh: the stub model server did not start" >&2; exit 1; }

set +e
CF_BIN="$CODEFORGE_BIN" CF_WS="$ws" CF_CACHE="$tmp/cache" CF_PORT="$(cat "$tmp/port")" \
  CF_LOG="$tmp/requests.jsonl" CF_PY="$CF_PY" CF_TEST_KEY="sk-test-$$" XDG_CONFIG_HOME="$tmp/config" \
  XDG_DATA_HOME="$tmp/data" XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/xdgcache" CODEFORGE_LOG="${CODEFORGE_LOG:-warn}" \
  timeout -k 5 180 "$NVIM" --headless --clean -n -i NONE \
    --cmd "set rtp^=$PLUGIN" --cmd "set shortmess+=F" \
    -c "luafile $HERE/e2e.lua" 2>"$tmp/nvim.stderr"
rc=$?
# HOME: an empty directory, so setup{} finds no ~/.cargo/bin/codeforge there.
CF_BIN="$CODEFORGE_BIN" CF_WS="$ws2" CF_CACHE="$tmp/cache2" CF_PORT="$(cat "$tmp/port")" \
  CF_LOG="$tmp/requests.jsonl" CF_TEST_KEY="sk-test-$$" CF_PLUGIN="$PLUGIN" CF_SCRATCH="$tmp/scratch" \
  HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config2" XDG_DATA_HOME="$tmp/data2" XDG_STATE_HOME="$tmp/state2" \
  XDG_CACHE_HOME="$tmp/xdgcache2" CODEFORGE_LOG="${CODEFORGE_LOG:-warn}" \
  timeout -k 5 90 "$NVIM" --headless --clean -n -i NONE \
    --cmd "set rtp^=$PLUGIN" --cmd "set shortmess+=F" \
    -c "luafile $HERE/enable.lua" 2>"$tmp/nvim-enable.stderr"
rc2=$?
set -e
# On a failure: the failed run's stderr and LSP log ("" the first run, 2 the second).
for run in "" 2; do
  if [ "$run" = 2 ]; then r="$rc2" err="$tmp/nvim-enable.stderr"; else r="$rc" err="$tmp/nvim.stderr"; fi
  [ "$r" != 0 ] || continue
  echo "--- $(basename "$err") (last 40 lines) ---"
  tail -40 "$err"
  for f in "$tmp/state$run/nvim/lsp.log" "$tmp/xdgcache$run/nvim/lsp.log"; do [ -f "$f" ] && { echo "--- $f (last 40 lines) ---"; tail -40 "$f"; }; done
done
[ "$rc" != 0 ] || rc="$rc2"
if [ -n "${2:-}" ]; then
  mkdir -p "$2"
  cp "$tmp/nvim.stderr" "$tmp/nvim-enable.stderr" "$tmp/requests.jsonl" "$2/" 2>/dev/null || true
  for f in "$tmp"/state/nvim/lsp.log "$tmp"/xdgcache/nvim/lsp.log; do [ -f "$f" ] && cp "$f" "$2/lsp.log"; done
  for f in "$tmp"/state2/nvim/lsp.log "$tmp"/xdgcache2/nvim/lsp.log; do [ -f "$f" ] && cp "$f" "$2/lsp-enable.log"; done
fi
exit "$rc"
