#!/usr/bin/env bash
# Drives `contrail serve` with the official `openai` npm package (client.mjs).
#
#   run.sh CONTRAIL_BINARY DATA_DIR BUILD_DIR
#
# DATA_DIR is overridden by $CONTRAIL_DATA when set. The package (pinned in package.json /
# package-lock.json) is installed with `npm ci` into BUILD_DIR/openai_client (never into the source
# tree); later runs reuse that install without touching the network, and the npm cache there lets
# a wiped node_modules be restored offline. If node/npm are missing or the install fails (no
# registry), the test is skipped (exit 77) -- unless CI=true, where it fails.
# Starts two servers on free loopback ports: stories260K (completions, no chat template, no key)
# and the tiny-random Mistral v0.3 HF folder (chat template, --api-key); always stops them.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 CONTRAIL_BINARY DATA_DIR BUILD_DIR" >&2
  exit 2
fi
BIN=$1
DATA=${CONTRAIL_DATA:-$2}
mkdir -p "$3/openai_client"
WORK=$(cd "$3/openai_client" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)

skip_or_fail() {  # message
  if [[ "${CI:-}" == "true" ]]; then
    echo "openai_npm_client: FAILED (CI=true): $1" >&2
    exit 1
  fi
  echo "openai_npm_client: SKIPPED: $1" >&2
  exit 77
}

STORIES=$DATA/models/stories260K/stories260K.gguf
MISTRAL=$DATA/golden/tiny-random/mistral/hf
for f in "$STORIES" "$MISTRAL/tokenizer_config.json"; do
  [[ -e "$f" ]] || skip_or_fail "missing shared data: $f (set CONTRAIL_DATA)"
done
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x "$BIN" ]] || { echo "openai_npm_client: not an executable: $BIN" >&2; exit 1; }
command -v node >/dev/null || skip_or_fail "node is not installed"
command -v npm >/dev/null || skip_or_fail "npm is not installed"

# --- install (once) -----------------------------------------------------------------------
mkdir -p "$WORK"
installed() {
  [[ -f "$WORK/node_modules/openai/package.json" ]] && cmp -s "$SRC/package-lock.json" "$WORK/.installed-lock"
}
if ! installed; then
  cp "$SRC/package.json" "$SRC/package-lock.json" "$WORK/"
  rm -f "$WORK/.installed-lock"
  echo "openai_npm_client: npm ci into $WORK" >&2
  npm_ci() { (cd "$WORK" && timeout 120 npm ci --no-audit --no-fund "$@" >>"$WORK/npm-ci.log" 2>&1); }
  : >"$WORK/npm-ci.log"
  # From a local npm cache first (this build's, then the user's; no network), else the registry.
  if ! npm_ci --offline --cache "$WORK/npm-cache" && ! npm_ci --offline &&
     ! npm_ci --prefer-offline --cache "$WORK/npm-cache" --fetch-retries 2 --fetch-timeout 30000; then
    tail -n 20 "$WORK/npm-ci.log" >&2 || true
    skip_or_fail "npm ci failed (is the npm registry reachable?); log: $WORK/npm-ci.log"
  fi
  cp "$SRC/package-lock.json" "$WORK/.installed-lock"
fi
# ESM resolves 'openai' relative to the importing file: run a copy beside node_modules.
cp "$SRC/client.mjs" "$WORK/client.mjs"
echo "openai_npm_client: node $(node --version), openai $(node -p "require('$WORK/node_modules/openai/package.json').version")" >&2

# --- servers ------------------------------------------------------------------------------
PIDS=()
LOGS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -f "${LOGS[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=
start_server() {  # args... ; sets PORT
  local log
  log=$(mktemp /tmp/contrail_openai_npm.XXXXXX)
  LOGS+=("$log")
  "$BIN" serve --host 127.0.0.1 --port 0 -t 2 "$@" 2>"$log" </dev/null >/dev/null &
  PIDS+=($!)
  for _ in $(seq 600); do
    PORT=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9][0-9]*\) .*|\1|p' "$log" | head -n 1)
    [[ -n "$PORT" ]] && return 0
    if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "openai_npm_client: contrail serve $* did not start:" >&2
  cat "$log" >&2
  exit 1
}

KEY=sk-contrail-test-$$
start_server -m "$STORIES" --model-name stories260K
P1=$PORT
start_server -m "$MISTRAL" --model-name tiny-mistral-v0.3 --api-key "$KEY"
P2=$PORT

set +e
# Bounded well below the ctest TIMEOUT (300 s), which would SIGKILL this script before cleanup.
timeout --kill-after=5 180 node "$WORK/client.mjs" "http://127.0.0.1:$P1/v1" stories260K "http://127.0.0.1:$P2/v1" tiny-mistral-v0.3 "$KEY"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  for log in "${LOGS[@]}"; do echo "--- server log $log:" >&2; tail -n 20 "$log" >&2; done
fi
exit $rc
