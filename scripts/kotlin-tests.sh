#!/usr/bin/env bash
# The Kotlin and Swift bindings: generates them from the built library with posbridge's
# uniffi-bindgen, compiles the Kotlin bindings and a test program (crates/posbridge-ffi/kotlin/
# Main.kt) with kotlinc -Werror and runs it on the JVM against the embedded simulator; its last
# line is "N passed, M failed". The Swift bindings are generated (and their files checked), not
# compiled: there is no Swift toolchain here.
#
# Needs java (17+) and Debian's libjna-java (JNA 5.13); installs the Kotlin compiler from the npm
# registry (kotlin-compiler 2.4.20) under target/npm on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
jna=/usr/share/java/jna.jar
command -v java >/dev/null || { echo "kotlin-tests: java is missing (Debian: default-jre-headless)" >&2; exit 1; }
[ -f "$jna" ] || { echo "kotlin-tests: $jna is missing (Debian: libjna-java)" >&2; exit 1; }
kotlin=target/npm/node_modules/kotlin-compiler
if [ ! -x "$kotlin/bin/kotlinc" ]; then
  npm install --prefix target/npm --no-audit --no-fund --loglevel=error kotlin-compiler@2.4.20
fi
chmod +x "$kotlin"/bin/*
lib=$kotlin/lib

cargo build --quiet -p posbridge-ffi --features bindgen
so=target/debug/libposbridge_ffi.so
out=target/bindings
rm -rf "$out"
target/debug/uniffi-bindgen generate --no-format --library "$so" --language kotlin --out-dir "$out/kotlin"
target/debug/uniffi-bindgen generate --no-format --library "$so" --language swift --out-dir "$out/swift"
for f in posbridge.swift posbridgeFFI.h posbridgeFFI.modulemap; do
  [ -s "$out/swift/$f" ] || { echo "kotlin-tests: the Swift bindings lack $f" >&2; exit 1; }
done
echo "Swift bindings generated: $(ls "$out/swift" | tr '\n' ' ')(not compiled: no Swift toolchain here)"

"$kotlin/bin/kotlinc" -Werror -cp "$jna:$lib/kotlinx-coroutines-core-jvm.jar" \
  "$out/kotlin/uniffi/posbridge/posbridge.kt" crates/posbridge-ffi/kotlin/Main.kt -d "$out/classes"
java -Djna.library.path=target/debug \
  -cp "$out/classes:$jna:$lib/kotlinx-coroutines-core-jvm.jar:$lib/kotlin-stdlib.jar" MainKt
