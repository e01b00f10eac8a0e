// Soak test of `contrail serve`: a bounded burst of a few thousand mixed requests from many client
// threads (completions, SSE streams, greedy and seeded, n=2, logprobs, stop strings, invalid
// bodies, clients that disconnect mid-stream), then checks that the server is healthy and idle
// (no KV blocks or requests left), every answer was well-formed, nothing was a 5xx, its memory
// did not grow beyond a margin, it still produces the same greedy text, and SIGTERM exits 0.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "server_process.h"
#include "test_util.h"

namespace contrail::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 24;
constexpr int kRequests = 2500;          // the burst, all clients together
constexpr double kMaxBurstSeconds = 40;  // ...or until this much time has passed
constexpr int kMaxTokens = 24;
constexpr long kMiB = 1 << 20;
// The KV cache is kept small (8 MiB) so that the pages the burst may touch for the first time are
// bounded; the remaining margin covers glibc's per-thread malloc arenas of the HTTP workers, which
// grow to their steady size under concurrency. A leak of ~13 KiB per request exceeds it.
constexpr long kRssMargin = 32 * kMiB;
// Between the two halves of the burst the server is in steady state: its RSS must stay flat.
constexpr long kRssHalfMargin = 8 * kMiB;

const char* const kPrompts[] = {
    "Once upon a time",
    "The little dog",
    "Lily and Ben went to the park. They",
    "One day, a big red ball",
    "Tom was sad because",
    "The sun was shining and the birds",
};

enum Kind { kCompletion, kStream, kCancel, kInvalid, kNumKinds };
const char* const kKindNames[] = {"completion", "stream", "cancel", "invalid"};

struct Tally {
  std::mutex mu;
  std::map<std::string, int> counts;  // kind -> requests
  std::vector<std::string> failures;  // first few problems, with the request
  std::map<std::string, std::string> greedy;  // "prompt|max_tokens" -> the first greedy text
  int n429 = 0, n5xx = 0, n_failures = 0, cancels = 0, greedy_checked = 0, greedy_mismatch = 0;

  void fail(const std::string& what) {
    std::lock_guard lk(mu);
    if (++n_failures <= 10) failures.push_back(what);
  }
};

void check_usage(const json& u, int64_t* completion, std::string* err) {
  if (!u.is_object() || !u["prompt_tokens"].is_number_integer() || !u["completion_tokens"].is_number_integer() ||
      !u["total_tokens"].is_number_integer()) {
    *err = "usage malformed: " + u.dump();
    return;
  }
  const int64_t p = u["prompt_tokens"], c = u["completion_tokens"], t = u["total_tokens"];
  if (p <= 0 || c < 0 || t != p + c) *err = "usage does not add up: " + u.dump();
  *completion = c;
}

// A request of the burst: its body and what to expect.
struct Req {
  Kind kind;
  json body;
  std::string raw;  // for invalid bodies that are not JSON
  int n = 1, max_tokens = 0;
  bool greedy = false, has_stop = false, logprobs = false, include_usage = false;
};

Req make_request(std::mt19937& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  Req r;
  const int k = pick(100);
  r.kind = k < 10 ? kCancel : k < 16 ? kInvalid : k < 58 ? kStream : kCompletion;
  if (r.kind == kInvalid) {
    static const char* const bad[] = {
        R"({"prompt": "hi", "max_tokens": 0})",       R"({"prompt": "hi", "temperature": "hot"})",
        R"({"prompt": "hi", "n": 0})",                R"({"prompt": ""})",
        R"({"prompt": "hi", "model": "no-such"})",    R"({"prompt": "hi", "stop": [1, 2]})",
        R"({"max_tokens": 3})",                       R"({"prompt": "hi", "max_tokens": 99999})",
        R"({"prompt": "hi", "stream": "yes"})",       R"({"prompt": "hi", "logprobs": 21})",
        R"({"prompt": [1, 2, 999999]})",              R"({"prompt": "hi", "top_p": 0})",
        R"({"prompt": "hi", "max_tokens": 4)",        "not json at all",
        R"([1, 2, 3])",                               "",
    };
    r.raw = bad[pick(static_cast<int>(std::size(bad)))];
    return r;
  }
  r.body = {{"prompt", kPrompts[pick(static_cast<int>(std::size(kPrompts)))]}};
  if (r.kind == kCancel) {  // long enough to still be running when the client goes away
    r.max_tokens = 400;
    r.body.update({{"max_tokens", r.max_tokens}, {"stream", true}, {"ignore_eos", true}, {"seed", pick(1000)}});
    return r;
  }
  r.max_tokens = 1 + pick(kMaxTokens);
  r.body["max_tokens"] = r.max_tokens;
  r.greedy = pick(2) == 0;
  if (r.greedy) {
    r.body["temperature"] = 0;
  } else {
    r.body.update({{"temperature", 0.8}, {"seed", pick(100000)}, {"top_p", 0.95}});
    if (pick(4) == 0) r.n = 2;
  }
  if (r.n > 1) r.body["n"] = r.n;
  if (pick(5) == 0) {
    r.has_stop = true;
    r.body["stop"] = pick(2) ? json(".") : json::array({" the", "\n"});
  }
  if (pick(5) == 0) {
    r.logprobs = true;
    r.body["logprobs"] = pick(3);
  }
  if (r.kind == kStream) {
    r.body["stream"] = true;
    r.include_usage = pick(2) == 0;
    if (r.include_usage) r.body["stream_options"] = {{"include_usage", true}};
  }
  return r;
}

