#!/usr/bin/env bash
# Builds editors/vscode/codeforge-<version>.vsix with @vscode/vsce (installed from the lockfile).
# Usage: bash scripts/package.sh [OUT.vsix]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules/@vscode/vsce ] || npm ci --no-audit --no-fund
npx tsc -p .
version="$(node -p 'require("./package.json").version')"
out="${1:-codeforge-$version.vsix}"
# --skip-license: the project has no licence file yet; --no-dependencies is not used: the
# language client is shipped inside the package (production dependencies only).
npx vsce package --skip-license --allow-missing-repository -o "$out" </dev/null
echo "$out"
