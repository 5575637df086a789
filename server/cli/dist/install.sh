#!/bin/sh
# CodeForge installer (shipped as codeforge-installer.sh beside the release archives; .ci/dist).
# Installs the codeforge binary for this machine into ~/.local/bin (or $CODEFORGE_INSTALL_DIR),
# its licences into ~/.local/share/doc/codeforge, after checking the archive's sha256. Needs no
# root, no Rust toolchain and no clone.
#
#   sh codeforge-installer.sh [--models] [ARCHIVE | DIR | URL]
#
# ARCHIVE: a codeforge-<target>.tar.xz; DIR or URL: where the release artefacts are (default: the
# directory this script is in). --models then runs `codeforge model pull all` (~580 MB).
set -eu

say() { echo "codeforge-installer: $*" >&2; }
die() { say "$*"; exit 1; }

models=0
src=""
for a in "$@"; do
  case "$a" in
    --models) models=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a" ;;
    *) src="$a" ;;
  esac
done

[ "$(uname -s)" = Linux ] || die "release archives exist for Linux only; elsewhere: cargo install --locked --path server/cli --profile dist (README)"
case "$(uname -m)" in
  x86_64|amd64) target=x86_64-unknown-linux-gnu ;;
  *) die "no release archive for $(uname -m) yet; build it: cargo install --locked --path server/cli --profile dist (README)" ;;
esac
name="codeforge-$target"
[ -n "$src" ] || src="$(cd "$(dirname "$0")" && pwd)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
  else die "neither curl nor wget is installed to download $1"; fi
}
case "$src" in
  http://*|https://*)
    say "downloading $src/$name.tar.xz"
    fetch "$src/$name.tar.xz" "$tmp/$name.tar.xz"
    fetch "$src/$name.tar.xz.sha256" "$tmp/$name.tar.xz.sha256"
    archive="$tmp/$name.tar.xz" ;;
  *.tar.xz) archive="$src" ;;
  *) archive="$src/$name.tar.xz" ;;
esac
[ -f "$archive" ] || die "no archive at $archive"
[ -f "$archive.sha256" ] || [ -f "$tmp/$name.tar.xz.sha256" ] || die "no checksum file $archive.sha256 beside the archive"
sumfile="$archive.sha256"; [ -f "$sumfile" ] || sumfile="$tmp/$name.tar.xz.sha256"
want="$(cut -d' ' -f1 < "$sumfile")"
if command -v sha256sum >/dev/null 2>&1; then got="$(sha256sum "$archive" | cut -d' ' -f1)"
else got="$(shasum -a 256 "$archive" | cut -d' ' -f1)"; fi
[ "$want" = "$got" ] || die "checksum mismatch for $archive: expected $want, got $got (a damaged or altered download; nothing installed)"

tar -C "$tmp" -xJf "$archive"
[ -x "$tmp/$name/codeforge" ] || die "$archive holds no $name/codeforge"
# The binary checks the CPU itself (x86-64-v3: AVX2, FMA, BMI2) and says what is missing.
version="$("$tmp/$name/codeforge" --version)" || die "the binary does not run on this machine (see above); nothing installed"

bindir="${CODEFORGE_INSTALL_DIR:-${XDG_BIN_HOME:-$HOME/.local/bin}}"
docdir="${XDG_DATA_HOME:-$HOME/.local/share}/doc/codeforge"
mkdir -p "$bindir" "$docdir"
cp "$tmp/$name/codeforge" "$bindir/.codeforge.new"
chmod 755 "$bindir/.codeforge.new"
mv -f "$bindir/.codeforge.new" "$bindir/codeforge"   # atomic: a running server keeps its file
cp "$tmp/$name/LICENSE" "$tmp/$name/README.md" "$tmp/$name/THIRD-PARTY-LICENSES.md" "$docdir/"
say "installed $version at $bindir/codeforge"

case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "$bindir is not on your PATH; add it, e.g. echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.profile" ;;
esac
if [ "$models" = 1 ]; then
  "$bindir/codeforge" model pull all
else
  say "next: codeforge model pull all   (the embedded models, ~580 MB; or answer 'Download' when your editor asks)"
fi