// Checks the choices (text, finish reasons) and the usage of a finished request.
std::string check_result(const Req& r, const std::map<int, std::string>& text, const std::map<int, std::string>& finish,
                         const std::map<int, size_t>& lp_tokens, int64_t completion_tokens) {
  if (static_cast<int>(finish.size()) != r.n) return "wrong number of finished choices";
  bool all_length = true;
  for (const auto& [i, f] : finish) {
    if (i < 0 || i >= r.n) return "choice index out of range";
    if (f != "length" && f != "stop") return "finish_reason " + f;
    if (f != "length") all_length = false;
  }
  if (completion_tokens >= 0) {
    if (completion_tokens > int64_t{r.n} * r.max_tokens) return "completion_tokens exceeds n * max_tokens";
    if (all_length && completion_tokens != int64_t{r.n} * r.max_tokens)
      return "finish 'length' but completion_tokens != n * max_tokens";
    if (r.logprobs && !r.has_stop) {
      size_t sum = 0;
      for (const auto& [i, c] : lp_tokens) sum += c;
      if (static_cast<int64_t>(sum) != completion_tokens) return "logprob tokens != completion_tokens";
    }
  }
  if (r.has_stop) {
    const json stops = r.body["stop"].is_string() ? json::array({r.body["stop"]}) : r.body["stop"];
    for (const auto& [i, t] : text)
      for (const json& st : stops)
        if (t.find(st.get<std::string>()) != std::string::npos) return "the text contains the stop string";
  }
  return "";
}

class Soak : public ::testing::Test {
 protected:
  static std::string model() { return data_path("models/stories260K/stories260K.gguf"); }
};

std::string greedy_text(httplib::Client& cli) {
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", kMaxTokens}, {"temperature", 0}};
  auto res = cli.Post("/v1/completions", body.dump(), "application/json");
  if (!res || res->status != 200) return "<error>";
  return json::parse(res->body)["choices"][0]["text"];
}

