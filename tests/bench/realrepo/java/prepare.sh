#!/usr/bin/env bash
# Owns WORK/commons-codec/: Apache Commons Codec 1.15 from Debian's source package, as an offline Maven project.
# Usage: prepare.sh WORK   (runs as root; idempotent; needs Debian's maven-repo: junit4, libcommons-lang3-java,
#        libsurefire-java, libmaven-compiler-plugin-java, libmaven-resources-plugin-java)
# Test afterwards: mvn -q -B -o -s "$MAVEN_SETTINGS" test   (in WORK/commons-codec)
set -euo pipefail

WORK=${1:?usage: prepare.sh WORK}
MAVEN_SETTINGS=${MAVEN_SETTINGS:-$HOME/.cache/codeforge/maven-settings.xml}
PKG=libcommons-codec-java
VERSION=1.15-1
PROJ="$WORK/commons-codec"

if [ -f "$PROJ/.prepared" ]; then echo "prepare.sh: $PROJ already prepared" >&2; exit 0; fi
mkdir -p "$WORK"

# 1. Build tools and Debian's Maven repository contents (skipped if already installed).
need=()
for p in dpkg-dev maven junit4 libcommons-lang3-java libsurefire-java \
         libmaven-compiler-plugin-java libmaven-resources-plugin-java; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Enable deb-src entries (deb822 sources file) and refresh the index once.
SRC=/etc/apt/sources.list.d/debian.sources
if ! apt-cache showsrc "$PKG" 2>/dev/null | grep -q "^Version: $VERSION"; then
  if [ -f "$SRC" ] && ! grep -q '^Types:.*deb-src' "$SRC"; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' "$SRC"
  fi
  apt-get update -qq
fi

# 3. Fetch and unpack the source package in a scratch dir (755 so the _apt user may write there).
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
(cd "$tmp" && apt-get source --download-only -qq "$PKG=$VERSION") >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
# (the .dsc signature cannot be verified without debian-keyring; checksums still are)
dpkg-source -x "$tmp/${PKG}_${VERSION}.dsc" "$tmp/src" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }

# 4. Keep only sources, tests and licence; replace the pom (its parent, commons-parent 52, is not offline).
rm -rf "$PROJ.part"; mkdir -p "$PROJ.part"
cp -a "$tmp/src/src" "$tmp/src/LICENSE.txt" "$tmp/src/NOTICE.txt" "$PROJ.part/"
rm -rf "$PROJ.part/src/site" "$PROJ.part/src/assembly" "$PROJ.part/src/changes" "$PROJ.part/src/media"
cat > "$PROJ.part/pom.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>commons-codec</groupId>
  <artifactId>commons-codec</artifactId>
  <version>1.15</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency>
    <dependency><groupId>org.apache.commons</groupId><artifactId>commons-lang3</artifactId><version>3.12.0</version><scope>test</scope></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version>
        <configuration>
          <excludes>
            <!-- upstream's own excludes -->
            <exclude>**/*AbstractTest.java</exclude>
            <exclude>**/*PerformanceTest.java</exclude>
          </excludes>
          <!-- fixed small heap: Base64Test#testCodec265 (wants ~5.3 GiB; OOMs when the default heap,
               1/4 of RAM, passes its Assume guard) is then skipped by that guard, and the other
               memory-hungry tests (MurmurHash3, XXHash32Overflow, BaseNCodec) behave alike everywhere.
               Surefire 2.22 refuses method names in <excludes>, hence the heap cap. -->
          <argLine>-Xmx1g</argLine>
        </configuration>
      </plugin>
    </plugins>
  </build>
</project>
XML
# Let `mvn -o` use the file:// mirror of the settings (offline mode otherwise refuses every remote,
# file:// included, until the local repository already holds each artifact).
mkdir -p "$PROJ.part/.mvn"
echo '-Daether.offline.protocols=file' > "$PROJ.part/.mvn/maven.config"
touch "$PROJ.part/.prepared"
rm -rf "$PROJ"; mv "$PROJ.part" "$PROJ"
[ -f "$MAVEN_SETTINGS" ] || echo "prepare.sh: warning: no Maven settings at $MAVEN_SETTINGS" >&2
echo "prepare.sh: prepared $PROJ (test with: mvn -q -B -o -s $MAVEN_SETTINGS test)" >&2
