// `contrail serve` against hostile and unusual clients, on loopback with raw sockets: requests that
// crashed the server (overflowing max_tokens, deeply nested JSON), memory attacks (chunked and
// compressed bodies, header floods, huge prompts), slowloris connections, SIGTERM under slow
// clients, and protocol details (keep-alive without Nagle delays, HTTP/1.0, pipelining,
// half-close, auth scheme case, 1e309, null max_completion_tokens, unknown fields).
// Every case is bounded in time and ends by checking that the server is still healthy.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "server_process.h"
#include "test_util.h"

namespace contrail {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// AddressSanitizer keeps freed memory in quarantine and slows everything down: RSS bounds do not
// apply and deadlines get more slack there (the Release figures are in docs/RELIABILITY.md).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

std::string stories() { return test::data_path("models/stories260K/stories260K.gguf"); }

// A raw TCP connection to the server.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool ok() const { return ok_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // false when the peer is gone.
  bool send(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Reads until `done(buffer)` or EOF or the timeout.
  std::string read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    while (!done(buf_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char tmp[65536];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
    return buf_;
  }
  std::string read_all(std::chrono::milliseconds timeout = 30s) {
    return read_until([](const std::string&) { return false; }, timeout);
  }
  // One complete response with a Content-Length body, removed from the buffer.
  std::string read_response(std::chrono::milliseconds timeout = 30s) {
    auto complete = [](const std::string& b) -> size_t {
      const size_t h = b.find("\r\n\r\n");
      if (h == std::string::npos) return 0;
      const size_t cl = b.find("Content-Length: ");
      if (cl == std::string::npos || cl > h) return 0;
      const size_t len = std::stoul(b.substr(cl + 16));
      return b.size() >= h + 4 + len ? h + 4 + len : 0;
    };
    read_until([&](const std::string& b) { return complete(b) > 0; }, timeout);
    const size_t n = complete(buf_);
    std::string r = buf_.substr(0, n);
    buf_.erase(0, n);
    return r;
  }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool ok_ = false, eof_ = false;
  std::string buf_;
};

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

std::string body_of(const std::string& response) {
  const size_t h = response.find("\r\n\r\n");
  return h == std::string::npos ? "" : response.substr(h + 4);
}

std::string post_text(const std::string& path, const std::string& body, const std::string& extra = "",
                      const char* version = "HTTP/1.1") {
  return "POST " + path + " " + version + "\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// One request on a fresh connection; the whole response.
std::string request(int port, const std::string& raw, std::chrono::milliseconds timeout = 60s) {
  Conn c(port);
  EXPECT_TRUE(c.ok());
  c.send(raw);
  return c.read_response(timeout);
}

json post_json(int port, const std::string& path, const json& body, int expect_status) {
  const std::string r = request(port, post_text(path, body.dump()));
  EXPECT_EQ(status_of(r), expect_status) << r.substr(0, 600);
  try {
    return json::parse(body_of(r));
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << r.substr(0, 300);
    return json();
  }
}

bool healthy(int port) {
  return status_of(request(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 5s)) == 200;
}

double metric(int port, const std::string& name) {
  const std::string body = "\n" + body_of(request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 10s));
  const size_t at = body.find("\n" + name + "{");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(body.find("} ", at) + 2));
}

class Hardening : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::exists(stories())) return;
    // stories260K has no chat template: a ChatML one (its markers are plain text to this vocabulary).
    template_ = std::filesystem::temp_directory_path() / ("hardening_chatml_" + std::to_string(::getpid()) + ".jinja");
    std::ofstream(template_) << "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    server_ = new test::ServerProcess({"-m", stories(), "--max-running", "4", "--max-waiting", "8",
                                       "--header-timeout", "2", "--body-timeout", "3", "--kv-dtype", "f32",
                                       "--chat-template", template_.string()});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove(template_);
  }
  void SetUp() override { CONTRAIL_REQUIRE_DATA(stories()); }
  void TearDown() override {
    if (server_) EXPECT_TRUE(healthy(port())) << server_->log();
  }
  static int port() { return server_->port(); }
  static test::ServerProcess* server_;
  static std::filesystem::path template_;
};
test::ServerProcess* Hardening::server_ = nullptr;
std::filesystem::path Hardening::template_;

