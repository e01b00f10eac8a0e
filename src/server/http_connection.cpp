// One HTTP connection: read a header (deadline), check limits and let the server refuse early,
// read the body (deadline, size limit after de-chunking), hand the request to a worker, keep
// reading ahead (pipelining, end of input) while it is answered, write the answer, repeat.
#include <fmt/format.h>

#include <malloc.h>
#include <strings.h>

#include <utility>

#include "contrail/core/error.h"
#include "server/http_detail.h"

namespace contrail::server::http::detail {

Connection::Connection(std::shared_ptr<Core> core, tcp::socket sock)
    : core_(std::move(core)),
      sock_(std::move(sock)),
      buf_(core_->opts.limits.max_header_bytes + core_->opts.limits.max_pipeline_bytes + 65536),
      read_timer_(sock_.get_executor()),
      write_timer_(sock_.get_executor()),
      probe_timer_(sock_.get_executor()) {}

void Connection::start() {
  beast::error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);  // answers are single writes; no Nagle delay
  net::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->read_header(); });
}

void Connection::arm(net::steady_timer& t, std::chrono::milliseconds d) {
  t.expires_after(d);
  t.async_wait([self = shared_from_this(), body = &t == &read_timer_ && phase_ == Phase::Body](beast::error_code ec) {
    if (ec) return;
    if (body && self->phase_ == Phase::Body) {  // answered with 408 once the read is cancelled
      self->body_timed_out_ = true;
      beast::error_code e;
      self->sock_.cancel(e);
      return;
    }
    self->fail();  // a deadline passed: the client is too slow (or gone)
  });
}

void Connection::read_header() {
  if (phase_ == Phase::Closed) return;
  phase_ = Phase::Header;
  if (core_->stopping) return graceful_close();
  if (peer_eof_ && buf_.size() == 0) return graceful_close();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(core_->opts.limits.max_header_bytes));
  parser_->body_limit(core_->opts.limits.max_body_bytes);
  arm(read_timer_, core_->opts.limits.header_timeout);
  reading_ = true;
  bhttp::async_read_header(sock_, buf_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

namespace {

Request header_of(const bhttp::request_parser<bhttp::string_body>& p) {
  const auto& m = p.get();
  Request r;
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  r.path = r.target.substr(0, r.target.find('?'));
  r.version = m.version();
  for (const auto& f : m) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return r;
}

// The socket was closed (a deadline, stop()) or reset by the client: nothing to answer.
bool socket_gone(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == net::error::connection_reset || ec == net::error::bad_descriptor;
}

}  // namespace

bool Connection::check_header(Request& hdr) {
  const Limits& lim = core_->opts.limits;
  if (hdr.headers.size() > lim.max_header_count) {
    reply_and_close(431, fmt::format("the request has {} header fields, the limit is {}", hdr.headers.size(),
                                     lim.max_header_count));
    return false;
  }
  const std::string enc = hdr.header("Content-Encoding");
  if (!enc.empty() && strcasecmp(enc.c_str(), "identity") != 0) {
    reply_and_close(415, fmt::format("Content-Encoding '{}' is not accepted: send the body uncompressed "
                                     "(at most {} bytes)",
                                     enc.substr(0, 40), lim.max_body_bytes));
    return false;
  }
  if (const auto len = parser_->content_length(); len && *len > lim.max_body_bytes) {
    reply_and_close(413, fmt::format("the request body is {} bytes, the limit is {} bytes", *len, lim.max_body_bytes));
    return false;
  }
  if (core_->handlers.on_header) {
    std::optional<Response> early;
    try {
      early = core_->handlers.on_header(hdr);
    } catch (const std::exception& e) {
      early = core_->error_response(500, fmt::format("internal error: {}", e.what()));
    }
    if (early) {
      const bool no_body = parser_->is_done();
      ex_ = std::make_shared<ExchangeImpl>(shared_from_this(), sock_.get_executor(), hdr.version,
                                           no_body && parser_->get().keep_alive() && !core_->stopping);
      phase_ = no_body ? Phase::Handling : Phase::Closing;
      answering_ = true;
      ex_->respond(std::move(*early));
      return false;
    }
  }
  return true;
}

void Connection::on_header(beast::error_code ec) {
  reading_ = false;
  read_timer_.cancel();
  if (phase_ == Phase::Closed) return;
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof) return graceful_close();
  if (ec == bhttp::error::header_limit)
    return reply_and_close(431, fmt::format("the request header exceeds {} bytes", core_->opts.limits.max_header_bytes));
  if (socket_gone(ec)) return fail();
  if (ec) return reply_and_close(400, fmt::format("malformed HTTP request: {}", ec.message()));
  req_ = header_of(*parser_);
  if (!check_header(req_)) return;
  if (parser_->is_done()) return dispatch();
  if (!reserve_body())
    return reply_and_close(503, fmt::format("the server is receiving {} bytes of request bodies already (limit {}); "
                                            "retry later",
                                            core_->body_bytes.load(), core_->opts.limits.max_body_bytes_in_flight));
  if (strcasecmp(req_.header("Expect").c_str(), "100-continue") == 0 && req_.version >= 11) {
    out_.push_back("HTTP/1.1 100 Continue\r\n\r\n");
    out_bytes_ += out_.back().size();
    do_write();
  }
  phase_ = Phase::Body;
  arm(read_timer_, core_->opts.limits.body_timeout);
  reading_ = true;
  bhttp::async_read(sock_, buf_, *parser_, [self = shared_from_this()](beast::error_code e, size_t) { self->on_body(e); });
}

