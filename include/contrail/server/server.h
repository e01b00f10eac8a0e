// The OpenAI-compatible HTTP server over an Engine (`contrail serve`).
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (both with "stream": true as
// Server-Sent Events ending in "data: [DONE]"), GET /v1/models, GET /health, GET /metrics
// (Prometheus text), POST /tokenize, POST /detokenize.
//
// Contracts:
// - Bad input (malformed JSON, wrong types, out-of-range values, unknown model, prompt too long,
//   ...) is a 400 with an OpenAI error body {"error": {"message", "type", "param", "code"}}; a full
//   queue is a 429 with Retry-After; a missing or wrong API key (when one is set) a 401; while
//   shutting down new requests get 503. Nothing a client sends crashes the server.
// - A client that disconnects cancels its request (detected on the next write: streams get an SSE
//   comment, non-streamed responses a leading space of the JSON body, at least every second), so
//   its KV blocks are freed.
// - shutdown(): stop taking requests, let in-flight ones finish for up to drain_timeout, cancel the
//   rest (finish_reason "abort"), then stop listening. serve() returns afterwards.
// HTTP: an event-driven HTTP/1.1 server (Boost.Asio + Beast's parser; docs/SERVING.md): thousands
// of idle or slow connections cost no threads; header/body deadlines, header size and count
// limits, a body limit that holds for chunked bodies, no compressed bodies, admission (401, 404,
// 429, 503) decided from the header before the body is read.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "contrail/chat/chat_template.h"
#include "contrail/engine/engine.h"

namespace contrail::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (see Server::port())
  std::string api_key;             // empty: no authentication
  std::string model_name;          // the id of /v1/models; requests may name it or omit "model"
  int http_threads = 4;            // worker threads parsing requests (JSON, tokenization)
  int io_threads = 2;              // threads serving every socket
  size_t max_body_bytes = size_t{8} << 20;        // after chunked framing is removed
  size_t max_body_bytes_in_flight = size_t{256} << 20;  // all bodies being read or waiting together
  size_t max_header_bytes = size_t{16} << 10;
  size_t max_header_count = 100;
  size_t max_connections = 10000;
  std::chrono::milliseconds header_timeout{10000};  // a request's whole header (also keep-alive idle)
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds drain_timeout{30000};
};

class Server {
 public:
  // The engine (and its tokenizer) and the template (may be null) must outlive the server.
  Server(engine::Engine& engine, const ChatTemplate* chat_template, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; throws Error naming host and port on failure. Returns the port.
  int bind();
  // Serves until shutdown() (bind() first).
  void serve();
  // Graceful stop; safe to call from any thread (e.g. a signal-waiting thread), more than once.
  void shutdown();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace contrail::server
