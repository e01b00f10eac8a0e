#include "contrail/engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <numeric>
#include <thread>
#include <unordered_map>

#include "contrail/core/error.h"
#include "contrail/engine/stop_strings.h"

namespace contrail::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "";
}

void EngineConfig::validate() const {
  scheduler.validate();
  if (block_size < 1 || block_size > 4096)
    throw InvalidArgument(fmt::format("engine config: block_size {} outside [1, 4096]", block_size));
  if (n_blocks < 0) throw InvalidArgument(fmt::format("engine config: n_blocks {} is negative", n_blocks));
  if (max_n < 1 || max_n > 128) throw InvalidArgument(fmt::format("engine config: max_n {} outside [1, 128]", max_n));
}

struct Engine::Impl {
  struct Choice;
  struct Request;
  struct Pending {
    RequestId id;
    std::vector<int32_t> prompt;
    RequestOptions opts;
    UpdateCallback cb;
  };
  // An update and the callback it goes to (requests may be gone by delivery time).
  struct Outgoing {
    std::shared_ptr<UpdateCallback> cb;
    RequestUpdate update;
  };

  Impl(std::unique_ptr<ModelRunner> runner, const Tokenizer& tokenizer, EngineConfig config, int64_t max_seq_len);
  ~Impl();
  SubmitStatus submit(RequestId id, std::vector<int32_t> prompt, const RequestOptions& opts, UpdateCallback cb);
  void cancel(RequestId id);
  void drain(std::chrono::milliseconds timeout);
  int64_t admission_headroom() const;
  int64_t headroom_locked() const;  // under mu_

  void loop();
  // One round of the loop: admit, cancel, step, deliver. Returns false when the loop should end.
  bool round();
  // Registers a new request with the scheduler.
  void admit(Pending& p, std::vector<Outgoing>& out);
  void finish_request(Request& r, FinishReason why, const std::string& error, std::vector<Outgoing>& out);
  // Schedules, runs and samples one step; false when nothing could be scheduled.
  bool step(std::vector<Outgoing>& out);
  void fail_step(const SchedulerOutput& out, const std::string& why, std::vector<Outgoing>& updates);
  void deliver(std::vector<Outgoing>& updates);
  void publish_stats();

  std::unique_ptr<ModelRunner> runner_;
  const Tokenizer* tokenizer_;
  EngineConfig config_;
  int64_t max_seq_len_;
  BlockManager blocks_;
  Scheduler sched_;

  // Owned by the engine thread.
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests_;
  std::unordered_map<SeqId, Choice*> by_seq_;
  SeqId next_seq_ = 1;
  std::vector<float> logits_;  // (sampling rows, n_vocab)

  // Shared with submitting threads, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the engine thread
  std::condition_variable idle_cv_;  // signalled when the last active request finishes
  std::deque<Pending> inbox_;
  std::vector<RequestId> cancels_;
  std::unordered_map<RequestId, bool> active_;  // submitted ids without a final update yet
  int64_t waiting_now_ = 0;                     // scheduler waiting count after the last step
  int64_t running_now_ = 0;                     // scheduler running count after the last step
  bool accepting_ = true;
  bool stop_ = false;
  EngineStats stats_;
  std::thread thread_;
};

// One choice of a request: a scheduler sequence with its own sampler, detokenizer and stop matcher.
struct Engine::Impl::Choice {
  Request* req = nullptr;
  int index = 0;
  SeqId seq = 0;
  Sampler sampler;
  StreamDecoder decoder;
  StopMatcher stops;
  int64_t n_generated = 0;
  FinishReason finish = FinishReason::None;
  ChoiceDelta delta;  // news for the next update
  bool dirty = false;
  Choice(Request* r, int i, SeqId s, const SamplingParams& sp, int64_t n_vocab, const Tokenizer& tok,
         std::vector<std::string> stop)
      : req(r), index(i), seq(s), sampler(sp, n_vocab), decoder(tok), stops(std::move(stop)) {
    delta.index = i;
  }
};