TEST_F(Hardening, HugeMaxTokensIsA400NotACrash) {
  const json c = post_json(port(), "/v1/completions",
                           {{"prompt", "Once upon a time"}, {"max_tokens", INT64_MAX}}, 400);
  EXPECT_EQ(c["error"]["param"], "max_tokens") << c;
  EXPECT_EQ(c["error"]["code"], "context_length_exceeded") << c;
  const json m = post_json(port(), "/v1/chat/completions",
                           {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_completion_tokens", INT64_MAX}},
                           400);
  EXPECT_EQ(m["error"]["param"], "max_completion_tokens") << m;
  // The unsigned maximum is out of range too.
  post_json(port(), "/v1/completions", json::parse(R"({"prompt":"a","max_tokens":18446744073709551615})"), 400);
}

std::string nested(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST_F(Hardening, DeeplyNestedJsonIsA400NotAStackOverflow) {
  const std::string deep = nested(100000);  // ~200 KB
  for (const std::string& body : {R"({"tokens":)" + deep + "}",
                                  R"({"messages":[{"role":"user","content":"hi","x":)" + deep + "}]}",
                                  R"({"messages":[{"role":"user","content":"hi"}],"tools":)" + deep + "}"}) {
    for (const char* path : {"/detokenize", "/v1/chat/completions"}) {
      const std::string r = request(port(), post_text(path, body));
      EXPECT_EQ(status_of(r), 400) << path << ": " << r.substr(0, 300);
      EXPECT_NE(body_of(r).find("deeper than 64 levels"), std::string::npos) << body_of(r).substr(0, 300);
      EXPECT_LT(body_of(r).size(), 1000u) << "the client's value is echoed back";
    }
  }
  // 64 levels are fine as JSON (and then refused for their content, briefly).
  const json ok = post_json(port(), "/detokenize", json::parse(R"({"tokens":[)" + nested(62) + "]}"), 400);
  EXPECT_LT(ok.dump().size(), 400u) << ok;
}

TEST_F(Hardening, ChunkedBodyBeyondTheLimitIs413WithoutBufferingIt) {
  const long rss0 = server_->rss_bytes();
  Conn c(port());
  ASSERT_TRUE(c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // Up to 64 MiB are offered from a second thread while this one reads the answer.
  std::atomic<int> sent{0};
  std::thread sender([&] {
    const std::string frame = "100000\r\n" + std::string(1 << 20, 'a') + "\r\n";
    for (int i = 0; i < 64; ++i) {
      if (!c.send(frame)) return;  // the server answered and closed after 8 MiB
      ++sent;
    }
  });
  const std::string r = c.read_response(20s);
  c.shutdown_write();
  sender.join();
  EXPECT_EQ(status_of(r), 413) << r.substr(0, 300);
  EXPECT_NE(body_of(r).find("8388608"), std::string::npos) << body_of(r);
  // What the server read past the limit it dropped (lingering close), never kept.
  if (!kAsan) EXPECT_LT(server_->rss_bytes() - rss0, 64L << 20);
}

TEST_F(Hardening, SlowBodyIs408AtTheBodyDeadline) {
  Conn c(port());
  c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\"");
  const auto t0 = Clock::now();
  const std::string r = c.read_response(10s);
  EXPECT_EQ(status_of(r), 408) << r;
  EXPECT_LT(Clock::now() - t0, 6s);  // --body-timeout 3
}

TEST_F(Hardening, CompressedBodiesAreRefusedNotInflated) {
  const std::string r = request(port(), post_text("/v1/completions", std::string(300, 'x'), "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(status_of(r), 415) << r.substr(0, 300);
  EXPECT_NE(body_of(r).find("gzip"), std::string::npos);
}

TEST_F(Hardening, HeaderFloodsAre431) {
  std::string many = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 500; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  const std::string r1 = request(port(), many + "\r\n");
  EXPECT_EQ(status_of(r1), 431) << r1.substr(0, 300);
  const std::string r2 = request(port(), "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 << 10, 'b') + "\r\n\r\n");
  EXPECT_EQ(status_of(r2), 431) << r2.substr(0, 300);
  // 1000 connections x 8 KiB headers, never finished: bounded, and dropped at the header deadline.
  const long rss0 = server_->rss_bytes();
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < 300; ++i) {
    conns.push_back(std::make_unique<Conn>(port()));
    conns.back()->send("GET /health HTTP/1.1\r\nX-A: " + std::string(8000, 'a') + "\r\n");
  }
  EXPECT_TRUE(healthy(port()));
  if (!kAsan) EXPECT_LT(server_->rss_bytes() - rss0, 64L << 20);
}

TEST_F(Hardening, HugePromptIsRefusedBeforeTokenizing) {
  const std::string prompt(7 << 20, 'a');
  const auto t0 = Clock::now();
  const json r = post_json(port(), "/v1/completions", {{"prompt", prompt}, {"max_tokens", 1}}, 400);
  EXPECT_EQ(r["error"]["code"], "context_length_exceeded") << r.dump().substr(0, 300);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("bytes"), std::string::npos) << r;
  const json t = post_json(port(), "/tokenize", {{"prompt", prompt}}, 400);
  EXPECT_EQ(t["error"]["code"], "context_length_exceeded");
  EXPECT_LT(Clock::now() - t0, 30s);
}

TEST_F(Hardening, SlowlorisConnectionsDoNotStarveHealth) {
  // 400 connections sending a header byte by byte, far more than the server's threads.
  std::vector<std::unique_ptr<Conn>> slow;
  for (int i = 0; i < 400; ++i) {
    slow.push_back(std::make_unique<Conn>(port()));
    ASSERT_TRUE(slow.back()->ok());
    slow.back()->send("G");
  }
  for (int k = 0; k < 3; ++k) {
    const auto t0 = Clock::now();
    EXPECT_TRUE(healthy(port()));
    EXPECT_LT(Clock::now() - t0, 2s);
    for (auto& c : slow) c->send("E");
    std::this_thread::sleep_for(300ms);
  }
  // The header deadline (2 s here) closes them.
  std::this_thread::sleep_for(2500ms);
  int closed = 0;
  for (auto& c : slow) {
    c->read_all(50ms);
    closed += c->eof();
  }
  EXPECT_EQ(closed, 400);
}

TEST_F(Hardening, KeepAliveRequestsHaveNoNagleDelay) {
  Conn c(port());
  std::vector<double> ms;
  for (int i = 0; i < 12; ++i) {
    const auto t0 = Clock::now();
    c.send(post_text("/tokenize", R"({"prompt":"Once upon a time"})"));
    const std::string r = c.read_response(10s);
    ASSERT_EQ(status_of(r), 200) << r;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 30.0) << "median keep-alive request " << ms[ms.size() / 2] << " ms (Nagle + delayed ACK?)";
}

TEST_F(Hardening, Http10PipeliningAndHalfClose) {
  // HTTP/1.0: a Content-Length answer, then the connection closes.
  {
    Conn c(port());
    c.send("GET /health HTTP/1.0\r\n\r\n");
    const std::string r = c.read_all(10s);
    EXPECT_EQ(status_of(r), 200) << r;
    EXPECT_EQ(r.find("chunked"), std::string::npos) << r;
    EXPECT_TRUE(c.eof());
  }
  // An HTTP/1.0 stream is close-delimited, not chunked.
  {
    Conn c(port());
    c.send(post_text("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":8,"stream":true})", "",
                     "HTTP/1.0"));
    const std::string r = c.read_all(30s);
    EXPECT_EQ(status_of(r), 200) << r;
    EXPECT_EQ(r.find("chunked"), std::string::npos) << r;
    EXPECT_NE(r.find("data: [DONE]\n\n"), std::string::npos) << r;
  }
  // Two pipelined requests in one write: two answers, in order.
  {
    Conn c(port());
    c.send(post_text("/tokenize", R"({"prompt":"a"})") + post_text("/tokenize", R"({"prompt":"Once upon a time"})"));
    const json a = json::parse(body_of(c.read_response()));
    const json b = json::parse(body_of(c.read_response()));
    EXPECT_EQ(a["count"], 2);
    EXPECT_EQ(b["count"], 5);
  }
  // Half-close after sending: the answer still comes.
  {
    Conn c(port());
    c.send(post_text("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":12,"temperature":0})"));
    c.shutdown_write();
    const std::string r = c.read_all(30s);
    EXPECT_EQ(status_of(r), 200) << r;
    EXPECT_NE(r.find("\"completion_tokens\":12"), std::string::npos) << r;
  }
}

TEST_F(Hardening, ProtocolDetails) {
  // 1e309 anywhere is a 400, not a 500.
  const json inf = post_json(port(), "/v1/completions", json::object(), 400);  // warm-up: missing prompt
  EXPECT_EQ(inf["error"]["param"], "prompt");
  const std::string r = request(port(), post_text("/v1/completions", R"({"prompt":"a","temperature":1e309})"));
  EXPECT_EQ(status_of(r), 400) << r;
  // A large body without a JSON content type is read (8 MiB limit), not a 413.
  const std::string big = R"({"prompt":")" + std::string(20000, 'a') + R"(","max_tokens":1,"tools":1})";
  const std::string r2 = request(port(), "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                             std::to_string(big.size()) + "\r\n\r\n" + big);
  EXPECT_EQ(status_of(r2), 400) << r2.substr(0, 300);
  EXPECT_NE(body_of(r2).find("'tools'"), std::string::npos) << body_of(r2);
  // max_completion_tokens: null leaves max_tokens in force.
  const json n = post_json(port(), "/v1/chat/completions",
                           json::parse(R"({"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":null,
                                           "max_tokens":5,"ignore_eos":true})"),
                           200);
  EXPECT_EQ(n["usage"]["completion_tokens"], 5) << n;
  // The include_usage error names stream_options.include_usage.
  const json iu = post_json(port(), "/v1/completions",
                            {{"prompt", "a"}, {"stream", true}, {"stream_options", {{"include_usage", 3}}}}, 400);
  EXPECT_EQ(iu["error"]["param"], "stream_options.include_usage") << iu;
  // Fields that would change the result are refused, harmless and unknown ones accepted.
  for (const char* f : {"tools", "tool_choice", "response_format", "guided_json"}) {
    const json e = post_json(port(), "/v1/chat/completions",
                             {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {f, json::object()}}, 400);
    EXPECT_EQ(e["error"]["param"], f) << e;
  }
  post_json(port(), "/v1/completions", {{"prompt", "a"}, {"max_tokens", 1}, {"user", "u1"}, {"metadata", {{"k", "v"}}}}, 200);
  post_json(port(), "/v1/completions", {{"prompt", "a"}, {"max_tokens", 1}, {"frobnicate", 1}}, 200);  // as OpenAI
  // Unknown routes and methods.
  EXPECT_EQ(status_of(request(port(), "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")), 404);
  EXPECT_EQ(status_of(request(port(), "GET /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n")), 405);
  EXPECT_EQ(status_of(request(port(), "BLAH\r\n\r\n")), 400);
}

// Message content is text: "</s>" (stories260K's EOS) in a message must not become the EOS token;
// the prompt is the rendered text tokenized without special-token parsing of the content.
TEST_F(Hardening, ChatContentCannotForgeControlTokens) {
  for (const std::string content : {"hi</s>", "</s><s>", "a <s> b </s> c"}) {
    const json r = post_json(port(), "/v1/chat/completions",
                             {{"messages", {{{"role", "user"}, {"content", content}}}}, {"max_tokens", 1}}, 200);
    const std::string rendered = "<|im_start|>user\n" + content + "<|im_end|>\n<|im_start|>assistant\n";
    const json t = post_json(port(), "/tokenize", {{"prompt", rendered}, {"add_special_tokens", true}}, 200);
    EXPECT_EQ(r["usage"]["prompt_tokens"], t["count"]) << content;
    // The forged form would be shorter: </s> as one control token.
    const json forged = post_json(port(), "/tokenize", {{"prompt", content}}, 200);
    EXPECT_GT(forged["count"].get<int>(), 2) << content;
  }
}

// Bodies in flight are bounded all together, not only one by one: with a 16 MiB budget, two
// 8 MiB uploads in progress leave no room for a third (503 at once, before its body is read), and
// the budget comes back when they end.
TEST(HardeningUploads, BodiesInFlightShareOneBudget) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories(), "--max-body-mib", "8", "--max-upload-mib", "16", "--body-timeout", "30"});
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n{\"prompt\":\"";
  auto a = std::make_unique<Conn>(srv.port());
  auto b = std::make_unique<Conn>(srv.port());
  a->send(head);
  b->send(head);
  std::this_thread::sleep_for(300ms);
  const std::string r = request(srv.port(), head, 10s);
  EXPECT_EQ(status_of(r), 503) << r.substr(0, 300);
  EXPECT_NE(body_of(r).find("16777216"), std::string::npos) << body_of(r);
  a.reset();  // closing ends their reservations
  b.reset();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(status_of(request(srv.port(), post_text("/v1/completions", R"({"prompt":"a","max_tokens":1})"))), 200);
  const std::string big = R"({"prompt":"a","max_tokens":1,"x":")" + std::string(7 << 20, 'x') + R"("})";
  EXPECT_EQ(status_of(request(srv.port(), post_text("/v1/completions", big))), 200);
  EXPECT_TRUE(healthy(srv.port()));
}

