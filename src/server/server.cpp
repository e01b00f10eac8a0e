// The OpenAI-compatible server over the HTTP layer: routes, authentication and admission decided
// from the header, the small endpoints (health, metrics, models, tokenize, detokenize), shutdown.
// Generation requests are in generation.cpp.
#include "contrail/server/server.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

#include <atomic>
#include <mutex>

#include "contrail/core/error.h"
#include "server/generation.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace contrail::server {
namespace {

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response error_response(const ApiError& e) {
  http::Response r = json_response(e.status, dump(e.body()));
  if (e.status == 429) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// SHA-256 of a string (the API key comparison is over digests, so its time says nothing about the key).
std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

// "Authorization: Bearer <key>": the scheme is case-insensitive (RFC 7235), spaces after it are skipped.
bool key_matches(const std::string& header, const std::array<unsigned char, 32>& want) {
  static constexpr std::string_view kScheme = "bearer";
  std::string_view h = header;
  if (h.size() < kScheme.size() + 1 || strncasecmp(h.data(), kScheme.data(), kScheme.size()) != 0) return false;
  h.remove_prefix(kScheme.size());
  if (h.front() != ' ' && h.front() != '\t') return false;
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  const auto got = sha256(h);
  return CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
}

struct Route {
  const char* method;
  const char* path;
};
constexpr Route kRoutes[] = {{"GET", "/health"},          {"GET", "/metrics"},   {"GET", "/v1/models"},
                             {"POST", "/tokenize"},       {"POST", "/detokenize"}, {"POST", "/v1/completions"},
                             {"POST", "/v1/chat/completions"}};

}  // namespace

struct Server::Impl {
  engine::Engine& engine;
  ServerConfig cfg;
  ModelContext ctx;
  Metrics metrics;
  std::array<unsigned char, 32> key_digest{};
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};
  std::mutex shutdown_mu;
  bool shut = false;
  int bound_port = 0;
  int64_t started = 0;
  std::unique_ptr<http::Server> http;
  std::unique_ptr<Generator> gen;

  Impl(engine::Engine& e, const ChatTemplate* tmpl, ServerConfig c) : engine(e), cfg(std::move(c)) {
    ctx = make_model_context(e, tmpl, cfg.model_name.empty() ? "model" : cfg.model_name);
    key_digest = sha256(cfg.api_key);
    started = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    gen = std::make_unique<Generator>(engine, ctx, metrics, next_id, draining);
    http::ServerOptions o;
    o.io_threads = std::max(1, cfg.io_threads);
    o.workers = std::max(1, cfg.http_threads);
    o.limits.max_body_bytes = cfg.max_body_bytes;
    o.limits.max_body_bytes_in_flight = cfg.max_body_bytes_in_flight;
    o.limits.max_header_bytes = cfg.max_header_bytes;
    o.limits.max_header_count = cfg.max_header_count;
    o.limits.max_connections = cfg.max_connections;
    o.limits.header_timeout = cfg.header_timeout;
    o.limits.body_timeout = cfg.body_timeout;
    http::Handlers h;
    h.on_header = [this](const http::Request& r) { return on_header(r); };
    h.on_request = [this](http::Request&& r, http::ExchangePtr ex) { on_request(std::move(r), std::move(ex)); };
    http = std::make_unique<http::Server>(o, std::move(h));
    http->set_error_formatter([this](int status, std::string message) {
      if (status >= 500) ++metrics.server_errors;
      else ++metrics.bad_requests;
      return error_response(api_error(status, std::move(message), status >= 500 ? "server_error" : "invalid_request_error"));
    });
  }

