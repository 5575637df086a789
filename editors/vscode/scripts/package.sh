#!/usr/bin/env bash
# Builds a .vsix with @vscode/vsce (installed from the lockfile): the esbuild bundle
# (dist/extension.js, vscode-languageclient inside; `vscode:prepublish` builds it), package.json,
# README, LICENSE and the icon; no node_modules.
#
#   bash scripts/package.sh [OUT.vsix]                      universal: no server inside; the
#                                                           extension uses `codeforge` on PATH
#   bash scripts/package.sh --target linux-x64 [OUT.vsix]   platform-specific, like rust-analyzer's:
#                                                           the server inside, as server/codeforge
#
# With --target the server is $CODEFORGE_BIN, default $CARGO_TARGET_DIR/dist/codeforge
# (CARGO_TARGET_DIR default ~/.cache/codeforge/target); it is never built here. Its symbols are
# stripped on the way in (strip, else objcopy --strip-debug) and its executable bit kept (vsce
# stores the file's mode; the extension also restores the bit at activation if an installer drops it).
# Default OUT: codeforge-VERSION.vsix, or codeforge-TARGET-VERSION.vsix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="${2:?--target needs a value, e.g. linux-x64}"; shift 2 ;;
    --target=*) target="${1#--target=}"; shift ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "package.sh: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
case "$target" in
  ""|linux-x64) ;;
  *) echo "package.sh: only --target linux-x64 is built here (got $target)" >&2; exit 2 ;;
esac

[ -d node_modules/@vscode/vsce ] && [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund
npx tsc -p . --noEmit
version="$(node -p 'require("./package.json").version')"

# server/ holds the bundled server only while a platform-specific package is built: a universal
# package must never pick up one left behind.
rm -rf server
trap 'rm -rf server' EXIT
if [ -n "$target" ]; then
  out="${out:-codeforge-$target-$version.vsix}"
  bin="${CODEFORGE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/codeforge/target}/dist/codeforge}"
  if [ ! -x "$bin" ]; then
    echo "package.sh: the codeforge binary $bin does not exist or is not executable (build it with cargo build, or set CODEFORGE_BIN)" >&2
    exit 1
  fi
  file_type="$(file -b "$bin" 2>/dev/null || true)"
  if [ -n "$file_type" ] && ! grep -q 'ELF 64-bit.*x86-64' <<<"$file_type"; then
    echo "package.sh: $bin is not a linux-x64 executable ($file_type)" >&2
    exit 1
  fi
  mkdir -p server
  if command -v strip >/dev/null 2>&1; then
    strip -o server/codeforge "$bin"
  elif command -v objcopy >/dev/null 2>&1; then
    objcopy --strip-debug "$bin" server/codeforge
  else
    cp "$bin" server/codeforge
  fi
  chmod 755 server/codeforge
  server/codeforge --version >/dev/null || { echo "package.sh: server/codeforge --version failed" >&2; exit 1; }
  echo "package.sh: bundling $bin ($(du -h server/codeforge | cut -f1) stripped) as server/codeforge" >&2
  npx vsce package --target "$target" --no-dependencies -o "$out" </dev/null
else
  out="${out:-codeforge-$version.vsix}"
  npx vsce package --no-dependencies -o "$out" </dev/null
fi
echo "$out"
