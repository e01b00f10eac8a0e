#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds + runs a consumer project that uses
# find_package(contrail). Usage: check_install.sh BUILD_DIR SOURCE_DIR MODEL
set -euo pipefail
build=$1 src=$2 model=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/install_consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
if [ -f "$model" ]; then "$tmp/consumer/consumer" "$model"; else echo "model $model absent: built only"; fi
