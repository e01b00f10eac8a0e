#!/usr/bin/env bash
# Checks that every shared data set the tests read is present: usage check_shared_data.sh
# [DEFAULT_DATA_DIR]. Like the tests (test_util.h data_dir()), reads $CONTRAIL_DATA when set, else
# DEFAULT_DATA_DIR, else ../shared beside the source tree. Exits 1 listing each missing
# file, so a CI run (.ci/run runs this first; ctest runs it as shared_data_present) cannot pass
# on a data set the tests would have skipped or looped over zero times.
#
# The public and hidden golden sets share one layout but not their prompts or sequence names
# (golden/MANIFEST.md), so case lists are read from the data itself: every stories260K case
# (llama2c/<case>.prompt.txt) and every tiny-random sequence (golden/summary.json) must come
# with all the files the tests open for it, and each list must be non-empty.
# Keep this list in step with the data_path(...) calls in tests/*.cpp.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${CONTRAIL_DATA:-${1:-$here/../../shared}}
missing=0
checked=0

need() {  # paths relative to $data
  local f
  for f in "$@"; do
    checked=$((checked + 1))
    if [[ ! -e "$data/$f" ]]; then
      echo "missing: $data/$f"
      missing=$((missing + 1))
    fi
  done
}

if [[ ! -d "$data" ]]; then
  echo "check_shared_data: data directory $data does not exist (set CONTRAIL_DATA)"
  exit 1
fi

# ---- models/ and data/ ---------------------------------------------------------------------
need models/stories260K/stories260K.gguf models/stories260K/stories260K.bin models/stories260K/tok512.bin
need data/sharegpt_demo.json

# ---- golden/stories260K: every case, from both implementations ------------------------------
stories=golden/stories260K
need "$stories/llama2c" "$stories/llamacpp"
n_cases=0
for p in "$data/$stories"/llama2c/*.prompt.txt; do
  [[ -e "$p" ]] || continue
  c=$(basename "$p" .prompt.txt)
  need "$stories/llama2c/$c.json" "$stories/llama2c/$c.logits.bin" "$stories/llama2c/$c.stdout.txt" \
       "$stories/llamacpp/$c.teacher.logits.bin"
  n_cases=$((n_cases + 1))
done
if [[ $n_cases -eq 0 ]]; then
  echo "missing: $data/$stories/llama2c/<case>.prompt.txt (no stories260K case)"
  missing=$((missing + 1))
fi
# Read by name in test_server.cpp.
need "$stories/llama2c/p0_once_upon_a_time.json" "$stories/llama2c/p0_once_upon_a_time.stdout.txt"

# ---- golden/tiny-random/<arch>: checkpoint, conversion, every listed sequence ----------------
# Sequence names of a summary.json ("sequences": [{"name": ...}, ...]).
sequences() {
  if command -v jq >/dev/null 2>&1; then
    jq -r '.sequences[].name' "$1" 2>/dev/null
  else
    python3 -c 'import json,sys; [print(s["name"]) for s in json.load(open(sys.argv[1]))["sequences"]]' "$1" 2>/dev/null
  fi
}
for arch in llama mistral phi3 gpt2 qwen2 gemma gemma2 llama_quant; do
  d=golden/tiny-random/$arch
  need "$d/hf/config.json" "$d/hf/model.safetensors" "$d/hf/tokenizer_config.json" "$d/gguf/model.gguf" \
       "$d/golden/summary.json"
  if [[ ! -e "$data/$d/hf/tokenizer.model" && ! -e "$data/$d/hf/tokenizer.json" ]]; then
    echo "missing: $data/$d/hf/tokenizer.model or tokenizer.json (no tokenizer)"
    missing=$((missing + 1))
  fi
  [[ -e "$data/$d/golden/summary.json" ]] || continue
  n_seq=0
  while read -r s; do
    [[ -n "$s" ]] || continue
    need "$d/golden/$s.json" "$d/golden/$s.logits.bin"
    [[ $arch == llama_quant ]] && need "$d/golden/$s.Q8_0.json" "$d/golden/$s.Q8_0.logits.bin"
    n_seq=$((n_seq + 1))
  done < <(sequences "$data/$d/golden/summary.json")
  if [[ $n_seq -eq 0 ]]; then
    echo "missing: sequences in $data/$d/golden/summary.json (none listed, or unreadable: needs jq or python3)"
    missing=$((missing + 1))
  fi
done
need golden/tiny-random/llama_quant/gguf/model-Q8_0.gguf golden/tiny-random/llama_quant/gguf/model-Q4_0.gguf
need golden/tiny-random/llama_quant/hf/tokenizer.model golden/tiny-random/mistral/hf/tokenizer.model
need golden/tiny-random/mistral/hf/tokenizer_config.json

# ---- golden/tokenizers: llama.cpp's vocab GGUFs and test-tokenizer-0 vectors ------------------
for v in llama-spm llama-bpe gpt-2 qwen2 phi-3; do need "golden/tokenizers/vocab/ggml-vocab-$v.gguf"; done
for v in llama-spm llama-bpe gpt-2 qwen2 phi-3 mistral-v0.3 gemma; do
  need "golden/tokenizers/tests/ggml-vocab-$v.gguf.inp" "golden/tokenizers/tests/ggml-vocab-$v.gguf.out"
done

# ---- tokenizers/: real tokenizer files (HF loaders, chat templates) --------------------------
need tokenizers/llama2/tokenizer.model tokenizers/llama3/tokenizer.model
need tokenizers/gpt2/tokenizer.json tokenizers/gpt2/vocab.json tokenizers/gpt2/merges.txt
need tokenizers/mistral-v0.3/tokenizer.json tokenizers/mistral-v0.3/tokenizer_config.json \
     tokenizers/mistral-v0.3/tokenizer.model.v3
need tokenizers/gemma/tokenizer.json tokenizers/gemma/tokenizer_config.json

if [[ $missing -gt 0 ]]; then
  echo "check_shared_data: $missing of $checked expected files missing under $data"
  exit 1
fi
echo "check_shared_data: all $checked expected files present under $data ($n_cases stories260K cases)"