TEST(HardeningFresh, MetricsShowTheKvPoolBeforeTheFirstRequest) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories()});
  EXPECT_GT(metric(srv.port(), "contrail_kv_blocks_total"), 0);
  EXPECT_GT(metric(srv.port(), "contrail_kv_blocks_free"), 0);
}

TEST(HardeningAuth, BearerSchemeIsCaseInsensitive) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories(), "--api-key", "s3cret"});
  const std::string body = R"({"prompt":"a"})";
  for (const char* scheme : {"Bearer", "bearer", "BEARER"})
    EXPECT_EQ(status_of(request(srv.port(), post_text("/tokenize", body, std::string("Authorization: ") + scheme +
                                                                             " s3cret\r\n"))),
              200)
        << scheme;
  for (const char* bad : {"Bearer s3cre", "Bearer s3cretX", "Basic s3cret", "Bearers3cret", ""})
    EXPECT_EQ(status_of(request(srv.port(), post_text("/tokenize", body, std::string("Authorization: ") + bad + "\r\n"))),
              401)
        << bad;
}

TEST(HardeningOverload, ManyConcurrentRequestsGet429AndMetricsStaysResponsive) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories(), "--max-running", "2", "--max-waiting", "4"});
  std::atomic<int> ok{0}, busy{0}, other{0}, other_status{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 150; ++i)
    threads.emplace_back([&] {
      const std::string r = request(srv.port(), post_text("/v1/completions",
                                                          R"({"prompt":"Once upon a time","max_tokens":40,"ignore_eos":true})"),
                                    120s);
      const int s = status_of(r);
      (s == 200 ? ok : s == 429 ? busy : other)++;
      if (s != 200 && s != 429) other_status = s;
    });
  std::this_thread::sleep_for(200ms);
  const auto t0 = Clock::now();
  EXPECT_GE(metric(srv.port(), "contrail_kv_blocks_total"), 0);
  EXPECT_LT(Clock::now() - t0, 5s) << "/metrics starved by 150 requests";
  for (auto& t : threads) t.join();
  EXPECT_GT(busy.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0) << "status " << other_status.load();
  EXPECT_EQ(ok + busy, 150);
}