struct Engine::Impl::Request {
  RequestId id = 0;
  RequestOptions opts;
  std::shared_ptr<UpdateCallback> cb;
  int64_t n_prompt = 0;
  int64_t n_generated = 0;
  std::vector<std::unique_ptr<Choice>> choices;
  int n_finished = 0;
  bool forked = false;  // the n > 1 children exist in the scheduler
};

namespace {

TokenLogprob make_logprob(const float* lg, int64_t n_vocab, int32_t tok, int k) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n_vocab; ++i) mx = std::max(mx, static_cast<double>(lg[i]));
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(lg[i]) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob out;
  out.token = tok;
  out.logprob = static_cast<float>(lg[tok] - lse);
  if (k > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
    std::iota(idx.begin(), idx.end(), 0);
    const auto kk = std::min<int64_t>(k, n_vocab);
    std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                      [&](int32_t a, int32_t b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
    for (int64_t i = 0; i < kk; ++i) out.top.emplace_back(idx[static_cast<size_t>(i)], static_cast<float>(lg[idx[static_cast<size_t>(i)]] - lse));
  }
  return out;
}

}  // namespace

Engine::Engine(std::unique_ptr<ModelRunner> runner, const Tokenizer& tokenizer, EngineConfig config,
               int64_t max_seq_len)
    : impl_(std::make_unique<Impl>(std::move(runner), tokenizer, std::move(config), max_seq_len)) {}

Engine::~Engine() = default;
SubmitStatus Engine::submit(RequestId id, std::vector<int32_t> prompt, const RequestOptions& opts, UpdateCallback cb) {
  return impl_->submit(id, std::move(prompt), opts, std::move(cb));
}
void Engine::cancel(RequestId id) { impl_->cancel(id); }
void Engine::drain(std::chrono::milliseconds timeout) { impl_->drain(timeout); }
int64_t Engine::admission_headroom() const { return impl_->admission_headroom(); }
const Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer_; }
int64_t Engine::max_seq_len() const { return impl_->max_seq_len_; }
const EngineConfig& Engine::config() const { return impl_->config_; }
EngineStats Engine::stats() const {
  std::lock_guard lk(impl_->mu_);
  return impl_->stats_;
}

Engine::Impl::Impl(std::unique_ptr<ModelRunner> runner, const Tokenizer& tokenizer, EngineConfig config,
                   int64_t max_seq_len)
    : runner_(std::move(runner)),
      tokenizer_(&tokenizer),
      config_((config.validate(), config)),
      max_seq_len_(std::min<int64_t>(max_seq_len, config.scheduler.max_seq_len)),
      blocks_(config.n_blocks, config.block_size, config.prefix_cache),
      sched_([&] {
        SchedulerConfig sc = config.scheduler;
        sc.max_seq_len = max_seq_len_;
        sc.max_waiting = sc.max_waiting + 1;  // submit() enforces the limit; the scheduler never refuses
        return sc;
      }(), blocks_) {
  if (runner_->n_vocab() != tokenizer.n_vocab())
    throw InvalidArgument(fmt::format("engine: the runner has {} vocabulary entries, the tokenizer {}",
                                      runner_->n_vocab(), tokenizer.n_vocab()));
  publish_stats();  // /metrics shows the pool before the first request
  thread_ = std::thread([this] { loop(); });
}

std::unique_ptr<Engine> Engine::create(std::shared_ptr<const ModelFile> model, const Tokenizer& tokenizer,
                                       EngineConfig config) {
  config.validate();
  const ModelConfig& mc = model->config;
  if (config.n_blocks == 0)
    config.n_blocks = PagedKvCache::blocks_in(mc, config.block_size, config.kv_cache_bytes, config.kv_dtype);
  const int64_t ctx = mc.n_ctx_train > 0 ? mc.n_ctx_train : config.scheduler.max_seq_len;
  if (config.n_blocks * config.block_size < std::min(ctx, config.scheduler.max_seq_len))
    config.n_blocks = (std::min(ctx, config.scheduler.max_seq_len) + config.block_size - 1) / config.block_size;
  auto runner = std::make_unique<TransformerRunner>(model, config.n_blocks, config.block_size, config.n_threads,
                                                    config.kv_dtype);
  return std::make_unique<Engine>(std::move(runner), tokenizer, config, ctx);
}

