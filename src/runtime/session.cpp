#include "contrail/runtime/session.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "contrail/core/error.h"

namespace contrail {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Default context: the training context, capped so a large model's f32 KV cache stays modest.
constexpr int64_t kDefaultMaxCtx = 4096;

int64_t pick_ctx(const ModelConfig& c, int64_t want) {
  if (want > 0) return want;
  return c.n_ctx_train > 0 ? std::min(c.n_ctx_train, kDefaultMaxCtx) : kDefaultMaxCtx;
}

}  // namespace

std::unique_ptr<Session> Session::load(const std::string& model_path, const SessionOptions& opts) {
  auto mf = std::make_shared<ModelFile>(load_model_file(model_path, opts.load));
  return std::make_unique<Session>(std::move(mf), opts);
}

namespace {
// A model without a vocabulary (a weights-only Hugging Face directory) cannot run: say which files
// are missing instead of failing on an empty token list.
const VocabData& checked_vocab(const ModelFile& m) {
  if (m.vocab.tokens.empty())
    throw FormatError(fmt::format("{}: the model has no tokenizer (a Hugging Face directory needs tokenizer.json or "
                                  "tokenizer.model beside config.json)",
                                  m.path));
  return m.vocab;
}
}  // namespace

Session::Session(std::shared_ptr<const ModelFile> model, const SessionOptions& opts)
    : model_(model),
      transformer_(model),
      tokenizer_(checked_vocab(*model)),
      pool_(opts.n_threads),
      cache_(model->config, pick_ctx(model->config, opts.n_ctx)),
      n_batch_(opts.n_batch) {
  if (n_batch_ <= 0) throw InvalidArgument(fmt::format("n_batch {} must be positive", n_batch_));
  if (tokenizer_.n_vocab() != model->config.n_vocab)
    throw FormatError(fmt::format("{}: tokenizer has {} tokens but the model's vocabulary is {}", model->path,
                                  tokenizer_.n_vocab(), model->config.n_vocab));
}

void Session::prefill(std::span<const int32_t> ids, std::vector<float>& logits, bool all_logits) {
  const ModelConfig& c = config();
  std::vector<float> chunk_logits;
  if (all_logits) logits.assign(ids.size() * static_cast<size_t>(c.n_vocab), 0.f);
  try {
    for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(n_batch_)) {
      const size_t end = std::min(ids.size(), begin + static_cast<size_t>(n_batch_));
      const std::span<const int32_t> chunk = ids.subspan(begin, end - begin);
      transformer_.forward(chunk, cache_, pool_, all_logits ? chunk_logits : logits, all_logits);
      cached_ids_.insert(cached_ids_.end(), chunk.begin(), chunk.end());
      if (all_logits)
        std::copy(chunk_logits.begin(), chunk_logits.end(),
                  logits.begin() + static_cast<ptrdiff_t>(begin * c.n_vocab));
    }
  } catch (...) {
    // Keep the record and the cache in step: only the chunks that completed count.
    cache_.set_n_past(static_cast<int64_t>(cached_ids_.size()));
    throw;
  }
}

void Session::reset() {
  cache_.clear();
  cached_ids_.clear();
}

void Session::append(std::span<const int32_t> ids, std::vector<float>& logits, bool all_logits) {
  if (ids.empty()) throw InvalidArgument("append: no tokens given");
  if (static_cast<int64_t>(ids.size()) > n_ctx() - cache_.n_past())
    throw InvalidArgument(fmt::format("append: {} tokens after the {} cached do not fit the context size {}",
                                      ids.size(), cache_.n_past(), n_ctx()));
  prefill(ids, logits, all_logits);
}

std::vector<float> Session::evaluate_all(std::span<const int32_t> ids) {
  if (ids.empty()) throw InvalidArgument("evaluate: no tokens given");
  if (static_cast<int64_t>(ids.size()) > n_ctx())
    throw InvalidArgument(fmt::format("evaluate: {} tokens exceed the context size {}", ids.size(), n_ctx()));
  reset();
  std::vector<float> logits;
  prefill(ids, logits, true);
  return logits;
}

GenerationStats Session::generate(std::span<const int32_t> prompt, const GenerateOptions& opts,
                                  const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw InvalidArgument("generate: the prompt has no tokens");
  if (static_cast<int64_t>(prompt.size()) >= n_ctx())
    throw InvalidArgument(fmt::format("generate: prompt of {} tokens leaves no room in the context size {}",
                                      prompt.size(), n_ctx()));
  if (opts.max_new_tokens < 0)
    throw InvalidArgument(fmt::format("generate: max_new_tokens {} must be >= 0", opts.max_new_tokens));
  Sampler sampler(opts.sampling, config().n_vocab);
  for (int32_t id : prompt) sampler.accept(id);

  GenerationStats st;
  st.n_prompt = static_cast<int64_t>(prompt.size());
  // Reusable rows: the common prefix, but at least the last prompt token is computed again, since
  // its logits are needed to sample from.
  size_t keep = 0;
  if (opts.reuse_cache) {
    const size_t limit = std::min(prompt.size() - 1, cached_ids_.size());
    while (keep < limit && cached_ids_[keep] == prompt[keep]) ++keep;
  }
  cache_.set_n_past(static_cast<int64_t>(keep));
  cached_ids_.resize(keep);
  st.n_prompt_cached = static_cast<int64_t>(keep);
  std::vector<float> logits;  // (1, n_vocab)
  auto t0 = std::chrono::steady_clock::now();
  prefill(prompt.subspan(keep), logits, false);
  st.prompt_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  while (st.n_generated < opts.max_new_tokens) {
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    if (opts.stop_at_eog && tokenizer_.is_eog(id)) break;
    if (std::find(opts.stop_token_ids.begin(), opts.stop_token_ids.end(), id) != opts.stop_token_ids.end()) break;
    ++st.n_generated;
    if (!on_token(id)) break;
    if (st.n_generated == opts.max_new_tokens || cache_.n_past() >= n_ctx()) break;
    const int32_t one[1] = {id};
    prefill(one, logits, false);
  }
  st.gen_seconds = seconds_since(t0);
  return st;
}

}  // namespace contrail