void Connection::on_body(beast::error_code ec) {
  reading_ = false;
  read_timer_.cancel();
  if (phase_ == Phase::Closed) return;
  if (ec == bhttp::error::body_limit)
    return reply_and_close(413, fmt::format("the request body exceeds the limit of {} bytes",
                                            core_->opts.limits.max_body_bytes));
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == bhttp::error::partial_message)
    return fail();  // the client closed before sending the whole body
  if (ec == net::error::operation_aborted && body_timed_out_)
    return reply_and_close(408, fmt::format("the request body did not arrive within {} ms",
                                            core_->opts.limits.body_timeout.count()));
  if (socket_gone(ec)) return fail();
  if (ec) return reply_and_close(400, fmt::format("malformed HTTP request body: {}", ec.message()));
  dispatch();
}

bool Connection::reserve_body() {
  const size_t need = parser_->content_length().value_or(core_->opts.limits.max_body_bytes);  // chunked: the limit
  size_t cur = core_->body_bytes.load();
  do {
    if (cur + need > core_->opts.limits.max_body_bytes_in_flight) return false;
  } while (!core_->body_bytes.compare_exchange_weak(cur, cur + need));
  reserved_ = need;
  return true;
}

void Connection::release_body() { core_->body_bytes -= std::exchange(reserved_, 0); }

void Connection::dispatch() {
  Request req = std::move(req_);  // the header, read once in on_header()
  const bool keep = parser_->get().keep_alive() && !core_->stopping;
  req.body = std::move(parser_->get().body());
  parser_.reset();
  phase_ = Phase::Handling;
  answering_ = true;
  ex_ = std::make_shared<ExchangeImpl>(shared_from_this(), sock_.get_executor(), req.version, keep);
  if (core_->queued.load() >= core_->opts.max_queued) {
    release_body();
    ex_->respond(core_->error_response(503, fmt::format("the server is busy ({} requests waiting for a worker); "
                                                        "retry later",
                                                        core_->queued.load())));
  } else {
    ++core_->queued;
    // The body's reservation goes with it and ends when the handler is done with it.
    net::post(core_->workers, [core = core_, req = std::move(req), ex = ex_,
                               reserved = std::exchange(reserved_, 0)]() mutable {
      --core->queued;
      const bool large = req.body.size() >= (size_t{1} << 20);
      try {
        core->handlers.on_request(std::move(req), ex);
      } catch (const std::exception& e) {
        ex->respond(core->error_response(500, fmt::format("internal error: {}", e.what())));
      } catch (...) {
        ex->respond(core->error_response(500, "internal error"));
      }
      core->body_bytes -= reserved;
      if (large) malloc_trim(0);  // what parsing a large body left in the heap goes back to the system
    });
  }
  watch();
}

// Reads ahead while an answer is pending: pipelined requests are kept for later, end of input
// starts probing, a reset is a disconnect.
void Connection::watch() {
  if (reading_ || peer_eof_ || phase_ == Phase::Closed || buf_.size() >= core_->opts.limits.max_pipeline_bytes) return;
  reading_ = true;
  sock_.async_read_some(buf_.prepare(4096),
                        [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_watch(ec, n); });
}

void Connection::on_watch(beast::error_code ec, size_t n) {
  reading_ = false;
  if (phase_ == Phase::Closed) return;
  if (!ec) buf_.commit(n);
  if (ec == net::error::operation_aborted && phase_ == Phase::Header) return read_header();  // finish_answer
  if (ec == net::error::eof) {
    peer_eof_ = true;
  } else if (ec) {
    return fail();
  }
  if (phase_ == Phase::Handling) {
    if (peer_eof_) {
      if (!probing_) probe_loop();
    } else {
      watch();
    }
  } else if (phase_ == Phase::Header) {
    read_header();
  }
}

