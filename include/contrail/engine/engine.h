// The serving engine: many requests at once over one model, continuous batching on a paged KV
// cache. Requests are submitted from any thread; one engine thread loops: admit new requests and
// cancellations, schedule a step (Scheduler: decode tokens of running sequences mixed with chunks
// of waiting prompts under max_batched_tokens / max_running), run it (ModelRunner: one forward pass
// over the flattened batch, so the weights are read once per step for every sequence), sample,
// detokenize, match stop strings, and report per-request updates through callbacks.
//
// Contracts:
// - A request's tokens do not depend on what else is in the batch: sampling is per choice with its
//   own seeded RNG, and the runner computes each sequence as if it were alone.
// - Every submitted request gets exactly one final update (done == true) with a finish reason per
//   choice: stop (EOS/EOG, a stop token id or a stop string), length (max_tokens or the context),
//   cancelled (cancel(), drain timeout or engine shutdown) or error. Its KV blocks are freed then.
// - Callbacks run on the engine thread, one at a time, never under an engine lock: they may call
//   cancel() or stats(), but must return quickly (they delay every other request).
// - Stop strings and stop token ids are never part of the returned text/tokens; EOS/EOG neither.
// - Admission control: beyond the free running slots, at most scheduler.max_waiting requests wait;
//   submit() beyond that returns QueueFull at once (the HTTP layer answers 429), never an
//   unbounded backlog.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "contrail/engine/block_manager.h"
#include "contrail/engine/runner.h"
#include "contrail/engine/scheduler.h"
#include "contrail/sampling/sampler.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail::engine {

// A request's id, chosen by the caller (unique among requests in flight).
using RequestId = uint64_t;

enum class FinishReason { None, Stop, Length, Cancelled, Error };
// "stop", "length", "cancelled", "error" ("" for None).
const char* finish_reason_name(FinishReason r);

struct RequestOptions {
  int64_t max_tokens = 16;            // new tokens per choice, >= 1
  SamplingParams sampling;            // temperature 0 = greedy; seed makes sampling reproducible
  std::vector<std::string> stop;      // stop strings, matched across token boundaries
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;            // do not stop at EOS / end-of-generation tokens
  int n = 1;                          // choices sampled from the same prompt, 1..max_n
  int top_logprobs = -1;              // -1: no logprobs; 0..20: the sampled token's + this many best
  // Penalties (repeat/frequency/presence) see the generated tokens of the choice only.
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;                            // log-softmax of the raw logits
  std::vector<std::pair<int32_t, float>> top;   // best top_logprobs (token, logprob), best first
};

struct ChoiceDelta {
  int index = 0;
  std::vector<int32_t> tokens;        // new tokens of this update
  std::string text;                   // new text that can be shown (valid UTF-8, stop strings cut)
  std::vector<TokenLogprob> logprobs; // one per new token when requested
  FinishReason finish = FinishReason::None;
};

struct RequestUpdate {
  RequestId id = 0;
  std::vector<ChoiceDelta> choices;   // only choices with something new
  int64_t n_prompt = 0;               // prompt tokens
  int64_t n_generated = 0;            // tokens generated so far, all choices together
  bool done = false;                  // the final update of the request
  std::string error;                  // set with FinishReason::Error
};

using UpdateCallback = std::function<void(const RequestUpdate&)>;

struct EngineConfig {
  SchedulerConfig scheduler;              // budgets; max_seq_len is capped at the model's context
  int64_t block_size = 16;                // tokens per KV block
  int64_t n_blocks = 0;                   // KV blocks; 0 = as many as kv_cache_bytes holds
  size_t kv_cache_bytes = size_t{256} << 20;
  DType kv_dtype = DType::F32;            // KV storage: f32, f16 or q8_0 (see PagedKvCache)
  bool prefix_cache = true;
  int n_threads = 0;                      // runner threads (<= 0: one per core)
  int max_n = 16;                         // largest `n` accepted
  void validate() const;                  // throws InvalidArgument naming the field and limit
};

struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t blocks_total = 0, blocks_used = 0, blocks_cached = 0, blocks_free = 0;
  int64_t prefix_query_tokens = 0, prefix_hit_tokens = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0, generation_tokens = 0;  // totals since start
  int64_t requests_finished = 0, steps = 0;
  int64_t active_requests = 0;  // submitted and not yet given their final update
};

enum class SubmitStatus { Ok, QueueFull, ShuttingDown };

class Engine {
 public:
  // The runner's pool must have config.n_blocks blocks of config.block_size (see create()).
  // max_seq_len: the model's context (request limit). The tokenizer must outlive the engine.
  Engine(std::unique_ptr<ModelRunner> runner, const Tokenizer& tokenizer, EngineConfig config, int64_t max_seq_len);
  // An engine over a real model (TransformerRunner sized from config; n_blocks filled in).
  static std::unique_ptr<Engine> create(std::shared_ptr<const ModelFile> model, const Tokenizer& tokenizer,
                                        EngineConfig config);
  ~Engine();  // cancels what is left and stops the engine thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. Throws InvalidArgument, naming the parameter, its value and the limit, for
  // an empty prompt, a token id outside the vocabulary, max_tokens < 1, prompt + max_tokens beyond
  // max_seq_len (computed without overflow), n outside [1, max_n], top_logprobs outside [-1, 20],
  // invalid sampling parameters, bad stop strings, or an id already in flight. Returns QueueFull
  // when max_waiting requests are queued, ShuttingDown after drain() began; the callback is not
  // called then. A request that fails after submit() (on the engine thread) gets a final update
  // with FinishReason::Error; nothing thrown there ends the engine or the process.
  SubmitStatus submit(RequestId id, std::vector<int32_t> prompt, const RequestOptions& opts, UpdateCallback cb);
  // Cancels a request in any state (unknown or finished ids are ignored); its final update says
  // cancelled.
  void cancel(RequestId id);
  // Stops accepting new requests, lets in-flight ones finish for up to `timeout`, cancels the rest,
  // and returns when every request has had its final update.
  void drain(std::chrono::milliseconds timeout);
  // How many more requests submit() would take now (<= 0: it would answer QueueFull). A hint for
  // refusing early (before a request body is read); submit() decides.
  int64_t admission_headroom() const;

  EngineStats stats() const;
  const Tokenizer& tokenizer() const;
  int64_t max_seq_len() const;
  const EngineConfig& config() const;

 private:
  struct Impl;  // the engine thread, its state, and the locks shared with submitting threads
  std::unique_ptr<Impl> impl_;
};

}  // namespace contrail::engine
