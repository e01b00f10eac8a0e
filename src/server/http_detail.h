// Internals of the HTTP layer (http.h): the per-connection state machine and the answer channel.
// Everything of a Connection runs on its strand (the socket's executor); an ExchangeImpl turns
// answer calls from any thread into bytes under its mutex and posts them, in order, to that strand.
#pragma once
// <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "server/http.h"

namespace contrail::server::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

class Connection;

// What connections share: options, handlers, the worker pool, the registry used by stop().
struct Core {
  ServerOptions opts;
  Handlers handlers;
  std::function<Response(int, std::string)> error_response;  // layer errors in the server's format
  net::thread_pool workers;
  std::atomic<size_t> queued{0};
  std::atomic<size_t> body_bytes{0};  // reserved by bodies being read or waiting (Limits::max_body_bytes_in_flight)
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;

  Core(ServerOptions o, Handlers h)
      : opts(std::move(o)), handlers(std::move(h)), workers(static_cast<size_t>(opts.workers)) {}
};

// "HTTP/1.1 <status> <reason>" + fields; `length` < 0: no Content-Length (chunked or close-delimited).
std::string status_head(int status, const std::string& content_type, const Headers& headers, int64_t length,
                        bool chunked, bool keep_alive);
std::string chunk(std::string_view data);  // one chunk of a chunked body

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<Connection> conn, net::any_io_executor strand, unsigned version, bool keep_alive);
  void respond(Response r) override;
  void set_stream(int status, std::string content_type, Headers headers, std::string probe) override;
  void write(std::string data) override;
  void end() override;
  void set_deferred(std::string content_type) override;
  void arm_probe() override;
  void on_gone(std::function<void()> f) override;
  bool gone() const override;

  // Connection side (its strand): bytes of a probe to send now, if any.
  void probe_tick();
  void mark_gone();

 private:
  enum class State { Fresh, Streaming, DeferredStarted, Done };
  // Posts bytes to the connection (under mu_, so the strand sees them in production order).
  void emit(std::string bytes, bool last, bool close_delimited = false);
  void begin_stream_locked();

  // Keeps the connection alive until the answer is complete (or the client is gone); the
  // connection drops its pointer to this exchange then, which breaks the cycle.
  std::shared_ptr<Connection> conn_;
  net::any_io_executor strand_;
  const unsigned version_;
  const bool keep_alive_;
  mutable std::mutex mu_;
  State state_ = State::Fresh;
  bool has_stream_ = false, has_deferred_ = false, armed_ = false, wrote_ = false, gone_ = false;
  int stream_status_ = 200;
  std::string stream_type_, probe_, deferred_type_;
  Headers stream_headers_;
  std::function<void()> gone_cb_;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Core> core, tcp::socket sock);
  void start();
  // Strand only: queue bytes of the current answer; `last` completes it.
  void send(std::string bytes, bool last, bool close);
  // Any thread: close now (stop()).
  void abort();
  bool busy() const;  // an answer is in progress, or bytes are queued or being written

 private:
  enum class Phase { Header, Body, Handling, Closing, Closed };
  void read_header();
  void on_header(beast::error_code ec);
  void on_body(beast::error_code ec);
  bool check_header(Request& hdr);
  void dispatch();
  void watch();
  void on_watch(beast::error_code ec, size_t n);
  void do_write();
  void on_write(beast::error_code ec);
  void finish_answer();
  void reply_and_close(int status, std::string message);
  void graceful_close();
  void discard_input(size_t total);
  // Reserves room for this request's body in the server-wide budget; false when it is full.
  bool reserve_body();
  void release_body();
  void fail();
  void arm(net::steady_timer& t, std::chrono::milliseconds d);
  void probe_loop();

  std::shared_ptr<Core> core_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
  std::unique_ptr<std::array<char, 65536>> discard_;  // only while closing
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request req_;  // the header of the request being read (its body is added by dispatch())
  net::steady_timer read_timer_, write_timer_, probe_timer_;
  std::deque<std::string> out_;
  size_t out_bytes_ = 0;
  std::atomic<size_t> pending_out_{0};
  std::atomic<bool> answering_{false};  // a request is being answered (stop() waits for it)
  bool writing_ = false, reading_ = false, answer_done_ = false, close_after_ = false, peer_eof_ = false;
  bool probing_ = false, body_timed_out_ = false;
  int probes_ = 0;  // probes since the client's end of input
  size_t reserved_ = 0;  // bytes of Core::body_bytes held by the body being read
  Phase phase_ = Phase::Header;
  std::shared_ptr<ExchangeImpl> ex_;
};

}  // namespace contrail::server::http::detail
