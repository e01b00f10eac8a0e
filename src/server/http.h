// The HTTP/1.x layer of `contrail serve`: an event-driven server on Boost.Asio with Boost.Beast's
// request parser (docs/SERVING.md says why it replaced cpp-httplib).
//
// Contracts:
// - Any number of idle or slow connections (up to Limits::max_connections) costs a socket and a
//   few KiB each, never a thread: io_threads threads serve every socket, handlers run on a bounded
//   worker pool. A slow client cannot starve anyone: the whole request header must arrive within
//   header_timeout, the body within body_timeout, every write must progress within write_timeout.
// - Limits are enforced before memory is spent: header bytes and count, the body after removing
//   chunked framing (max_body_bytes), all bodies in flight together (max_body_bytes_in_flight),
//   Content-Length checked before the body is read, no
//   Content-Encoding (415: a compressed body is never inflated). Handlers::on_header may answer
//   before the body is read (authentication, 404/405, admission 429/503); the connection is then
//   closed instead of reading the body.
// - Keep-alive and pipelining: requests on one connection are answered in order; bytes that arrive
//   while a request is being handled are kept (up to max_pipeline_bytes) and parsed next.
//   HTTP/1.0 clients get Content-Length or close-delimited bodies, never chunked ones, and the
//   connection closes unless they asked for keep-alive. TCP_NODELAY is set; a response's header
//   and body go out in one write.
// - A client that half-closes after sending still gets its answer. End of input is not taken as
//   a disconnect: after it, the layer probes the client at once, 100 ms later and then every
//   probe_interval (the stream's probe bytes, or for an armed deferred response the 200 header
//   and then whitespace), and a failed write or a reset is a disconnect: Exchange::on_gone's
//   callback runs once.
// - stop(grace): no new connections; answers being written get up to `grace` to finish; then every
//   socket is closed and run() returns, whatever clients do.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace contrail::server::http {

struct Limits {
  size_t max_header_bytes = size_t{16} << 10;  // request line + header fields
  size_t max_header_count = 100;
  size_t max_body_bytes = size_t{8} << 20;     // after chunked framing is removed
  // Request bodies being read or waiting to be handled, all connections together: each reserves
  // its Content-Length (a chunked one: max_body_bytes) from the header; beyond, 503 at once.
  size_t max_body_bytes_in_flight = size_t{256} << 20;
  size_t max_pipeline_bytes = size_t{64} << 10;
  size_t max_queued_write_bytes = size_t{16} << 20;  // a client reading slower than this is dropped
  size_t max_connections = 10000;
  std::chrono::milliseconds header_timeout{10000};  // the whole header, from when a request may start
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};   // per write
  std::chrono::milliseconds probe_interval{1000};
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // target without the query
  unsigned version = 11;  // 10 or 11
  Headers headers;
  std::string body;    // empty in Handlers::on_header
  // The first value of a header field (case-insensitive name), "" when absent.
  std::string header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
};

// One request's answer channel. Thread-safe; calls are applied in the order they are made.
// Exactly one of respond() or a stream (write() ... end()) answers a request.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // A complete answer. After a deferred response began (probing), only the body is written.
  virtual void respond(Response r) = 0;
  // Declares a stream (nothing is sent yet): the header goes out with the first write().
  // probe: bytes written when the stream is quiet after the client's end of input.
  virtual void set_stream(int status, std::string content_type, Headers headers, std::string probe) = 0;
  virtual void write(std::string data) = 0;
  virtual void end() = 0;
  // Declares that a 200 answer of this type will follow (respond()): if the client half-closes
  // before it, the header is sent and whitespace probes follow.
  virtual void set_deferred(std::string content_type) = 0;
  // From now on, probing is allowed (call after the work is accepted, so a refusal can still be a
  // plain error response).
  virtual void arm_probe() = 0;
  // `f` runs once (on an I/O thread) if the client goes away before the answer is complete; at
  // once if it already has.
  virtual void on_gone(std::function<void()> f) = 0;
  virtual bool gone() const = 0;
};
using ExchangePtr = std::shared_ptr<Exchange>;

struct Handlers {
  // On an I/O thread, with the header only (body empty); must be quick. A Response answers at
  // once and the body is not read.
  std::function<std::optional<Response>(const Request&)> on_header;
  // On a worker thread, with the whole request; answers through the exchange, now or later.
  std::function<void(Request&&, ExchangePtr)> on_request;
};

struct ServerOptions {
  Limits limits;
  int io_threads = 2;
  int workers = 4;          // threads running on_request (JSON parsing, tokenization)
  size_t max_queued = 256;  // requests waiting for a worker beyond that get 503
};

class Server {
 public:
  Server(ServerOptions opts, Handlers handlers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens (port 0: any free port); throws Error naming host and port. Returns the port.
  int bind(const std::string& host, int port);
  // Serves on io_threads threads (the caller's among them) until stop().
  void run();
  void stop(std::chrono::milliseconds grace);
  size_t connections() const;
  // How the layer's own refusals (400, 408, 413, 415, 431, 503) are written; a plain JSON body by
  // default.
  void set_error_formatter(std::function<Response(int status, std::string message)> f);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The reason phrase of a status code ("Too Many Requests").
std::string_view reason(int status);

}  // namespace contrail::server::http