TEST_F(Soak, MixedBurstLeavesServerHealthyIdleAndLean) {
  CONTRAIL_REQUIRE_DATA(model());
  ServerProcess srv({"-m", model(), "--max-running", "16", "--max-waiting", "64", "--kv-cache-mib", "8"});
  httplib::Client main_cli("127.0.0.1", srv.port());
  main_cli.set_read_timeout(60, 0);

  // Warm-up: every kind of request once per client thread's worth, so that allocator arenas and
  // the touched KV pages reach their working size before the baseline.
  const std::string greedy_before = greedy_text(main_cli);
  ASSERT_NE(greedy_before, "<error>") << srv.log();
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < 10; ++t)
      ts.emplace_back([&, t] {
        httplib::Client c("127.0.0.1", srv.port());
        for (int i = 0; i < 5; ++i) {
          json b = {{"prompt", kPrompts[(t + i) % std::size(kPrompts)]}, {"max_tokens", kMaxTokens}, {"n", 1 + i % 2}};
          if (i % 2) b["stream"] = true;
          c.Post("/v1/completions", b.dump(), "application/json");
        }
      });
    for (auto& th : ts) th.join();
  }
  const long rss_before = srv.rss_bytes();
  ASSERT_GT(rss_before, 0);

  Tally tally;
  std::atomic<int> next{0};
  std::atomic<long> rss_half{0};
  const auto t0 = Clock::now();
  std::latch start(kClients);
  auto worker = [&](int tid) {
    std::mt19937 rng(1234 + tid);
    httplib::Client cli("127.0.0.1", srv.port());
    cli.set_read_timeout(60, 0);
    cli.set_keep_alive(true);
    // All clients start together: their simultaneous connects must all be accepted (the server
    // listens with the system's maximum backlog, not httplib's 5).
    start.arrive_and_wait();
    bool fresh = false;  // the next request opens a new connection
    for (;;) {
      const int i = next++;
      if (i >= kRequests || std::chrono::duration<double>(Clock::now() - t0).count() > kMaxBurstSeconds) return;
      if (i == kRequests / 2) rss_half = srv.rss_bytes();
      const Req r = make_request(rng);
      const std::string body = r.kind == kInvalid ? r.raw : r.body.dump();
      const std::string ctx = std::string(kKindNames[r.kind]) + " " + body + ": ";
      {
        std::lock_guard lk(tally.mu);
        ++tally.counts[kKindNames[r.kind]];
      }
      const bool streamed = r.kind == kStream || r.kind == kCancel;
      std::string data;
      int status = 0;
      bool cancelled = false;
      httplib::Request req;
      req.method = "POST";
      req.path = "/v1/completions";
      req.body = body;
      req.set_header("Content-Type", "application/json");
      if (streamed) {
        req.response_handler = [&](const httplib::Response& resp) {
          status = resp.status;
          return true;
        };
        req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
          data.append(d, n);
          // A client that goes away after the first events (only while the request is running).
          if (r.kind == kCancel && status == 200 && data.find("data: {") != std::string::npos) {
            cancelled = true;
            return false;
          }
          return true;
        };
      }
      const auto t_req = Clock::now();
      const httplib::Result res = cli.send(req);
      const double req_s = std::chrono::duration<double>(Clock::now() - t_req).count();
      if (cancelled) {
        std::lock_guard lk(tally.mu);
        ++tally.cancels;
        cli.stop();  // do not reuse the half-read connection
        fresh = true;
        continue;
      }
      if (res) {
        fresh = false;
        status = res->status;
        if (!streamed) data = res->body;
      }
      if (!res) {
        tally.fail(ctx + "transport error " + httplib::to_string(res.error()) + " after " + std::to_string(req_s) +
                   " s, at " + std::to_string(std::chrono::duration<double>(t_req - t0).count()) + " s, status " +
                   std::to_string(status) + ", " + std::to_string(data.size()) + " bytes read: " + data.substr(0, 300) +
                   (fresh ? " (fresh connection)" : " (reused connection)"));
        fresh = true;
        continue;
      }
      if (status == 429) {
        std::lock_guard lk(tally.mu);
        ++tally.n429;
        continue;
      }
      if (status >= 500) {
        std::lock_guard lk(tally.mu);
        ++tally.n5xx;
      }
      if (r.kind == kInvalid) {
        if (status != 400) tally.fail(ctx + "expected 400, got " + std::to_string(status) + " " + data);
        else if (!json::accept(data) || !json::parse(data)["error"]["message"].is_string())
          tally.fail(ctx + "400 without an OpenAI error body: " + data);
        continue;
      }
      if (status != 200) {
        tally.fail(ctx + "status " + std::to_string(status) + " " + data);
        continue;
      }
      std::map<int, std::string> text, finish;
      std::map<int, size_t> lp_tokens;
      int64_t completion_tokens = -1;
      std::string err;
      try {
        if (!streamed) {
          const json j = json::parse(data);
          if (j["object"] != "text_completion" || !j["choices"].is_array()) throw std::runtime_error("bad object");
          for (const json& c : j["choices"]) {
            const int idx = c["index"];
            text[idx] = c["text"];
            finish[idx] = c["finish_reason"].is_string() ? c["finish_reason"].get<std::string>() : "null";
            if (r.logprobs) lp_tokens[idx] = c["logprobs"]["tokens"].size();
          }
          check_usage(j["usage"], &completion_tokens, &err);
        } else {
          static const std::string kDone = "data: [DONE]\n\n";
          if (data.size() < kDone.size() || data.compare(data.size() - kDone.size(), kDone.size(), kDone) != 0)
            throw std::runtime_error("the stream does not end with data: [DONE]");
          size_t pos = 0;
          bool usage_seen = false;
          while (pos < data.size()) {
            const size_t end = data.find("\n\n", pos);
            if (end == std::string::npos) throw std::runtime_error("unterminated event");
            const std::string ev = data.substr(pos, end - pos);
            pos = end + 2;
            if (ev.rfind(":", 0) == 0 || ev == "data: [DONE]") continue;  // comment (ping)
            if (ev.rfind("data: ", 0) != 0) throw std::runtime_error("not a data event: " + ev);
            const json j = json::parse(ev.substr(6));
            if (j.contains("usage") && !j["usage"].is_null()) {
              if (usage_seen || !j["choices"].empty()) throw std::runtime_error("bad usage chunk");
              usage_seen = true;
              check_usage(j["usage"], &completion_tokens, &err);
              continue;
            }
            for (const json& c : j["choices"]) {
              const int idx = c["index"];
              text[idx] += c["text"].get<std::string>();
              if (r.logprobs) lp_tokens[idx] += c["logprobs"]["tokens"].size();
              if (c["finish_reason"].is_string()) {
                if (finish.count(idx)) throw std::runtime_error("two finish_reasons for one choice");
                finish[idx] = c["finish_reason"];
              }
            }
          }
          if (usage_seen != r.include_usage) throw std::runtime_error("usage chunk presence != include_usage");
        }
      } catch (const std::exception& e) {
        err = std::string("malformed: ") + e.what();
      }
      if (err.empty()) err = check_result(r, text, finish, lp_tokens, completion_tokens);
      // Greedy decoding does not depend on what else is in the batch: the same (prompt,
      // max_tokens) gives the same text, streamed or not.
      if (err.empty() && r.greedy && !r.has_stop) {
        const std::string key = r.body["prompt"].get<std::string>() + "|" + std::to_string(r.max_tokens);
        std::lock_guard lk(tally.mu);
        const auto [it, fresh] = tally.greedy.emplace(key, text[0]);
        ++tally.greedy_checked;
        if (!fresh && it->second != text[0]) {
          ++tally.greedy_mismatch;
          if (++tally.n_failures <= 10)
            tally.failures.push_back(ctx + "greedy text differs: '" + text[0] + "' vs '" + it->second + "'");
        }
      }
      if (!err.empty()) tally.fail(ctx + err + "\n  response: " + data.substr(0, 600));
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const int sent = std::min<int>(next.load(), kRequests);

  // Idle again: no request running or waiting, no KV block in use (cancelled streams freed theirs).
  auto metric = [&](const std::string& name) -> double {
    auto res = main_cli.Get("/metrics");
    if (!res || res->status != 200) return -1;
    std::smatch m;
    const std::regex re("(^|\n)" + name + "(\\{[^}]*\\})? ([^\n]+)");
    return std::regex_search(res->body, m, re) ? std::stod(m[3]) : -2;
  };
  double used = -1, running = -1, waiting = -1;
  for (int i = 0; i < 100; ++i) {
    used = metric("contrail_kv_blocks_used");
    running = metric("contrail_num_requests_running");
    waiting = metric("contrail_num_requests_waiting");
    if (used == 0 && running == 0 && waiting == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double disconnects = metric("contrail_request_success_total\\{[^}]*finished_reason=\"disconnect\"\\}");
  auto health = main_cli.Get("/health");
  const long rss_after = srv.rss_bytes();
  const std::string greedy_after = greedy_text(main_cli);

  std::string kinds;
  for (const auto& [k, v] : tally.counts) kinds += " " + k + "=" + std::to_string(v);
  std::printf(
      "[soak] %d requests (%s ) from %d clients in %.1f s (%.0f req/s); 429s %d, cancels %d (server saw %.0f "
      "disconnects), greedy results compared %d, 5xx %d, failures %d; "
      "RSS before %.1f MiB, at half %.1f MiB, after %.1f MiB (%+.1f MiB)\n",
      sent, kinds.c_str(), kClients, elapsed, sent / elapsed, tally.n429, tally.cancels, disconnects, tally.greedy_checked, tally.n5xx, tally.n_failures,
      rss_before / double(kMiB), rss_half / double(kMiB), rss_after / double(kMiB),
      (rss_after - rss_before) / double(kMiB));
  std::fflush(stdout);

  for (const std::string& f : tally.failures) ADD_FAILURE() << f;
  EXPECT_EQ(tally.n_failures, 0);
  EXPECT_EQ(tally.n5xx, 0);
  EXPECT_GE(sent, 500) << "the burst made too little progress in " << kMaxBurstSeconds << " s";
  EXPECT_GE(tally.cancels, sent / 20) << "too few mid-stream disconnects were exercised";
  // Every cancel happened while its 400-token request was still generating; the server counts those
  // it noticed (on its next write) as "disconnect".
  EXPECT_GE(disconnects, tally.cancels * 0.9) << "the server did not notice the clients going away";
  EXPECT_LT(tally.n429, sent / 10) << "24 clients < max_running + max_waiting: 429s should be rare";
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(used, 0) << "KV blocks still in use after the burst";
  EXPECT_EQ(running, 0);
  EXPECT_EQ(waiting, 0);
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer freed memory sits in its quarantine (up to 256 MiB) and RSS says nothing
  // about leaks; LeakSanitizer checks those when the server exits below.
  std::printf("[soak] ASan build: RSS bounds not checked\n");
#else
  EXPECT_LE(rss_after, rss_before + kRssMargin) << "RSS grew from " << rss_before << " to " << rss_after;
  if (rss_half > 0 && sent == kRequests)
    EXPECT_LE(rss_after, rss_half + kRssHalfMargin) << "RSS still growing in the second half: " << rss_half << " -> "
                                                    << rss_after;
#endif
  EXPECT_EQ(greedy_after, greedy_before) << "greedy output changed after the burst";

  EXPECT_EQ(srv.stop(SIGTERM, 30), 0) << srv.log();
}

}  // namespace
}  // namespace contrail::test
