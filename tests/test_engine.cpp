// The serving engine: stop strings across token boundaries; the engine loop on the arithmetic
// MockRunner (no model; JetStream's approach) for batching, preemption, cancellation, n > 1,
// admission control and draining; and on stories260K, where 16 concurrent requests must give
// exactly what each gives alone through Session::generate (greedy and seeded).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "contrail/core/error.h"
#include "contrail/engine/engine.h"
#include "contrail/engine/stop_strings.h"
#include "contrail/runtime/session.h"
#include "engine/mock_runner.h"
#include "test_util.h"

namespace contrail::engine {
namespace {

using namespace std::chrono_literals;

// ---- StopMatcher ---------------------------------------------------------------------------------

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopMatcher, CutsBeforeTheEarliestStopAcrossPieces) {
  StopMatcher a({"END"});
  EXPECT_EQ(a.push("Hello E"), "Hello ");  // "E" may start "END": held
  EXPECT_EQ(a.push("N"), "");
  EXPECT_EQ(a.push("Dx more"), "");
  EXPECT_TRUE(a.stopped());
  EXPECT_EQ(a.matched(), "END");
  EXPECT_EQ(a.push("later"), "");
  EXPECT_EQ(a.flush(), "");

  StopMatcher b({"END"});
  EXPECT_EQ(feed(b, {"Hello E", "NTER the ", "EN"}), "Hello ENTER the EN");  // false starts are released
  EXPECT_FALSE(b.stopped());

  StopMatcher c({"\n\n", "User:"});
  EXPECT_EQ(feed(c, {"a\n", "b Us", "er", ": hi\n\n"}), "a\nb ");
  EXPECT_EQ(c.matched(), "User:");

  StopMatcher d({"bcd", "cdx"});  // the earliest occurrence wins
  EXPECT_EQ(feed(d, {"abc", "dx"}), "a");
  EXPECT_EQ(d.matched(), "bcd");

  StopMatcher none;
  EXPECT_EQ(none.push("anything"), "anything");
  StopMatcher empty({""});
  EXPECT_EQ(empty.push("x"), "x");
  test::expect_invalid([] { StopMatcher(std::vector<std::string>(17, "x")); }, {"17 stop strings", "16"});
  test::expect_invalid([] { StopMatcher({std::string(2000, 'x')}); }, {"2000 bytes", "1024"});
}

// ---- engine on the mock runner -------------------------------------------------------------------

// Collects the updates of requests and waits for their final ones.
class Collector {
 public:
  UpdateCallback callback() {
    return [this](const RequestUpdate& u) {
      std::lock_guard lk(mu_);
      auto& r = results_[u.id];
      for (const ChoiceDelta& d : u.choices) {
        auto& c = r.choices[d.index];
        c.tokens.insert(c.tokens.end(), d.tokens.begin(), d.tokens.end());
        c.text += d.text;
        c.logprobs.insert(c.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
        if (d.finish != FinishReason::None) c.finish = d.finish;
      }
      r.n_prompt = u.n_prompt;
      r.n_generated = u.n_generated;
      ++r.updates;
      if (u.done) {
        EXPECT_FALSE(r.done) << "two final updates for request " << u.id;
        r.done = true;
        r.error = u.error;
        cv_.notify_all();
      }
    };
  }
  struct Choice {
    std::vector<int32_t> tokens;
    std::string text;
    std::vector<TokenLogprob> logprobs;
    FinishReason finish = FinishReason::None;
  };
  struct Result {
    std::map<int, Choice> choices;
    int64_t n_prompt = 0, n_generated = 0;
    int updates = 0;
    bool done = false;
    std::string error;
  };
  // Waits until `ids` all finished (fails the test after 60 s).
  std::map<uint64_t, Result> wait(const std::vector<uint64_t>& ids) {
    std::unique_lock lk(mu_);
    const bool ok = cv_.wait_for(lk, 60s, [&] {
      for (uint64_t id : ids)
        if (!results_[id].done) return false;
      return true;
    });
    EXPECT_TRUE(ok) << "requests did not finish in 60 s";
    return results_;
  }
  int updates_of(uint64_t id) {
    std::lock_guard lk(mu_);
    return results_[id].updates;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Result> results_;
};

class MockEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = test::data_path("models/stories260K/stories260K.gguf");
    CONTRAIL_REQUIRE_DATA(model);
    tok_ = std::make_unique<Tokenizer>(load_model_file(model).vocab);
  }
  // An engine over a MockRunner with n_blocks blocks of 4 tokens.
  std::unique_ptr<Engine> make(int64_t n_blocks, SchedulerConfig sc = {},
                               std::chrono::microseconds step_time = std::chrono::microseconds(0)) {
    EngineConfig ec;
    ec.scheduler = sc;
    ec.block_size = 4;
    ec.n_blocks = n_blocks;
    auto runner = std::make_unique<MockRunner>(tok_->n_vocab(), n_blocks, 4, step_time);
    mock_ = runner.get();
    return std::make_unique<Engine>(std::move(runner), *tok_, ec, 256);
  }
  // What greedy decoding of the mock gives alone.
  std::vector<int32_t> solo(std::vector<int32_t> ctx, int64_t n) const {
    std::vector<int32_t> out;
    while (static_cast<int64_t>(out.size()) < n) {
      out.push_back(mock_->next_token(ctx));
      ctx.push_back(out.back());
    }
    return out;
  }
  static std::vector<int32_t> prompt(int n, int seed) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(3 + (seed * 131 + i * 7) % 500);  // avoid control ids 0-2
    return p;
  }
  static RequestOptions greedy(int64_t max_tokens) {
    RequestOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0;
    o.ignore_eos = true;
    return o;
  }
  static void expect_all_blocks_free(const Engine& e) {
    // Final updates are delivered before the engine books the request as finished: let it settle.
    for (int i = 0; i < 2000 && e.stats().active_requests > 0; ++i) std::this_thread::sleep_for(1ms);
    const EngineStats st = e.stats();
    EXPECT_EQ(st.blocks_used, 0);
    EXPECT_EQ(st.blocks_free + st.blocks_cached, st.blocks_total);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.waiting, 0);
    EXPECT_EQ(st.active_requests, 0);
  }

  std::unique_ptr<Tokenizer> tok_;
  MockRunner* mock_ = nullptr;
};