Engine::Impl::~Impl() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    accepting_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SubmitStatus Engine::Impl::submit(RequestId id, std::vector<int32_t> prompt, const RequestOptions& opts, UpdateCallback cb) {
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) throw InvalidArgument("prompt: empty (at least 1 token is required)");
  const int64_t n_vocab = tokenizer_->n_vocab();
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= n_vocab)
      throw InvalidArgument(fmt::format("prompt: token id {} at index {} outside [0, {})", prompt[i], i, n_vocab));
  if (opts.max_tokens < 1) throw InvalidArgument(fmt::format("max_tokens: {} must be >= 1", opts.max_tokens));
  if (n_prompt >= max_seq_len_)
    throw InvalidArgument(fmt::format("prompt: {} tokens leave no room in the context of {} tokens", n_prompt,
                                      max_seq_len_));
  // Compared as max_tokens > limit - n_prompt: n_prompt + max_tokens overflows for huge values.
  if (opts.max_tokens > max_seq_len_ - n_prompt)
    throw InvalidArgument(fmt::format("max_tokens: {} with {} prompt tokens exceeds the context of {} tokens "
                                      "(max_tokens <= {})",
                                      opts.max_tokens, n_prompt, max_seq_len_, max_seq_len_ - n_prompt));
  const int64_t pool_tokens = blocks_.n_blocks() * blocks_.block_size();
  if (opts.max_tokens > pool_tokens - n_prompt)
    throw InvalidArgument(fmt::format("max_tokens: {} prompt + {} new tokens exceed the KV cache of {} tokens",
                                      n_prompt, opts.max_tokens, pool_tokens));
  if (opts.n < 1 || opts.n > config_.max_n)
    throw InvalidArgument(fmt::format("n: {} outside [1, {}]", opts.n, config_.max_n));
  if (opts.top_logprobs < -1 || opts.top_logprobs > 20)
    throw InvalidArgument(fmt::format("top_logprobs: {} outside [0, 20]", opts.top_logprobs));
  opts.sampling.validate();
  StopMatcher check(opts.stop);  // validates the stop strings
  for (int32_t t : opts.stop_token_ids)
    if (t < 0 || t >= n_vocab) throw InvalidArgument(fmt::format("stop_token_ids: {} outside [0, {})", t, n_vocab));
  {
    std::lock_guard lk(mu_);
    if (!accepting_) return SubmitStatus::ShuttingDown;
    if (active_.count(id)) throw InvalidArgument(fmt::format("request id {} is already in flight", id));
    if (headroom_locked() <= 0) return SubmitStatus::QueueFull;
    active_[id] = true;
    ++stats_.active_requests;
    inbox_.push_back({id, std::move(prompt), opts, std::move(cb)});
  }
  cv_.notify_all();
  return SubmitStatus::Ok;
}

int64_t Engine::Impl::headroom_locked() const {
  // Requests that will start at once (free running slots) do not wait: only the rest count
  // against max_waiting.
  const int64_t free_slots = std::max<int64_t>(0, config_.scheduler.max_running - running_now_);
  return config_.scheduler.max_waiting + free_slots - (static_cast<int64_t>(inbox_.size()) + waiting_now_);
}

int64_t Engine::Impl::admission_headroom() const {
  std::lock_guard lk(mu_);
  return accepting_ ? headroom_locked() : 0;
}

void Engine::Impl::cancel(RequestId id) {
  {
    std::lock_guard lk(mu_);
    if (!active_.count(id)) return;
    cancels_.push_back(id);
  }
  cv_.notify_all();
}

void Engine::Impl::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  accepting_ = false;
  if (!idle_cv_.wait_for(lk, timeout, [&] { return active_.empty(); })) {
    for (const auto& [id, unused] : active_) cancels_.push_back(id);
    cv_.notify_all();
    idle_cv_.wait(lk, [&] { return active_.empty(); });
  }
}

