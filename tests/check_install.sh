#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and checks what a user gets:
# - the libraries a user links (libcontrail, libcontrail_hub, libcontrail_server) with their
#   exported CMake targets, and exactly the public headers (include/contrail of the source tree:
#   no per-ISA kernel entries, no test fakes, nothing from src/);
# - a consumer project (tests/install_consumer) using find_package(contrail COMPONENTS hub server):
#   every installed header compiles alone, and one consumer per library builds and runs; the
#   inference consumer links no HTTP or TLS library.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR MODEL
set -euo pipefail
build=$1 src=$2 model=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "check_install: $*" >&2
  exit 1
}
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
prefix=$tmp/prefix
libdir=$(cd "$prefix" && ls -d lib*/cmake/contrail | head -1)
libdir=${libdir%/cmake/contrail}
for lib in libcontrail.a libcontrail_hub.a libcontrail_server.a; do
  [ -f "$prefix/$libdir/$lib" ] || fail "$lib is not installed in $prefix/$libdir"
done
for f in contrailConfig.cmake contrailTargets.cmake contrailHubTargets.cmake contrailServerTargets.cmake; do
  [ -f "$prefix/$libdir/cmake/contrail/$f" ] || fail "$f is not installed"
done
installed=$(cd "$prefix/include" && find contrail -type f | sort)
public=$(cd "$src/include" && find contrail -type f -name '*.h' | sort)
[ "$installed" = "$public" ] || fail "installed headers differ from include/contrail:
$(diff <(echo "$public") <(echo "$installed") || true)"
if internal=$(grep -rlE '(class|struct) (Mock|Fake)[A-Za-z]*|[a-z0-9_]+_(scalar|avx2|avx512|avx512vnni)\(' "$prefix/include"); then
  fail "installed headers declare internals (per-ISA kernel entries, test fakes): $internal"
fi
cmake -S "$src/tests/install_consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer" -j 2 >/dev/null || cmake --build "$tmp/consumer" -j 1
echo "check_install: $(echo "$installed" | wc -l) installed headers each compile alone"
# Inference users link no HTTP stack; the hub consumer does (so the check can tell).
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
if needed "$tmp/consumer/consumer" | grep -E 'curl|ssl|crypto|httplib|boost'; then
  fail "the inference consumer links an HTTP/TLS library (above)"
fi
needed "$tmp/consumer/hub_consumer" | grep -q curl || fail "hub_consumer does not link libcurl"
"$tmp/consumer/hub_consumer"
"$tmp/consumer/server_consumer"
if [ -f "$model" ]; then
  "$tmp/consumer/consumer" "$model"
  "$tmp/consumer/server_consumer" "$model"
elif [ -n "${CI:-}" ]; then
  # CI must run the consumer, not just build it: missing shared data is a failure there.
  echo "check_install: model $model absent (CI=$CI: missing shared data is a failure, not 'built only')" >&2
  exit 1
else
  echo "model $model absent: built only"
fi