  // Everything decided from the header alone: unknown routes, methods, authentication, shutdown,
  // admission; the cheap GET endpoints are answered here too (never queued behind workers).
  std::optional<http::Response> on_header(const http::Request& r) {
    bool path_known = false, route_known = false;
    for (const Route& rt : kRoutes)
      if (r.path == rt.path) {
        path_known = true;
        route_known = route_known || r.method == rt.method;
      }
    if (!path_known) return reject(api_error(404, fmt::format("no route for {} {}", r.method, r.path.substr(0, 200)),
                                             "invalid_request_error", "not_found"));
    if (!route_known) {
      http::Response res = reject(api_error(405, fmt::format("{} does not take {}", r.path, r.method.substr(0, 20)),
                                            "invalid_request_error", "method_not_allowed"));
      for (const Route& rt : kRoutes)
        if (r.path == rt.path) res.headers.emplace_back("Allow", rt.method);
      return res;
    }
    if (r.path == "/health") {
      return draining ? json_response(503, "{\"status\":\"shutting down\"}") : json_response(200, "{\"status\":\"ok\"}");
    }
    if (r.path == "/metrics") {
      http::Response res = json_response(200, metrics.render(engine.stats(), ctx.name));
      res.content_type = "text/plain; version=0.0.4";
      return res;
    }
    if (!cfg.api_key.empty() && !key_matches(r.header("Authorization"), key_digest))
      return reject(api_error(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                              "invalid_request_error", "invalid_api_key"));
    if (r.path == "/v1/models") return json_response(200, dump(models_json()));
    if (r.path == "/v1/completions" || r.path == "/v1/chat/completions") {
      if (draining) return reject(api_error(503, "the server is shutting down", "server_error", "shutting_down"));
      if (engine.admission_headroom() <= 0) {
        ++metrics.rejected_429;
        return error_response(queue_full_error(engine));
      }
    }
    return std::nullopt;
  }

  http::Response reject(const ApiError& e) {
    ++metrics.bad_requests;
    return error_response(e);
  }

  json models_json() const {
    return {{"object", "list"},
            {"data", json::array({{{"id", ctx.name},
                                   {"object", "model"},
                                   {"created", started},
                                   {"owned_by", "contrail"},
                                   {"root", ctx.name},
                                   {"max_model_len", ctx.max_seq_len}}})}};
  }

  void on_request(http::Request&& r, http::ExchangePtr ex) {
    try {
      if (r.path == "/v1/completions" || r.path == "/v1/chat/completions")
        return gen->start(std::move(r.body), r.path == "/v1/chat/completions", ex);
      const json body = parse_json_body(r.body);
      if (r.path == "/tokenize") return ex->respond(json_response(200, dump(tokenize(body, ctx))));
      if (r.path == "/detokenize") return ex->respond(json_response(200, dump(detokenize(body, ctx))));
      throw api_error(404, "no route", "invalid_request_error", "not_found");
    } catch (const ApiError& e) {
      if (e.status == 429) ++metrics.rejected_429;
      else if (e.status >= 500) ++metrics.server_errors;
      else ++metrics.bad_requests;
      ex->respond(error_response(e));
    }
  }
};

Server::Server(engine::Engine& engine, const ChatTemplate* chat_template, ServerConfig config)
    : impl_(std::make_unique<Impl>(engine, chat_template, std::move(config))) {}

Server::~Server() { shutdown(); }

int Server::bind() {
  impl_->bound_port = impl_->http->bind(impl_->cfg.host, impl_->cfg.port);
  return impl_->bound_port;
}

void Server::serve() { impl_->http->run(); }

void Server::shutdown() {
  {
    std::lock_guard lk(impl_->shutdown_mu);
    if (impl_->shut) return;
    impl_->shut = true;
  }
  impl_->draining = true;
  // In-flight requests finish (or are cancelled at the deadline) while their connections are
  // still served; new ones get 503. The engine's deadline holds whatever clients do.
  impl_->engine.drain(impl_->cfg.drain_timeout);
  // Every request has had its final update; its last bytes get a moment to go out, then every
  // connection is closed, slow readers included.
  impl_->http->stop(std::chrono::milliseconds(1000));
}

int Server::port() const { return impl_->bound_port; }

}  // namespace contrail::server
