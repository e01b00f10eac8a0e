#include "server/generation.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "contrail/core/error.h"

namespace contrail::server {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One request in flight. Updates come from the engine thread one at a time, so the fields need no
// lock; `finished` is also read by the disconnect path.
struct Generation {
  Metrics& metrics;
  const ModelContext& ctx;
  http::ExchangePtr ex;
  std::shared_ptr<const ParsedRequest> pr;
  std::string rid;
  int64_t created = 0;
  Clock::time_point t0;
  std::vector<ChoiceResult> choices;   // (n) aggregated answer (non-streamed)
  std::vector<bool> role_sent;         // (n) chat streams: the role delta went out
  std::vector<size_t> text_offset;     // (n) streamed bytes per choice (completions logprobs)
  bool first_token_seen = false;
  Clock::time_point t_first;
  std::atomic<bool> finished{false};

  Generation(Metrics& m, const ModelContext& c, http::ExchangePtr e, std::shared_ptr<const ParsedRequest> p)
      : metrics(m), ctx(c), ex(std::move(e)), pr(std::move(p)) {
    const auto n = static_cast<size_t>(pr->opts.n);
    choices.resize(n);
    role_sent.assign(n, false);
    text_offset.assign(n, pr->echo ? pr->prompt_text.size() : 0);
  }

  void observe(const engine::RequestUpdate& u) {
    if (!first_token_seen && u.n_generated > 0) {
      first_token_seen = true;
      t_first = Clock::now();
      metrics.ttft.observe(seconds(t_first - t0));
    }
    if (!u.done) return;
    const auto t_end = Clock::now();
    metrics.e2e.observe(seconds(t_end - t0));
    const int64_t per_choice = u.n_generated / std::max(1, pr->opts.n);
    if (first_token_seen && per_choice > 1)
      metrics.tpot.observe(seconds(t_end - t_first) / static_cast<double>(per_choice - 1));
    engine::FinishReason fr = engine::FinishReason::None;
    for (const auto& c : u.choices) fr = c.finish;
    if (!finished.exchange(true) && !u.choices.empty()) metrics.count_finished(api_finish_reason(fr));
  }

  void stream(const engine::RequestUpdate& u) {
    auto send = [&](const json& j) { ex->write("data: " + dump(j) + "\n\n"); };
    for (const engine::ChoiceDelta& d : u.choices) {
      const auto i = static_cast<size_t>(d.index);
      const bool first = pr->chat && !role_sent[i];
      role_sent[i] = true;
      send(stream_chunk(rid, created, ctx, *pr, d, first, text_offset[i]));
      text_offset[i] += d.text.size();
    }
    if (!u.done) return;
    if (pr->include_usage) send(usage_chunk(rid, created, ctx, *pr, u.n_prompt, u.n_generated));
    ex->write("data: [DONE]\n\n");
    ex->end();
  }

  void aggregate(const engine::RequestUpdate& u) {
    for (const engine::ChoiceDelta& d : u.choices) {
      ChoiceResult& c = choices[static_cast<size_t>(d.index)];
      c.tokens.insert(c.tokens.end(), d.tokens.begin(), d.tokens.end());
      c.text += d.text;
      c.logprobs.insert(c.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
      if (d.finish != engine::FinishReason::None) c.finish = d.finish;
    }
    if (!u.done) return;
    http::Response r;
    r.body = dump(completion_response(rid, created, ctx, *pr, choices, u.n_prompt, u.n_generated));
    ex->respond(std::move(r));
  }

  // On the engine thread: must not throw (it would fail other requests' step).
  void on_update(const engine::RequestUpdate& u) noexcept {
    try {
      observe(u);
      if (pr->stream) stream(u);
      else aggregate(u);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "contrail serve: answering request %s failed: %s\n", rid.c_str(), e.what());
      ++metrics.server_errors;
      ex->respond(http::Response{500, "application/json",
                                 dump(api_error(500, "internal error while answering", "server_error").body()), {}});
    }
  }
};

}  // namespace

void Generator::start(std::string body_text, bool chat, http::ExchangePtr ex) {
  const Clock::time_point t0 = Clock::now();
  if (draining_) throw api_error(503, "the server is shutting down", "server_error", "shutting_down");
  const json body = parse_json_body(body_text);
  body_text.clear();
  body_text.shrink_to_fit();
  auto pr = std::make_shared<const ParsedRequest>(parse_completion_request(body, ctx_, chat));
  const uint64_t id = next_id_++;
  auto g = std::make_shared<Generation>(metrics_, ctx_, ex, pr);
  g->t0 = t0;
  g->rid = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", id);
  g->created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (pr->stream)
    ex->set_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}},
                   ": ping\n\n");
  else
    ex->set_deferred("application/json");

  engine::SubmitStatus status;
  try {
    status = engine_.submit(id, pr->prompt, pr->opts, [g](const engine::RequestUpdate& u) { g->on_update(u); });
  } catch (const InvalidArgument& e) {
    throw api_error(400, e.what(), "invalid_request_error");
  }
  if (status == engine::SubmitStatus::QueueFull) throw queue_full_error(engine_);
  if (status == engine::SubmitStatus::ShuttingDown)
    throw api_error(503, "the server is shutting down", "server_error", "shutting_down");
  // The client went away before the end: cancel (frees the KV blocks).
  ex->on_gone([this, g, id] {
    if (!g->finished.exchange(true)) {
      engine_.cancel(id);
      metrics_.count_finished("disconnect");
    }
  });
  ex->arm_probe();
}

}  // namespace contrail::server
