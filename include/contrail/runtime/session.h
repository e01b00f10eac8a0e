// A loaded model ready to generate: weights, tokenizer, one sequence's KV cache and a thread pool.
// One sequence at a time (the multi-sequence serving engine is a separate layer above).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "contrail/core/thread_pool.h"
#include "contrail/model/model_file.h"
#include "contrail/model/transformer.h"
#include "contrail/sampling/sampler.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail {

struct SessionOptions {
  int n_threads = 0;     // <= 0: one per core
  int64_t n_ctx = 0;     // <= 0: the model's training context, at most 4096
  int64_t n_batch = 512; // prompt tokens per forward call (bounds scratch memory)
  LoadOptions load;
};

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  bool stop_at_eog = true;           // stop when the model emits an end-of-generation token
  std::vector<int32_t> stop_token_ids;
  // Keep the KV rows of the longest common prefix of `prompt` and the tokens the cache already
  // holds from the previous generate call (a chat's earlier turns), computing only the rest.
  // Results are identical to a fresh prefill; false clears the cache first.
  bool reuse_cache = false;
};

struct GenerationStats {
  int64_t n_prompt = 0;
  int64_t n_prompt_cached = 0;  // prompt tokens whose KV rows were reused (reuse_cache)
  int64_t n_generated = 0;
  double prompt_seconds = 0;  // prompt processing (first forward passes)
  double gen_seconds = 0;     // every forward after the prompt, plus sampling
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0; }
  // Generated tokens after the first (whose logits came from prompt processing) per second.
  double gen_tps() const { return gen_seconds > 0 && n_generated > 1 ? (n_generated - 1) / gen_seconds : 0; }
};

// The KV cache belongs to the Session: it records which tokens the cache holds (for reuse_cache)
// and only its own operations (evaluate_all, append, reset, generate) change the cache, so that
// record is always right. The transformer and the cache are therefore handed out read-only; to
// run the weights on another cache, build a Transformer on shared_model_file(). The thread pool
// holds no sequence state (and serialises its jobs), so it is lent out for other work.
class Session {
 public:
  static std::unique_ptr<Session> load(const std::string& model_path, const SessionOptions& opts = {});
  Session(std::shared_ptr<const ModelFile> model, const SessionOptions& opts);

  const ModelFile& model_file() const { return *model_; }
  std::shared_ptr<const ModelFile> shared_model_file() const { return model_; }
  const ModelConfig& config() const { return transformer_.config(); }
  const Transformer& transformer() const { return transformer_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  ThreadPool& pool() { return pool_; }
  const KvCache& cache() const { return cache_; }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  // The tokens whose K/V rows the cache holds, in order (cache().n_past() of them).
  std::span<const int32_t> cached_tokens() const { return cached_ids_; }

  // Empties the cache.
  void reset();

  // Evaluates ids after the cached tokens (at positions cache().n_past() onwards, in n_batch
  // chunks) and appends them to the cached sequence: logits (n_ids, n_vocab) row-major when
  // all_logits, else the last token's (1, n_vocab). Throws InvalidArgument for no ids or ids that
  // do not fit the context (naming n_past, n_ids and n_ctx); the cache is then unchanged. If a
  // forward pass throws, the cache keeps the chunks evaluated before it.
  void append(std::span<const int32_t> ids, std::vector<float>& logits, bool all_logits = false);

  // Evaluates ids as one fresh sequence (cache cleared) and returns the logits of every
  // position, (n_ids, n_vocab) row-major.
  std::vector<float> evaluate_all(std::span<const int32_t> ids);

  // Generates after `prompt` (cache cleared first unless opts.reuse_cache). on_token(id) is called for every generated
  // token and may return false to stop. Throws InvalidArgument when the prompt is empty or does
  // not fit the context (naming n_prompt and n_ctx). Stops at max_new_tokens, the context end,
  // an end-of-generation token (not passed to on_token) or a stop id.
  GenerationStats generate(std::span<const int32_t> prompt, const GenerateOptions& opts,
                           const std::function<bool(int32_t)>& on_token);

 private:
  // append() without the argument checks.
  void prefill(std::span<const int32_t> ids, std::vector<float>& logits, bool all_logits);

  std::shared_ptr<const ModelFile> model_;
  Transformer transformer_;
  Tokenizer tokenizer_;
  // The tokens whose K/V rows the cache holds, in order: always cache_.n_past() of them.
  std::vector<int32_t> cached_ids_;
  ThreadPool pool_;
  KvCache cache_;
  int64_t n_batch_;
};

}  // namespace contrail