// After the client's end of input: probe at once and again 100 ms later (a client that closed
// answers the first write with a reset, so the second fails: the request is cancelled within
// ~0.1 s), then every probe_interval.
void Connection::probe_loop() {
  probing_ = true;
  using std::chrono::milliseconds;
  const auto wait = probes_ == 0 ? milliseconds(0) : probes_ == 1 ? milliseconds(100) : core_->opts.limits.probe_interval;
  ++probes_;
  probe_timer_.expires_after(wait);
  probe_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->phase_ != Phase::Handling || !self->ex_) {
      self->probing_ = false;
      return;
    }
    self->ex_->probe_tick();
    self->probe_loop();
  });
}

void Connection::send(std::string bytes, bool last, bool close) {
  if (phase_ == Phase::Closed) return;
  out_bytes_ += bytes.size();
  pending_out_ = out_bytes_;
  if (!bytes.empty()) out_.push_back(std::move(bytes));
  if (out_bytes_ > core_->opts.limits.max_queued_write_bytes) return fail();  // the client does not read
  if (last) {
    answer_done_ = true;
    close_after_ = close_after_ || close;
  }
  if (out_.empty() && answer_done_ && !writing_) return finish_answer();
  do_write();
}

void Connection::do_write() {
  if (writing_ || out_.empty() || phase_ == Phase::Closed) return;
  writing_ = true;
  arm(write_timer_, core_->opts.limits.write_timeout);
  net::async_write(sock_, net::buffer(out_.front()),
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
}

void Connection::on_write(beast::error_code ec) {
  writing_ = false;
  write_timer_.cancel();
  if (phase_ == Phase::Closed) return;
  if (ec) return fail();
  out_bytes_ -= out_.front().size();
  pending_out_ = out_bytes_;
  out_.pop_front();
  if (!out_.empty()) return do_write();
  if (answer_done_) finish_answer();
}

void Connection::finish_answer() {
  answer_done_ = false;
  answering_ = false;
  ex_.reset();
  probe_timer_.cancel();
  if (close_after_ || phase_ == Phase::Closing || core_->stopping) return graceful_close();
  phase_ = Phase::Header;
  if (reading_) {  // the read-ahead continues with read_header() when it completes
    arm(read_timer_, core_->opts.limits.header_timeout);  // keep-alive idle deadline
    beast::error_code ec;
    if (buf_.size() > 0) sock_.cancel(ec);  // a pipelined request is waiting: stop the read-ahead
    return;
  }
  read_header();
}

void Connection::reply_and_close(int status, std::string message) {
  phase_ = Phase::Closing;
  answering_ = true;
  Response r = core_->error_response(status, std::move(message));
  const unsigned version = parser_ ? parser_->get().version() : 11;
  ex_ = std::make_shared<ExchangeImpl>(shared_from_this(), sock_.get_executor(), version, false);
  ex_->respond(std::move(r));
}

// Half-close our side, then read and drop what the client still sends (up to 2 s and 64 MiB, like
// nginx's lingering close), so that our last answer is not destroyed by a reset: closing with
// unread input sends RST, and the client's kernel then drops the answer it has not read yet.
void Connection::graceful_close() {
  if (phase_ == Phase::Closed) return;
  phase_ = Phase::Closed;
  release_body();
  beast::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  read_timer_.expires_after(std::chrono::seconds(2));
  read_timer_.async_wait([self = shared_from_this()](beast::error_code) {
    beast::error_code e;
    self->sock_.close(e);
  });
  if (!reading_) {  // else the pending read ends with the socket
    discard_ = std::make_unique<std::array<char, 65536>>();
    discard_input(0);
  }
  std::lock_guard lk(core_->mu);
  core_->conns.erase(this);
}

void Connection::discard_input(size_t total) {
  sock_.async_read_some(net::buffer(*discard_), [self = shared_from_this(), total](beast::error_code e, size_t n) {
    if (e || total + n > (size_t{64} << 20)) {
      beast::error_code c;
      self->read_timer_.cancel();
      self->sock_.close(c);
      return;
    }
    self->discard_input(total + n);
  });
}

void Connection::fail() {
  beast::error_code e;
  sock_.close(e);  // also ends a lingering close early
  if (phase_ == Phase::Closed) return;
  phase_ = Phase::Closed;
  release_body();
  read_timer_.cancel();
  write_timer_.cancel();
  probe_timer_.cancel();
  out_.clear();
  out_bytes_ = 0;
  pending_out_ = 0;
  answering_ = false;
  if (auto ex = std::move(ex_)) ex->mark_gone();
  std::lock_guard lk(core_->mu);
  core_->conns.erase(this);
}

void Connection::abort() {
  net::post(sock_.get_executor(), [self = shared_from_this()] { self->fail(); });
}

bool Connection::busy() const { return answering_.load() || pending_out_.load() > 0; }

}  // namespace contrail::server::http::detail
