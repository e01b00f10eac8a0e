// The listening side of the HTTP layer (accept, connection registry, threads, stop) and the answer
// channel (ExchangeImpl: respond / stream / deferred answers, probes, disconnect callbacks).
#include <fmt/format.h>

#include <malloc.h>
#include <strings.h>
#include <sys/resource.h>

#include <thread>

#include "contrail/core/error.h"
#include "server/http_detail.h"

namespace contrail::server::http {

std::string Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  return "";
}

std::string_view reason(int status) {
  const auto r = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  return {r.data(), r.size()};
}

namespace detail {

std::string status_head(int status, const std::string& content_type, const Headers& headers, int64_t length,
                        bool chunked, bool keep_alive) {
  std::string h = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\n", status, reason(status), content_type);
  if (length >= 0) h += fmt::format("Content-Length: {}\r\n", length);
  if (chunked) h += "Transfer-Encoding: chunked\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [k, v] : headers) h += fmt::format("{}: {}\r\n", k, v);
  h += "\r\n";
  return h;
}

std::string chunk(std::string_view data) {
  if (data.empty()) return {};  // an empty chunk would end the body
  return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

ExchangeImpl::ExchangeImpl(std::shared_ptr<Connection> conn, net::any_io_executor strand, unsigned version,
                           bool keep_alive)
    : conn_(std::move(conn)), strand_(std::move(strand)), version_(version), keep_alive_(keep_alive) {}

void ExchangeImpl::emit(std::string bytes, bool last, bool close_delimited) {
  // A close-delimited body (an HTTP/1.0 stream) ends only with the connection.
  const bool close = !keep_alive_ || close_delimited;
  if (!conn_) return;
  net::post(strand_, [c = conn_, bytes = std::move(bytes), last, close]() mutable { c->send(std::move(bytes), last, close); });
  if (last) conn_.reset();
}

void ExchangeImpl::respond(Response r) {
  // The disconnect callback is dropped once the answer is complete (it may own whoever owns this
  // exchange: a cycle otherwise); it is destroyed after the lock is released.
  std::function<void()> drop;
  std::lock_guard lk(mu_);
  if (state_ != State::Done) drop = std::move(gone_cb_);
  switch (state_) {
    case State::Fresh: {
      std::string out = status_head(r.status, r.content_type, r.headers, static_cast<int64_t>(r.body.size()),
                                    false, keep_alive_);
      out += r.body;
      state_ = State::Done;
      emit(std::move(out), true);
      return;
    }
    case State::DeferredStarted:  // the 200 header and whitespace went out already
    case State::Streaming:
      state_ = State::Done;
      if (version_ >= 11)
        emit(chunk(r.body) + "0\r\n\r\n", true);
      else
        emit(std::move(r.body), true, true);
      return;
    case State::Done: return;
  }
}

void ExchangeImpl::set_stream(int status, std::string content_type, Headers headers, std::string probe) {
  std::lock_guard lk(mu_);
  has_stream_ = true;
  stream_status_ = status;
  stream_type_ = std::move(content_type);
  stream_headers_ = std::move(headers);
  probe_ = std::move(probe);
}

void ExchangeImpl::begin_stream_locked() {
  const bool chunked = version_ >= 11;
  emit(status_head(stream_status_, stream_type_, stream_headers_, -1, chunked, keep_alive_ && chunked), false);
  state_ = State::Streaming;
}

void ExchangeImpl::write(std::string data) {
  std::lock_guard lk(mu_);
  if (state_ == State::Done || !has_stream_ || data.empty()) return;
  if (state_ == State::Fresh) begin_stream_locked();
  wrote_ = true;
  emit(version_ >= 11 ? chunk(data) : std::move(data), false);
}

void ExchangeImpl::end() {
  std::function<void()> drop;  // see respond()
  std::lock_guard lk(mu_);
  if (state_ == State::Done || !has_stream_) return;
  drop = std::move(gone_cb_);
  if (state_ == State::Fresh) begin_stream_locked();
  state_ = State::Done;
  emit(version_ >= 11 ? std::string("0\r\n\r\n") : std::string(), true, version_ < 11);
}

void ExchangeImpl::set_deferred(std::string content_type) {
  std::lock_guard lk(mu_);
  has_deferred_ = true;
  deferred_type_ = std::move(content_type);
}

void ExchangeImpl::arm_probe() {
  std::lock_guard lk(mu_);
  armed_ = true;
}

void ExchangeImpl::probe_tick() {
  std::lock_guard lk(mu_);
  if (!armed_ || state_ == State::Done) return;
  if (wrote_) {  // something went out since the last tick: that write probed the client
    wrote_ = false;
    return;
  }
  if (state_ == State::Fresh && has_stream_) {
    begin_stream_locked();
  } else if (state_ == State::Fresh && has_deferred_) {
    const bool chunked = version_ >= 11;
    emit(status_head(200, deferred_type_, {}, -1, chunked, keep_alive_ && chunked), false);
    state_ = State::DeferredStarted;
  } else if (state_ == State::Fresh) {
    return;
  }
  const std::string& p = state_ == State::Streaming ? probe_ : std::string(" ");
  if (!p.empty()) emit(version_ >= 11 ? chunk(p) : p, false);
}

void ExchangeImpl::on_gone(std::function<void()> f) {
  {
    std::lock_guard lk(mu_);
    if (!gone_ && state_ == State::Done) return;  // answered already: `f` is never needed
    if (!gone_) {
      gone_cb_ = std::move(f);
      return;
    }
  }
  if (f) f();
}

bool ExchangeImpl::gone() const {
  std::lock_guard lk(mu_);
  return gone_;
}

void ExchangeImpl::mark_gone() {
  std::function<void()> f;
  {
    std::lock_guard lk(mu_);
    if (gone_) return;
    gone_ = true;
    if (state_ != State::Done) f = std::move(gone_cb_);
    gone_cb_ = nullptr;
    state_ = State::Done;
    conn_.reset();
  }
  if (f) f();
}

}  // namespace detail

using namespace detail;

// Owns the io_context (declared first, destroyed last): destroying it destroys the handlers still
// queued after stop(), which releases their connections and, through them, the Core. Handlers
// capture this Impl by pointer: none runs after run() returned, and none outlives io.
struct Server::Impl {
  net::io_context io;
  std::shared_ptr<Core> core;
  tcp::acceptor acceptor;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopped = false;