void Engine::Impl::admit(Pending& p, std::vector<Outgoing>& updates) {
  auto r = std::make_unique<Request>();
  r->id = p.id;
  r->opts = p.opts;
  r->cb = std::make_shared<UpdateCallback>(std::move(p.cb));
  r->n_prompt = static_cast<int64_t>(p.prompt.size());
  for (int i = 0; i < p.opts.n; ++i) {
    SamplingParams sp = p.opts.sampling;
    sp.seed += static_cast<uint64_t>(i);  // choices differ, each reproducible
    r->choices.push_back(std::make_unique<Choice>(r.get(), i, next_seq_++, sp, runner_->n_vocab(), *tokenizer_, p.opts.stop));
  }
  Choice* first = r->choices[0].get();
  const AddStatus st = sched_.add(first->seq, std::move(p.prompt), r->n_prompt + p.opts.max_tokens);
  if (st != AddStatus::Ok) {  // cannot happen: submit() bounds the queue
    finish_request(*r, FinishReason::Error, "the request queue is full", updates);
    return;
  }
  by_seq_[first->seq] = first;
  {
    std::lock_guard lk(mu_);
    stats_.prompt_tokens += r->n_prompt;
  }
  requests_[r->id] = std::move(r);
}

void Engine::Impl::finish_request(Request& r, FinishReason why, const std::string& error, std::vector<Outgoing>& updates) {
  RequestUpdate u;
  u.id = r.id;
  u.n_prompt = r.n_prompt;
  u.n_generated = r.n_generated;
  u.done = true;
  u.error = error;
  for (auto& c : r.choices) {
    if (c->finish == FinishReason::None) {
      c->finish = why;
      c->delta.finish = why;
      if (why != FinishReason::Error) c->delta.text += c->stops.push(c->decoder.flush()) + c->stops.flush();
      c->dirty = true;
      sched_.finish(c->seq);
      by_seq_.erase(c->seq);
    }
    if (c->dirty) u.choices.push_back(std::move(c->delta));
  }
  updates.push_back({r.cb, std::move(u)});
}