TEST(HardeningLifecycle, SigtermExitsWithinTheDrainTimeoutDespiteSlowClients) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories(), "--drain-timeout", "2", "--header-timeout", "60"});
  // Slow header senders, a stream that is never read, and a request in flight.
  std::vector<std::unique_ptr<Conn>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<Conn>(srv.port()));
    slow.back()->send("POST /v1/completions HTTP/1.1\r\nHo");
  }
  Conn unread(srv.port());
  unread.send(post_text("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":400,"ignore_eos":true,"stream":true})"));
  Conn body_slow(srv.port());
  body_slow.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro");
  std::this_thread::sleep_for(500ms);
  const auto t0 = Clock::now();
  EXPECT_EQ(srv.stop(SIGTERM, 30), 0) << srv.log();
  EXPECT_LT(Clock::now() - t0, kAsan ? 10s : 6s) << "drain timeout 2 s";
}

}  // namespace
}  // namespace contrail

namespace contrail {
namespace {

// Waits until no KV block is used and nothing runs or waits; false after 30 s.
bool wait_idle(int port) {
  for (int i = 0; i < 3000; ++i) {
    if (metric(port, "contrail_kv_blocks_used") == 0 && metric(port, "contrail_num_requests_running") == 0 &&
        metric(port, "contrail_num_requests_waiting") == 0)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Every request class above against one server, 600 random disconnects, then SIGTERM under slow
// clients. The figures go to docs/RELIABILITY.md (printed as "probe: ...").
TEST(HardeningProbe, EveryAttackThenHealthyIdleSmallAndACleanExit) {
  CONTRAIL_REQUIRE_DATA(stories());
  test::ServerProcess srv({"-m", stories(), "--drain-timeout", "3", "--header-timeout", "2", "--body-timeout", "30",
                           "--max-running", "8", "--max-waiting", "64"});
  const int port = srv.port();
  const std::string gen = R"({"prompt":"Once upon a time","max_tokens":24,"temperature":0})";
  for (int i = 0; i < 4; ++i) EXPECT_EQ(status_of(request(port, post_text("/v1/completions", gen))), 200);
  const long rss0 = srv.rss_bytes();
  const auto t_start = Clock::now();

  // Crashes and malformed input.
  EXPECT_EQ(status_of(request(port, post_text("/v1/completions", R"({"prompt":"a","max_tokens":9223372036854775807})"))), 400);
  for (const char* path : {"/detokenize", "/v1/chat/completions", "/v1/completions"})
    EXPECT_EQ(status_of(request(port, post_text(path, R"({"tokens":)" + nested(100000) + "}"))), 400);
  EXPECT_EQ(status_of(request(port, post_text("/v1/completions", R"({"prompt":"a","temperature":1e309})"))), 400);
  EXPECT_EQ(status_of(request(port, post_text("/v1/completions", "x", "Content-Encoding: gzip\r\n"))), 415);
  std::string flood = "GET /health HTTP/1.1\r\n";
  for (int i = 0; i < 2000; ++i) flood += "X-" + std::to_string(i) + ": " + std::string(20, 'v') + "\r\n";
  EXPECT_EQ(status_of(request(port, flood + "\r\n")), 431);
  // Memory: chunked bodies past the limit, huge prompts in parallel.
  {
    std::vector<std::thread> ts;
    std::atomic<int> refused{0}, refused_chunked{0};
    for (int k = 0; k < 4; ++k)
      ts.emplace_back([&] {
        Conn c(port);
        c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        std::thread sender([&] {
          const std::string frame = "100000\r\n" + std::string(1 << 20, 'a') + "\r\n";
          for (int i = 0; i < 32 && c.send(frame); ++i) {
          }
        });
        refused_chunked += status_of(c.read_response(20s)) == 413;
        c.shutdown_write();
        sender.join();
      });
    const std::string big = R"({"prompt":")" + std::string(7 << 20, 'a') + R"("})";
    for (int k = 0; k < 8; ++k)
      ts.emplace_back([&] { refused += status_of(request(port, post_text("/v1/completions", big))) == 400; });
    for (auto& t : ts) t.join();
    EXPECT_EQ(refused_chunked.load(), 4);
    EXPECT_EQ(refused.load(), 8);
  }
  // Slowloris, then 600 random disconnects at every stage of a request.
  {
    std::vector<std::unique_ptr<Conn>> slow;
    for (int i = 0; i < 300; ++i) {
      slow.push_back(std::make_unique<Conn>(port));
      slow.back()->send("POST /v1/completions HTTP/1.1\r\nHo");
    }
    EXPECT_TRUE(healthy(port));
  }
  std::atomic<int> next{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 8; ++w)
    ts.emplace_back([&, w] {
      std::mt19937 rng(1234 + w);
      for (int i; (i = next++) < 600;) {
        Conn c(port);
        const std::string stream = R"({"prompt":"Once upon a time","max_tokens":200,"ignore_eos":true,"stream":true})";
        const std::string plain = R"({"prompt":"Once upon a time","max_tokens":200,"ignore_eos":true})";
        switch (rng() % 5) {
          case 0: c.send(post_text("/v1/completions", stream).substr(0, rng() % 60)); break;      // mid-header
          case 1: c.send(post_text("/v1/completions", plain).substr(0, 120 + rng() % 20)); break;  // mid-body
          case 2: c.send(post_text("/v1/completions", plain)); break;                             // waiting
          default:                                                                                 // mid-stream
            c.send(post_text("/v1/completions", stream));
            c.read_until([&](const std::string& b) { return b.size() > 200 + rng() % 2000; }, 5s);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_TRUE(wait_idle(port)) << "KV blocks still used after the disconnects";
  EXPECT_TRUE(healthy(port));
  EXPECT_EQ(status_of(request(port, post_text("/v1/completions", gen))), 200);
  const long rss1 = srv.rss_bytes();
  const double probe_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  if (!kAsan) EXPECT_LT(rss1 - rss0, 50L << 20) << "RSS grew from " << rss0 << " to " << rss1;

  // SIGTERM while slow clients hold connections: exit 0 within the drain timeout (3 s) + 1 s.
  std::vector<std::unique_ptr<Conn>> slow;
  for (int i = 0; i < 100; ++i) {
    slow.push_back(std::make_unique<Conn>(port));
    slow.back()->send("POST /v1/completions HTTP/1.1\r\nHo");
  }
  Conn unread(port);
  unread.send(post_text("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":1500,"ignore_eos":true,"stream":true})"));
  std::this_thread::sleep_for(300ms);
  const auto t0 = Clock::now();
  const int rc = srv.stop(SIGTERM, 30);
  const double exit_s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(rc, 0) << srv.log();
  EXPECT_LT(exit_s, kAsan ? 10.0 : 4.0);
  std::printf("probe: %.1f s of attacks and 600 disconnects; RSS %.1f -> %.1f MiB (%+.1f); KV blocks used 0; "
              "SIGTERM with 100 slow clients and an unread stream: exit %d after %.2f s (drain timeout 3 s)\n",
              probe_s, rss0 / 1048576.0, rss1 / 1048576.0, (rss1 - rss0) / 1048576.0, rc, exit_s);
}

}  // namespace
}  // namespace contrail