TEST_F(MockEngine, ConcurrentGreedyRequestsEqualSoloRuns) {
  SchedulerConfig sc;
  sc.max_batched_tokens = 24;  // forces chunked prefill next to decodes
  sc.max_running = 6;
  auto e = make(200, sc);
  Collector col;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) {
    const auto p = prompt(5 + i * 3 % 40, i % 7);  // repeated seeds share prefixes
    ASSERT_EQ(e->submit(i, p, greedy(10 + i % 9), col.callback()), SubmitStatus::Ok);
    ids.push_back(i);
  }
  auto res = col.wait(ids);
  for (int i = 0; i < 20; ++i) {
    const auto& r = res[i];
    EXPECT_EQ(r.choices.at(0).tokens, solo(prompt(5 + i * 3 % 40, i % 7), 10 + i % 9)) << "request " << i;
    EXPECT_EQ(r.choices.at(0).finish, FinishReason::Length);
    EXPECT_EQ(r.n_generated, 10 + i % 9);
    EXPECT_EQ(r.n_prompt, 5 + i * 3 % 40);
    EXPECT_TRUE(r.error.empty());
  }
  const EngineStats st = e->stats();
  EXPECT_GT(st.prefix_hit_tokens, 0);  // repeated prompts hit the prefix cache
  expect_all_blocks_free(*e);
  EXPECT_EQ(e->stats().requests_finished, 20);
}

TEST_F(MockEngine, PreemptionUnderBlockPressureKeepsResultsExact) {
  SchedulerConfig sc;
  sc.max_running = 8;
  auto e = make(24, sc);  // 96 token slots for 8 sequences of up to 60 tokens
  Collector col;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(e->submit(100 + i, prompt(20, 50 + i), greedy(40), col.callback()), SubmitStatus::Ok);
    ids.push_back(100 + i);
  }
  auto res = col.wait(ids);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(res[100 + i].choices.at(0).tokens, solo(prompt(20, 50 + i), 40)) << i;
  EXPECT_GT(e->stats().preemptions, 0);
  expect_all_blocks_free(*e);
}