bool Engine::Impl::step(std::vector<Outgoing>& updates) {
  const SchedulerOutput out = sched_.schedule();
  if (out.empty()) return false;
  try {
    runner_->execute(out, sched_, logits_);
  } catch (const std::exception& e) {
    // Should not happen (everything was validated); fail the requests of this step, keep serving.
    std::vector<RequestId> failed;
    for (const ScheduledChunk& c : out.chunks)
      if (auto it = by_seq_.find(c.id); it != by_seq_.end()) failed.push_back(it->second->req->id);
    std::sort(failed.begin(), failed.end());
    failed.erase(std::unique(failed.begin(), failed.end()), failed.end());
    for (RequestId id : failed) {
      finish_request(*requests_.at(id), FinishReason::Error, fmt::format("model runner failed: {}", e.what()), updates);
      requests_.erase(id);
    }
    return true;
  }
  const int64_t n_vocab = runner_->n_vocab();
  struct Sampled {
    Choice* choice;
    int32_t token;
    TokenLogprob lp;
  };
  std::vector<Sampled> news;
  std::vector<int32_t> sampled;  // per sampling chunk, for the scheduler
  std::vector<Sampled> forks;    // n > 1 children started from the parent's first logits
  size_t row = 0;
  for (const ScheduledChunk& c : out.chunks) {
    if (!c.sample) continue;
    const float* lg = &logits_[row++ * static_cast<size_t>(n_vocab)];  // (n_vocab)
    Choice* ch = by_seq_.at(c.id);
    Request& r = *ch->req;
    auto draw = [&](Choice* k) {
      const int32_t tok = k->sampler.sample(std::span<const float>(lg, static_cast<size_t>(n_vocab)));
      Sampled s{k, tok, {}};
      if (r.opts.top_logprobs >= 0) s.lp = make_logprob(lg, n_vocab, tok, r.opts.top_logprobs);
      return s;
    };
    news.push_back(draw(ch));
    sampled.push_back(news.back().token);
    if (ch->index == 0 && r.opts.n > 1 && !r.forked) {
      r.forked = true;
      for (size_t i = 1; i < r.choices.size(); ++i) forks.push_back(draw(r.choices[i].get()));
    }
  }
  sched_.update(out, sampled);
  for (const Sampled& f : forks) {
    sched_.fork(f.choice->req->choices[0]->seq, f.choice->seq, f.token);
    by_seq_[f.choice->seq] = f.choice;
    news.push_back(f);
  }

  int64_t generated = 0;
  std::vector<Request*> touched;
  for (Sampled& s : news) {
    Choice& ch = *s.choice;
    Request& r = *ch.req;
    touched.push_back(&r);
    ch.dirty = true;
    const bool eog = !r.opts.ignore_eos && tokenizer_->is_eog(s.token);
    const bool stop_id = std::find(r.opts.stop_token_ids.begin(), r.opts.stop_token_ids.end(), s.token) !=
                         r.opts.stop_token_ids.end();
    FinishReason fin = FinishReason::None;
    if (eog || stop_id) {
      fin = FinishReason::Stop;
      ch.delta.text += ch.stops.push(ch.decoder.flush());
      if (!ch.stops.stopped()) ch.delta.text += ch.stops.flush();
    } else {
      ++ch.n_generated, ++r.n_generated, ++generated;
      ch.delta.tokens.push_back(s.token);
      if (r.opts.top_logprobs >= 0) ch.delta.logprobs.push_back(std::move(s.lp));
      ch.sampler.accept(s.token);
      ch.delta.text += ch.stops.push(ch.decoder.push(s.token));
      if (ch.stops.stopped()) {
        fin = FinishReason::Stop;
      } else if (ch.n_generated >= r.opts.max_tokens) {
        fin = FinishReason::Length;
        ch.delta.text += ch.stops.push(ch.decoder.flush());
        fin = ch.stops.stopped() ? FinishReason::Stop : FinishReason::Length;
        if (!ch.stops.stopped()) ch.delta.text += ch.stops.flush();
      }
    }
    if (fin != FinishReason::None) {
      ch.finish = fin;
      ch.delta.finish = fin;
      ++r.n_finished;
      sched_.finish(ch.seq);
      by_seq_.erase(ch.seq);
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (Request* r : touched) {
    if (r->n_finished == static_cast<int>(r->choices.size())) {
      finish_request(*r, FinishReason::Stop, "", updates);  // every choice has its reason already
      requests_.erase(r->id);
      continue;
    }
    RequestUpdate u;
    u.id = r->id;
    u.n_prompt = r->n_prompt;
    u.n_generated = r->n_generated;
    for (auto& c : r->choices)
      if (c->dirty) {
        u.choices.push_back(std::move(c->delta));
        c->delta = ChoiceDelta{};
        c->delta.index = c->index;
        c->dirty = false;
      }
    updates.push_back({r->cb, std::move(u)});
  }
  std::lock_guard lk(mu_);
  stats_.generation_tokens += generated;
  ++stats_.steps;
  return true;
}

void Engine::Impl::publish_stats() {
  std::lock_guard lk(mu_);
  waiting_now_ = sched_.n_waiting();
  running_now_ = sched_.n_running();
  stats_.running = sched_.n_running();
  stats_.waiting = sched_.n_waiting() + static_cast<int64_t>(inbox_.size());
  stats_.blocks_total = blocks_.n_blocks();
  stats_.blocks_used = blocks_.n_used();
  stats_.blocks_cached = blocks_.n_cached();
  stats_.blocks_free = blocks_.n_free();
  stats_.prefix_query_tokens = sched_.stats().prefix_query_tokens;
  stats_.prefix_hit_tokens = sched_.stats().prefix_hit_tokens;
  stats_.preemptions = sched_.stats().preemptions;
}

namespace {

// The final update of a request that never reached the scheduler.
RequestUpdate unadmitted_update(RequestId id, int64_t n_prompt, int n, FinishReason why, std::string error) {
  RequestUpdate u;
  u.id = id;
  u.n_prompt = n_prompt;
  u.done = true;
  u.error = std::move(error);
  for (int i = 0; i < n; ++i) {
    ChoiceDelta d;
    d.index = i;
    d.finish = why;
    u.choices.push_back(std::move(d));
  }
  return u;
}

}  // namespace

void Engine::Impl::deliver(std::vector<Outgoing>& updates) {
  std::vector<RequestId> finished;
  for (const Outgoing& o : updates) {
    try {
      if (o.cb && *o.cb) (*o.cb)(o.update);
    } catch (const std::exception& e) {  // a callback must not throw; it cannot stop the others
      std::fprintf(stderr, "contrail engine: update callback of request %llu threw: %s\n",
                   static_cast<unsigned long long>(o.update.id), e.what());
    } catch (...) {
      std::fprintf(stderr, "contrail engine: update callback of request %llu threw\n",
                   static_cast<unsigned long long>(o.update.id));
    }
    if (o.update.done) finished.push_back(o.update.id);
  }
  std::lock_guard lk(mu_);
  for (RequestId id : finished) active_.erase(id);
  stats_.requests_finished += static_cast<int64_t>(finished.size());
  stats_.active_requests = static_cast<int64_t>(active_.size());
  if (active_.empty()) idle_cv_.notify_all();
}

bool Engine::Impl::round() {
  std::deque<Pending> inbox;
  std::vector<RequestId> cancels;
  bool stopping;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return stop_ || !inbox_.empty() || !cancels_.empty() || !requests_.empty(); });
    std::swap(inbox, inbox_);
    std::swap(cancels, cancels_);
    stopping = stop_;
  }
  std::vector<Outgoing> updates;
  for (Pending& p : inbox) {
    const auto n_prompt = static_cast<int64_t>(p.prompt.size());
    if (stopping) {  // never admitted: report it cancelled
      updates.push_back({std::make_shared<UpdateCallback>(std::move(p.cb)),
                         unadmitted_update(p.id, n_prompt, p.opts.n, FinishReason::Cancelled, "")});
      continue;
    }
    try {
      admit(p, updates);
    } catch (const std::exception& e) {  // this request fails alone
      requests_.erase(p.id);
      updates.push_back({std::make_shared<UpdateCallback>(std::move(p.cb)),
                         unadmitted_update(p.id, n_prompt, p.opts.n, FinishReason::Error,
                                           fmt::format("the request could not be started: {}", e.what()))});
    }
  }
  if (stopping)
    for (auto& [id, r] : requests_) cancels.push_back(id);
  bool worked = false;
  try {
    for (RequestId id : cancels) {
      const auto it = requests_.find(id);
      if (it == requests_.end()) continue;
      finish_request(*it->second, FinishReason::Cancelled, "", updates);
      requests_.erase(it);
    }
    worked = !stopping && step(updates);
  } catch (const std::exception& e) {
    // Unexpected (everything was validated): fail what is in flight, so nobody waits forever, and
    // keep serving new requests.
    std::fprintf(stderr, "contrail engine: step failed: %s; failing %zu requests\n", e.what(), requests_.size());
    for (auto& [id, r] : requests_) {
      try {
        finish_request(*r, FinishReason::Error, fmt::format("engine step failed: {}", e.what()), updates);
      } catch (const std::exception&) {
        updates.push_back({r->cb, unadmitted_update(id, r->n_prompt, r->opts.n, FinishReason::Error, e.what())});
      }
    }
    requests_.clear();
    by_seq_.clear();
  }
  publish_stats();
  deliver(updates);
  if (stopping && requests_.empty()) {
    std::lock_guard lk(mu_);
    if (inbox_.empty()) return false;
  }
  if (!worked && !stopping && !requests_.empty()) {
    // Nothing could be scheduled (e.g. blocks held by complete sequences): wait for news.
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(2), [&] { return stop_ || !inbox_.empty() || !cancels_.empty(); });
  }
  return true;
}

void Engine::Impl::loop() {
  while (round()) {
  }
}

}  // namespace contrail::engine