  Impl(ServerOptions o, Handlers h)
      : io(o.io_threads), core(std::make_shared<Core>(std::move(o), std::move(h))), acceptor(io) {}

  void accept() {
    acceptor.async_accept(net::make_strand(io), [self = this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) self->admit(std::move(s));
      self->accept();
    });
  }

  void admit(tcp::socket s) {
    std::shared_ptr<Connection> c;
    {
      std::lock_guard lk(core->mu);
      if (core->conns.size() >= core->opts.limits.max_connections || core->stopping) {
        // Refuse without reading: a best-effort one-shot answer, then close.
        const std::string msg = core->error_response(503, fmt::format("too many connections (limit {})",
                                                                      core->opts.limits.max_connections)).body;
        const std::string out = status_head(503, "application/json", {}, static_cast<int64_t>(msg.size()), false,
                                            false) + msg;
        beast::error_code ec;
        s.non_blocking(true, ec);
        s.write_some(net::buffer(out), ec);
        s.close(ec);
        return;
      }
      c = std::make_shared<Connection>(core, std::move(s));
      core->conns[c.get()] = c;
    }
    c->start();
  }
};

Server::Server(ServerOptions opts, Handlers handlers) : impl_(std::make_unique<Impl>(std::move(opts), std::move(handlers))) {
  impl_->core->error_response = [](int status, std::string message) {
    Response r;
    r.status = status;
    r.body = fmt::format("{{\"error\":{{\"message\":\"{}\",\"type\":\"invalid_request_error\"}}}}", message);
    return r;
  };
  // Request bodies of up to max_body_bytes come and go: a fixed mmap threshold keeps every buffer
  // over 1 MiB in its own mapping, returned on free (glibc's dynamic threshold would otherwise
  // rise to the largest body seen and keep such buffers in the heap, where RSS never shrinks).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Thousands of connections need as many descriptors: raise the soft limit to the hard one.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

Server::~Server() {
  stop(std::chrono::milliseconds(0));
  impl_->core->workers.join();
}

void Server::set_error_formatter(std::function<Response(int, std::string)> f) { impl_->core->error_response = std::move(f); }

int Server::bind(const std::string& host, int port) {
  beast::error_code ec;
  const auto addr = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) throw Error(fmt::format("serve: '{}' is not an IP address to listen on ({})", host, ec.message()));
  const tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(fmt::format("serve: cannot listen on {}:{}: {} (in use, or not a local address?)", host, port,
                            ec.message()));
  return a.local_endpoint().port();
}

void Server::run() {
  impl_->accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->core->opts.io_threads; ++i) threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
  std::lock_guard lk(impl_->stop_mu);
  impl_->stopped = true;
  impl_->stop_cv.notify_all();
}

void Server::stop(std::chrono::milliseconds grace) {
  auto& core = *impl_->core;
  if (core.stopping.exchange(true)) return;
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  // Answers being written get `grace` to go out; then every socket closes, whatever clients do.
  const auto deadline = Clock::now() + grace;
  for (;;) {
    std::vector<std::shared_ptr<Connection>> busy;
    {
      std::lock_guard lk(core.mu);
      for (auto& [p, w] : core.conns)
        if (auto c = w.lock(); c && c->busy()) busy.push_back(c);
    }
    if (busy.empty() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard lk(core.mu);
    for (auto& [p, w] : core.conns)
      if (auto c = w.lock()) c->abort();
  }
  // Closing sockets completes their handlers; then nothing holds the I/O threads.
  net::post(impl_->io, [impl = impl_.get()] {
    auto t = std::make_shared<net::steady_timer>(impl->io, std::chrono::milliseconds(200));
    t->async_wait([impl, t](beast::error_code) { impl->io.stop(); });
  });
}

size_t Server::connections() const {
  std::lock_guard lk(impl_->core->mu);
  return impl_->core->conns.size();
}

}  // namespace contrail::server::http
