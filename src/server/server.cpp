// HTTP wiring of the OpenAI-compatible server: routes, authentication, admission answers,
// streaming (SSE) and non-streamed responses with disconnect detection, graceful shutdown.
#include "contrail/server/server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "contrail/core/error.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace contrail::server {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(e.body()), "application/json");
}

ApiError api_error(int status, std::string message, std::string type, std::string code = "", std::string param = "") {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  e.param = std::move(param);
  return e;
}

// Updates of one request, handed from the engine thread to the HTTP worker.
struct Stream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<engine::RequestUpdate> updates;
  bool done = false;
};

}  // namespace

struct Server::Impl {
  engine::Engine& engine;
  ServerConfig cfg;
  ModelContext ctx;
  httplib::Server http;
  Metrics metrics;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};
  std::mutex shutdown_mu;
  bool shut = false;
  int bound_port = 0;
  int listen_fd = -1;
  int64_t started = 0;

  Impl(engine::Engine& e, const ChatTemplate* tmpl, ServerConfig c) : engine(e), cfg(std::move(c)) {
    const Tokenizer& tok = e.tokenizer();
    ctx.name = cfg.model_name.empty() ? "model" : cfg.model_name;
    ctx.tokenizer = &tok;
    ctx.chat_template = tmpl;
    if (tok.bos_id() >= 0) ctx.bos_text = tok.token_to_bytes(tok.bos_id(), true);
    if (tok.eos_id() >= 0) ctx.eos_text = tok.token_to_bytes(tok.eos_id(), true);
    ctx.max_seq_len = e.max_seq_len();
    ctx.max_n = e.config().max_n;
    started = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    routes();
  }

  bool parse_body(const httplib::Request& req, httplib::Response& res, json& body) {
    try {
      body = json::parse(req.body);
      return true;
    } catch (const json::parse_error& e) {
      ++metrics.bad_requests;
      send_error(res, api_error(400, fmt::format("the request body is not valid JSON: {}", e.what()),
                                "invalid_request_error"));
      return false;
    }
  }

  void routes() {
    http.new_task_queue = [n = cfg.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
    http.set_payload_max_length(cfg.max_body_bytes);
    http.set_keep_alive_max_count(10000);
    http.set_keep_alive_timeout(5);
    http.set_read_timeout(60, 0);
    http.set_write_timeout(30, 0);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (cfg.api_key.empty() || req.path == "/health" || req.path == "/metrics")
        return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + cfg.api_key)
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, api_error(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                                "invalid_request_error", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      ++metrics.server_errors;
      send_error(res, api_error(500, fmt::format("internal error: {}", what), "server_error"));
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote an error body
      if (res.status == 404)
        send_error(res, api_error(404, fmt::format("no route for {} {}", req.method, req.path), "invalid_request_error",
                                  "not_found"));
      else if (res.status == 413)
        send_error(res, api_error(413, "the request body is too large", "invalid_request_error"));
      else if (res.status >= 400)
        send_error(res, api_error(res.status, fmt::format("HTTP error {}", res.status), "invalid_request_error"));
    });

    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (draining) {
        res.status = 503;
        res.set_content("{\"status\":\"shutting down\"}", "application/json");
      } else {
        res.set_content("{\"status\":\"ok\"}", "application/json");
      }
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(engine.stats(), ctx.name), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      const json m = {{"object", "list"},
                      {"data", json::array({{{"id", ctx.name},
                                             {"object", "model"},
                                             {"created", started},
                                             {"owned_by", "contrail"},
                                             {"max_model_len", ctx.max_seq_len}}})}};
      res.set_content(dump(m), "application/json");
    });
    http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { tokenize(req, res); });
    http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) { detokenize(req, res); });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!parse_body(req, res, body)) return;
    try {
      if (!body.is_object() || !body.contains("prompt") || !body["prompt"].is_string())
        throw api_error(400, "'prompt' must be a string", "invalid_request_error", "", "prompt");
      bool add_special = true;
      if (body.contains("add_special_tokens")) {
        if (!body["add_special_tokens"].is_boolean())
          throw api_error(400, "'add_special_tokens' must be a boolean", "invalid_request_error", "", "add_special_tokens");
        add_special = body["add_special_tokens"].get<bool>();
      }
      const auto ids = ctx.tokenizer->encode(body["prompt"].get<std::string>(), add_special);
      res.set_content(dump({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx.max_seq_len}}),
                      "application/json");
    } catch (const ApiError& e) {
      ++metrics.bad_requests;
      send_error(res, e);
    }
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!parse_body(req, res, body)) return;
    try {
      if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
        throw api_error(400, "'tokens' must be an array of token ids", "invalid_request_error", "", "tokens");
      std::vector<int32_t> ids;
      const int64_t n_vocab = ctx.tokenizer->n_vocab();
      for (size_t i = 0; i < body["tokens"].size(); ++i) {
        const json& t = body["tokens"][i];
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
          throw api_error(400, fmt::format("'tokens[{}]' is {}, not a token id in [0, {})", i, t.dump(), n_vocab),
                          "invalid_request_error", "", "tokens");
        ids.push_back(t.get<int32_t>());
      }
      res.set_content(dump({{"prompt", ctx.tokenizer->decode(ids)}}), "application/json");
    } catch (const ApiError& e) {
      ++metrics.bad_requests;
      send_error(res, e);
    }
  }

  void generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    const Clock::time_point t0 = Clock::now();
    if (draining) {
      send_error(res, api_error(503, "the server is shutting down", "server_error", "shutting_down"));
      return;
    }
    json body;
    if (!parse_body(req, res, body)) return;
    std::shared_ptr<ParsedRequest> pr;
    try {
      pr = std::make_shared<ParsedRequest>(parse_completion_request(body, ctx, chat));
    } catch (const ApiError& e) {
      ++metrics.bad_requests;
      send_error(res, e);
      return;
    }
    const uint64_t id = next_id++;
    auto st = std::make_shared<Stream>();
    engine::SubmitStatus status;
    try {
      status = engine.submit(id, pr->prompt, pr->opts, [st](const engine::RequestUpdate& u) {
        {
          std::lock_guard lk(st->mu);
          st->updates.push_back(u);
          if (u.done) st->done = true;
        }
        st->cv.notify_all();
      });
    } catch (const InvalidArgument& e) {
      ++metrics.bad_requests;
      send_error(res, api_error(400, e.what(), "invalid_request_error"));
      return;
    }
    if (status == engine::SubmitStatus::QueueFull) {
      ++metrics.rejected_429;
      res.set_header("Retry-After", "1");
      send_error(res, api_error(429, fmt::format("the server is at capacity ({} requests waiting); retry later",
                                                 engine.config().scheduler.max_waiting),
                                "rate_limit_error", "queue_full"));
      return;
    }
    if (status == engine::SubmitStatus::ShuttingDown) {
      send_error(res, api_error(503, "the server is shutting down", "server_error", "shutting_down"));
      return;
    }
    const std::string rid = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", id);
    const int64_t created =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Per-request state shared by the provider calls.
    struct State {
      std::vector<ChoiceResult> choices;
      std::vector<bool> role_sent;
      std::vector<size_t> text_offset;  // streamed bytes per choice (completions logprobs text_offset)
      bool first_token_seen = false, finished = false;
      Clock::time_point t_first;
      int64_t n_prompt = 0, n_generated = 0;
    };
    auto s = std::make_shared<State>();
    s->choices.resize(static_cast<size_t>(pr->opts.n));
    s->role_sent.assign(static_cast<size_t>(pr->opts.n), false);
    s->text_offset.assign(static_cast<size_t>(pr->opts.n), pr->echo ? pr->prompt_text.size() : 0);

    // Waits up to 1 s for updates; returns them (empty on timeout).
    auto next_updates = [st] {
      std::unique_lock lk(st->mu);
      st->cv.wait_for(lk, std::chrono::seconds(1), [&] { return !st->updates.empty(); });
      std::deque<engine::RequestUpdate> out;
      std::swap(out, st->updates);
      return out;
    };
    auto record = [this, s, t0, pr](const engine::RequestUpdate& u) {
      s->n_prompt = u.n_prompt;
      s->n_generated = u.n_generated;
      if (!s->first_token_seen && u.n_generated > 0) {
        s->first_token_seen = true;
        s->t_first = Clock::now();
        metrics.ttft.observe(seconds(s->t_first - t0));
      }
      if (u.done) {
        s->finished = true;
        const auto t_end = Clock::now();
        metrics.e2e.observe(seconds(t_end - t0));
        const int64_t per_choice = u.n_generated / std::max(1, pr->opts.n);
        if (s->first_token_seen && per_choice > 1)
          metrics.tpot.observe(seconds(t_end - s->t_first) / static_cast<double>(per_choice - 1));
        engine::FinishReason fr = engine::FinishReason::None;
        for (const auto& c : u.choices) fr = c.finish;
        if (!u.choices.empty()) metrics.count_finished(api_finish_reason(fr));
      }
    };
    // The client went away before the end: cancel (frees the KV blocks).
    auto on_release = [this, s, id](bool) {
      if (!s->finished) {
        engine.cancel(id);
        metrics.count_finished("disconnect");
      }
    };

    if (pr->stream) {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, st, s, pr, rid, created, next_updates, record](size_t, httplib::DataSink& sink) {
            auto send = [&](const json& j) {
              const std::string line = "data: " + dump(j) + "\n\n";
              return sink.write(line.data(), line.size());
            };
            const auto ups = next_updates();
            if (ups.empty()) {  // nothing new for a second: probe the connection with an SSE comment
              static const char ping[] = ": ping\n\n";
              return sink.write(ping, sizeof(ping) - 1);
            }
            for (const engine::RequestUpdate& u : ups) {
              record(u);
              for (const engine::ChoiceDelta& d : u.choices) {
                const auto i = static_cast<size_t>(d.index);
                const bool first = pr->chat && !s->role_sent[i];
                s->role_sent[i] = true;
                if (!send(stream_chunk(rid, created, ctx, *pr, d, first, s->text_offset[i]))) return false;
                s->text_offset[i] += d.text.size();
              }
              if (u.done) {
                if (pr->include_usage && !send(usage_chunk(rid, created, ctx, *pr, u.n_prompt, u.n_generated)))
                  return false;
                static const char fin[] = "data: [DONE]\n\n";
                if (!sink.write(fin, sizeof(fin) - 1)) return false;
                sink.done();
                return true;
              }
            }
            return true;
          },
          on_release);
      return;
    }
    res.set_chunked_content_provider(
        "application/json",
        [this, s, pr, rid, created, next_updates, record, last_probe = Clock::now()](size_t,
                                                                                   httplib::DataSink& sink) mutable {
          // Nothing is written until the end, so probe the client at least every second with a
          // space (JSON allows leading whitespace): a write to a closed connection fails.
          if (Clock::now() - last_probe >= std::chrono::seconds(1)) {
            last_probe = Clock::now();
            if (!sink.write(" ", 1)) return false;
          }
          const auto ups = next_updates();
          for (const engine::RequestUpdate& u : ups) {
            record(u);
            for (const engine::ChoiceDelta& d : u.choices) {
              ChoiceResult& c = s->choices[static_cast<size_t>(d.index)];
              c.tokens.insert(c.tokens.end(), d.tokens.begin(), d.tokens.end());
              c.text += d.text;
              c.logprobs.insert(c.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
              if (d.finish != engine::FinishReason::None) c.finish = d.finish;
            }
            if (u.done) {
              const std::string out =
                  dump(completion_response(rid, created, ctx, *pr, s->choices, u.n_prompt, u.n_generated));
              if (!sink.write(out.data(), out.size())) return false;
              sink.done();
              return true;
            }
          }
          return true;
        },
        on_release);
  }
};

