#!/usr/bin/env bash
# Installs every dependency (Debian 12), builds Release into build/, and places the default model
# (stories260K) under models/ from $CONTRAIL_DATA (default ../shared).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake ninja-build pkg-config libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
      libpcre2-dev libutf8proc-dev libcurl4-openssl-dev libcpp-httplib-dev libboost-dev libssl-dev)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Node.js + npm run the test that drives the server with the official `openai` npm client.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"

DATA=${CONTRAIL_DATA:-../shared}
SRC="$DATA/models/stories260K"
mkdir -p models
if [ -f "$SRC/stories260K.gguf" ]; then
  for f in stories260K.gguf stories260K.bin tok512.bin; do
    [ -f "$SRC/$f" ] && ln -sf "$(cd "$SRC" && pwd)/$f" "models/$f"
  done
  echo "setup: default model linked: models/stories260K.gguf"
else
  cat <<MSG
setup: the default model was not found at $SRC.
  Get Karpathy's stories260K (llama2.c tinyllamas: stories260K.bin + tok512.bin, or stories260K.gguf)
  and put the files in $(pwd)/models/, or set CONTRAIL_DATA to a folder containing
  models/stories260K/, then run ./setup.sh again.
MSG
fi
echo "setup: done. Try: ./build/contrail run -p \"Once upon a time\""