TEST_F(MockEngine, ChoicesForkFromTheSamePrompt) {
  auto e = make(200);
  Collector col;
  RequestOptions g = greedy(12);
  g.n = 3;
  ASSERT_EQ(e->submit(1, prompt(9, 1), g, col.callback()), SubmitStatus::Ok);
  RequestOptions s = g;
  s.sampling.temperature = 1.0f;
  s.sampling.top_k = 0, s.sampling.top_p = 1, s.sampling.min_p = 0;
  s.sampling.seed = 1234;
  s.n = 4;
  ASSERT_EQ(e->submit(2, prompt(9, 1), s, col.callback()), SubmitStatus::Ok);
  ASSERT_EQ(e->submit(3, prompt(9, 1), s, col.callback()), SubmitStatus::Ok);  // same seed: same choices
  auto res = col.wait({1, 2, 3});
  const auto want = solo(prompt(9, 1), 12);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(res[1].choices.at(c).tokens, want) << "greedy choice " << c;
  EXPECT_EQ(res[1].n_generated, 36);
  std::set<std::vector<int32_t>> distinct;
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(res[2].choices.at(c).tokens, res[3].choices.at(c).tokens) << "seeded choice " << c;
    EXPECT_EQ(res[2].choices.at(c).tokens.size(), 12u);
    distinct.insert(res[2].choices.at(c).tokens);
  }
  EXPECT_GT(distinct.size(), 1u);  // choices are sampled independently
  expect_all_blocks_free(*e);
}

TEST_F(MockEngine, StopTokenIdsAndStopStringsAreNotEmitted) {
  auto e = make(200);
  Collector col;
  const auto p = prompt(7, 3);
  const auto want = solo(p, 30);
  RequestOptions o = greedy(30);
  o.stop_token_ids = {want[5]};
  ASSERT_EQ(e->submit(1, p, o, col.callback()), SubmitStatus::Ok);
  // A stop string of two ASCII letters from the middle of the streamed text (likely spanning a
  // token boundary; the matcher does not care).
  StreamDecoder dec(*tok_);
  std::string full;
  for (int32_t t : want) full += dec.push(t);
  full += dec.flush();
  std::string stop;
  for (size_t i = full.size() / 3; i + 1 < full.size() && stop.empty(); ++i)
    if (std::isalpha(static_cast<unsigned char>(full[i])) && std::isalpha(static_cast<unsigned char>(full[i + 1])))
      stop = full.substr(i, 2);
  ASSERT_FALSE(stop.empty()) << "[" << full << "] " << ::testing::PrintToString(want);
  RequestOptions s = greedy(30);
  s.stop = {stop};
  ASSERT_EQ(e->submit(2, p, s, col.callback()), SubmitStatus::Ok);
  auto res = col.wait({1, 2});
  const size_t first = std::find(want.begin(), want.end(), want[5]) - want.begin();
  EXPECT_EQ(res[1].choices.at(0).tokens, std::vector<int32_t>(want.begin(), want.begin() + first));
  EXPECT_EQ(res[1].choices.at(0).finish, FinishReason::Stop);
  const size_t cut = full.find(stop);
  EXPECT_EQ(res[2].choices.at(0).text, full.substr(0, cut));
  EXPECT_EQ(res[2].choices.at(0).finish, FinishReason::Stop);
  EXPECT_LT(res[2].choices.at(0).tokens.size(), 30u);
  expect_all_blocks_free(*e);
}

TEST_F(MockEngine, LogprobsOfTheMockDistribution) {
  auto e = make(200);
  Collector col;
  RequestOptions o = greedy(4);
  o.top_logprobs = 3;
  ASSERT_EQ(e->submit(1, prompt(6, 2), o, col.callback()), SubmitStatus::Ok);
  auto res = col.wait({1});
  const auto& c = res[1].choices.at(0);
  ASSERT_EQ(c.logprobs.size(), 4u);
  // The mock's logits: 8, 7, ..., 1 on 8 ids and 0 on the other 504 of stories260K's 512.
  double z = 504;
  for (int k = 1; k <= 8; ++k) z += std::exp(k);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.logprobs[i].token, c.tokens[i]);
    EXPECT_NEAR(c.logprobs[i].logprob, 8 - std::log(z), 1e-5);
    ASSERT_EQ(c.logprobs[i].top.size(), 3u);
    EXPECT_EQ(c.logprobs[i].top[0].first, c.tokens[i]);
    EXPECT_NEAR(c.logprobs[i].top[1].second, 7 - std::log(z), 1e-5);
    EXPECT_EQ(c.logprobs[i].top[1].first, (c.tokens[i] + 1) % 512);
  }
}