Server::Server(engine::Engine& engine, const ChatTemplate* chat_template, ServerConfig config)
    : impl_(std::make_unique<Impl>(engine, chat_template, std::move(config))) {}

Server::~Server() { shutdown(); }

int Server::bind() {
  auto& h = impl_->http;
  // httplib listens with a backlog of 5, so a burst of simultaneous connects (a benchmark client,
  // many users at once) is dropped: remember the socket and listen again with the system maximum.
  h.set_socket_options([this](socket_t fd) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    impl_->listen_fd = fd;
  });
  if (impl_->cfg.port == 0) {
    const int p = h.bind_to_any_port(impl_->cfg.host);
    if (p <= 0) throw Error(fmt::format("serve: cannot bind {} on any port", impl_->cfg.host));
    impl_->bound_port = p;
  } else {
    if (!h.bind_to_port(impl_->cfg.host, impl_->cfg.port))
      throw Error(fmt::format("serve: cannot listen on {}:{} (in use, or not a local address?)", impl_->cfg.host,
                              impl_->cfg.port));
    impl_->bound_port = impl_->cfg.port;
  }
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  return impl_->bound_port;
}

void Server::serve() { impl_->http.listen_after_bind(); }

void Server::shutdown() {
  {
    std::lock_guard lk(impl_->shutdown_mu);
    if (impl_->shut) return;
    impl_->shut = true;
  }
  impl_->draining = true;
  // In-flight requests finish (or are cancelled at the deadline) while the listener still serves
  // their connections; new ones get 503.
  impl_->engine.drain(impl_->cfg.drain_timeout);
  // Every request has had its final update; stop() closes the listener and joins the workers,
  // which write those last events first.
  impl_->http.stop();
}

int Server::port() const { return impl_->bound_port; }

}  // namespace contrail::server
