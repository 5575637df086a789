#!/usr/bin/env bash
# Runs test/embedded.lua in a real headless Neovim against the real server and the embedded model
# (Qwen2.5-Coder-0.5B GGUF, no scripted model server): the one flow of this editor whose model
# output is real. One CPU generation takes seconds on 2 cores (30–90 s on candle's kernels).
# Usage: CODEFORGE_BIN=/path/to/codeforge CF_PY=/venv/bin/python bash run-embedded.sh NVIM [ARTIFACT_DIR]
# CF_MODELS: the models directory holding qwen2.5-coder-0.5b-instruct/ (default
# ~/.cache/codeforge/models); it is linked into a fresh cache dir, so the default model is used.
set -euo pipefail
NVIM="${1:?usage: run-embedded.sh NVIM [ARTIFACT_DIR]}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN="$(dirname "$HERE")"
TESTKIT="$(cd "$HERE/../../testkit" && pwd)"
: "${CODEFORGE_BIN:?set CODEFORGE_BIN}" "${CF_PY:?set CF_PY to a python with pytest}"
[ -x "$CODEFORGE_BIN" ] || { echo "run-embedded.sh: $CODEFORGE_BIN is not an executable" >&2; exit 1; }
MODELS="${CF_MODELS:-$HOME/.cache/codeforge/models}"
GGUF="$MODELS/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf"
[ -f "$GGUF" ] || { echo "FAIL: the embedded model $GGUF is not installed"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/ws" "$tmp/cache" "$tmp/config"
cp -r "$TESTKIT/fixture/." "$tmp/ws/"
ws="$(cd "$tmp/ws" && pwd -P)"
ln -s "$MODELS" "$tmp/cache/models"

set +e
CF_BIN="$CODEFORGE_BIN" CF_WS="$ws" CF_CACHE="$tmp/cache" CF_PY="$CF_PY" XDG_CONFIG_HOME="$tmp/config" \
  XDG_DATA_HOME="$tmp/data" XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/xdgcache" CODEFORGE_LOG="${CODEFORGE_LOG:-warn}" \
  timeout -k 5 330 "$NVIM" --headless --clean -n -i NONE \
    --cmd "set rtp^=$PLUGIN" --cmd "set shortmess+=F" \
    -c "luafile $HERE/embedded.lua" 2>"$tmp/nvim.stderr"
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- nvim stderr (last 40 lines) ---"
  tail -40 "$tmp/nvim.stderr"
  for f in "$tmp"/state/nvim/lsp.log "$tmp"/xdgcache/nvim/lsp.log; do [ -f "$f" ] && { echo "--- $f (last 40 lines) ---"; tail -40 "$f"; }; done
fi
if [ -n "${2:-}" ]; then
  mkdir -p "$2"
  cp "$tmp/nvim.stderr" "$2/" 2>/dev/null || true
  cp "$ws/shapes.py" "$2/shapes.py.after" 2>/dev/null || true
  for f in "$tmp"/state/nvim/lsp.log "$tmp"/xdgcache/nvim/lsp.log; do [ -f "$f" ] && cp "$f" "$2/lsp.log"; done
fi
exit "$rc"