TEST_F(MockEngine, CancellationInEveryStateFreesBlocks) {
  SchedulerConfig sc;
  sc.max_running = 2;
  auto e = make(100, sc, 500us);
  Collector col;
  // Two long runners occupy the running slots; two more wait.
  for (uint64_t id = 1; id <= 4; ++id) ASSERT_EQ(e->submit(id, prompt(10, id), greedy(200), col.callback()), SubmitStatus::Ok);
  while (col.updates_of(1) < 3) std::this_thread::sleep_for(1ms);
  e->cancel(1);  // running
  e->cancel(4);  // waiting
  e->cancel(99);  // unknown: ignored
  auto res = col.wait({1, 4});
  EXPECT_EQ(res[1].choices.at(0).finish, FinishReason::Cancelled);
  EXPECT_LT(res[1].choices.at(0).tokens.size(), 200u);
  EXPECT_EQ(res[4].choices.at(0).finish, FinishReason::Cancelled);
  e->cancel(2);
  e->cancel(3);
  res = col.wait({2, 3});
  expect_all_blocks_free(*e);
  e->cancel(2);  // already finished: ignored
}

TEST_F(MockEngine, AdmissionControlAndValidation) {
  SchedulerConfig sc;
  sc.max_running = 1;
  sc.max_waiting = 3;
  auto e = make(100, sc, 500us);  // slow steps: the queue really fills
  Collector col;
  int ok = 0, full = 0;
  std::vector<uint64_t> ids;
  for (uint64_t id = 0; id < 40; ++id) {
    const SubmitStatus st = e->submit(id, prompt(8, id), greedy(50), col.callback());
    if (st == SubmitStatus::Ok) ++ok, ids.push_back(id);
    if (st == SubmitStatus::QueueFull) ++full;
  }
  EXPECT_GT(full, 0);
  EXPECT_LE(ok, 5);
  test::expect_invalid([&] { e->submit(1000, {}, greedy(5), col.callback()); }, {"prompt", "empty"});
  test::expect_invalid([&] { e->submit(1000, {1, 512}, greedy(5), col.callback()); }, {"token id 512", "[0, 512)"});
  test::expect_invalid([&] { e->submit(1000, {1}, greedy(0), col.callback()); }, {"max_tokens", "0"});
  test::expect_invalid([&] { e->submit(1000, {1, 2}, greedy(255), col.callback()); }, {"max_tokens", "255", "256"});
  RequestOptions bad = greedy(5);
  bad.n = 17;
  test::expect_invalid([&] { e->submit(1000, {1}, bad, col.callback()); }, {"n: 17", "[1, 16]"});
  bad = greedy(5);
  bad.top_logprobs = 21;
  test::expect_invalid([&] { e->submit(1000, {1}, bad, col.callback()); }, {"top_logprobs", "21"});
  bad = greedy(5);
  bad.sampling.temperature = -1;
  test::expect_invalid([&] { e->submit(1000, {1}, bad, col.callback()); }, {"temperature"});
  if (!ids.empty())
    test::expect_invalid([&] { e->submit(ids[0], {1}, greedy(5), col.callback()); }, {"already in flight"});
  for (uint64_t id : ids) e->cancel(id);
  col.wait(ids);
  expect_all_blocks_free(*e);
}

// max_tokens near INT64_MAX: n_prompt + max_tokens overflowed past validation and the scheduler
// threw on the engine thread (std::terminate). Now a clear InvalidArgument at submit().
TEST_F(MockEngine, HugeMaxTokensIsRefusedWithoutOverflow) {
  auto e = make(100);
  Collector col;
  for (const int64_t huge : {INT64_MAX, INT64_MAX - 1, INT64_MAX / 2 + 1})
    test::expect_invalid([&] { e->submit(1, prompt(5, 1), greedy(huge), col.callback()); },
                         {"max_tokens", std::to_string(huge), "256"});
  ASSERT_EQ(e->submit(2, prompt(5, 2), greedy(4), col.callback()), SubmitStatus::Ok);
  EXPECT_EQ(col.wait({2}).at(2).choices.at(0).tokens.size(), 4u);
  expect_all_blocks_free(*e);
}

// A callback that throws ends neither the engine thread nor the process; other requests go on.
TEST_F(MockEngine, ThrowingCallbackDoesNotStopTheEngine) {
  auto e = make(100);
  Collector col;
  std::atomic<int> thrown{0};
  ASSERT_EQ(e->submit(1, prompt(5, 1), greedy(6),
                      [&](const RequestUpdate&) {
                        ++thrown;
                        throw std::runtime_error("client bug");
                      }),
            SubmitStatus::Ok);
  ASSERT_EQ(e->submit(2, prompt(5, 2), greedy(6), col.callback()), SubmitStatus::Ok);
  const auto r = col.wait({2});
  EXPECT_EQ(r.at(2).choices.at(0).tokens, solo(prompt(5, 2), 6));
  EXPECT_GT(thrown.load(), 0);
  expect_all_blocks_free(*e);
  ASSERT_EQ(e->submit(3, prompt(5, 3), greedy(3), col.callback()), SubmitStatus::Ok);
  EXPECT_EQ(col.wait({3}).at(3).choices.at(0).tokens.size(), 3u);
}

TEST_F(MockEngine, DrainFinishesInFlightThenRefuses) {
  auto e = make(100);
  Collector col;
  ASSERT_EQ(e->submit(1, prompt(5, 1), greedy(20), col.callback()), SubmitStatus::Ok);
  ASSERT_EQ(e->submit(2, prompt(5, 2), greedy(200), col.callback()), SubmitStatus::Ok);
  e->drain(5s);
  auto res = col.wait({1, 2});
  EXPECT_EQ(res[1].choices.at(0).finish, FinishReason::Length);
  EXPECT_EQ(res[2].choices.at(0).finish, FinishReason::Length);
  EXPECT_EQ(e->submit(3, prompt(5, 3), greedy(5), col.callback()), SubmitStatus::ShuttingDown);
  expect_all_blocks_free(*e);

  // A drain that times out cancels what is left.
  auto e2 = make(100);
  Collector col2;
  ASSERT_EQ(e2->submit(1, prompt(5, 1), greedy(240), col2.callback()), SubmitStatus::Ok);
  e2->drain(0ms);
  auto res2 = col2.wait({1});
  EXPECT_TRUE(res2[1].choices.at(0).finish == FinishReason::Cancelled ||
              res2[1].choices.at(0).finish == FinishReason::Length);
  expect_all_blocks_free(*e2);
}

TEST_F(MockEngine, DestructionCancelsEverything) {
  Collector col;
  {
    auto e = make(100);
    for (uint64_t id = 0; id < 5; ++id) ASSERT_EQ(e->submit(id, prompt(5, id), greedy(240), col.callback()), SubmitStatus::Ok);
  }
  auto res = col.wait({0, 1, 2, 3, 4});
  for (uint64_t id = 0; id < 5; ++id) EXPECT_NE(res[id].choices.at(0).finish, FinishReason::None);
}

// ---- engine on stories260K -----------------------------------------------------------------------

TEST(RealEngine, SixteenConcurrentRequestsEqualSoloGeneration) {
  const std::string path = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(path);
  auto model = std::make_shared<const ModelFile>(load_model_file(path));
  const Tokenizer tok(model->vocab);
  SessionOptions so;
  so.n_threads = 2;
  Session solo(model, so);

  const char* prompts[] = {"Once upon a time", "Lily and Ben", "The cat", "One day, a little",
                           "Tom had a big red ball", "She", "The sun was shining and the birds", "Max"};
  struct Case {
    std::vector<int32_t> prompt;
    RequestOptions opts;
    std::vector<int32_t> want;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 16; ++i) {
    Case c;
    c.prompt = tok.encode(prompts[i % 8], true);
    c.opts.max_tokens = 24 + 5 * (i % 5);
    if (i % 2 == 0) {
      c.opts.sampling.temperature = 0;
    } else {
      c.opts.sampling.temperature = 0.9f;
      c.opts.sampling.seed = 1000 + i;
    }
    GenerateOptions g;
    g.max_new_tokens = c.opts.max_tokens;
    g.sampling = c.opts.sampling;
    solo.generate(c.prompt, g, [&](int32_t id) {
      c.want.push_back(id);
      return true;
    });
    cases.push_back(std::move(c));
  }

  EngineConfig ec;
  ec.scheduler.max_batched_tokens = 64;
  ec.scheduler.max_running = 16;
  ec.n_threads = 2;
  ec.block_size = 4;  // short prompts still fill blocks the prefix cache can share
  auto e = Engine::create(model, tok, ec);
  Collector col;
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(e->submit(i, cases[i].prompt, cases[i].opts, col.callback()), SubmitStatus::Ok);
    ids.push_back(i);
  }
  auto res = col.wait(ids);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(res[i].choices.at(0).tokens, cases[i].want) << "request " << i << " (" << prompts[i % 8] << ")";
    EXPECT_EQ(res[i].choices.at(0).text, tok.decode(cases[i].want)) << i;
  }
  const EngineStats st = e->stats();
  EXPECT_GT(st.prefix_hit_tokens, 0);
  EXPECT_EQ(st.blocks_used, 0);
}

}  // namespace
}  // namespace contrail::engine
