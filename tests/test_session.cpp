// Session::generate with reuse_cache (a chat's earlier turns stay in the KV cache): the output
// must be exactly what a fresh prefill of the same prompt gives, greedy and seeded, whatever the
// overlap with the previous call.
#include <gtest/gtest.h>

#include <functional>
#include <span>
#include <type_traits>
#include <utility>

#include "contrail/core/error.h"
#include "contrail/runtime/session.h"
#include "test_util.h"

namespace contrail {
namespace {

std::vector<int32_t> run(Session& s, const std::vector<int32_t>& prompt, GenerateOptions g, GenerationStats* st = nullptr) {
  std::vector<int32_t> out;
  const GenerationStats r = s.generate(prompt, g, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  if (st) *st = r;
  return out;
}

TEST(SessionReuseCache, SameTokensAsAFreshPrefill) {
  const std::string model = test::data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(model);
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 256;
  so.n_batch = 7;  // several prefill chunks, so the reused prefix ends inside one
  auto fresh = Session::load(model, so);
  auto chat = Session::load(model, so);
  const Tokenizer& tok = fresh->tokenizer();

  for (const bool seeded : {false, true}) {
    GenerateOptions g;
    g.max_new_tokens = 20;
    g.stop_at_eog = false;
    if (seeded) {
      g.sampling.temperature = 0.9f;
      g.sampling.seed = 42;
    } else {
      g.sampling.temperature = 0.f;
    }
    GenerateOptions reuse = g;
    reuse.reuse_cache = true;

    // Turn 1: nothing cached yet in the first round; in the second, the cache holds turn 3's
    // prompt of the first round, which shares its first 3 tokens with p1.
    std::vector<int32_t> p1 = tok.encode("Once upon a time", true);
    GenerationStats st;
    const auto r1 = run(*chat, p1, reuse, &st);
    EXPECT_EQ(st.n_prompt_cached, seeded ? 3 : 0);
    EXPECT_EQ(r1, run(*fresh, p1, g));

    // Turn 2: the previous prompt + reply + a new message; everything before the new text is reused.
    std::vector<int32_t> p2 = p1;
    p2.insert(p2.end(), r1.begin(), r1.end());
    const auto more = tok.encode(" Lily said", false);
    p2.insert(p2.end(), more.begin(), more.end());
    const auto r2 = run(*chat, p2, reuse, &st);
    // The last reply token was sampled but never fed to the model, so it is not cached.
    EXPECT_EQ(st.n_prompt_cached, static_cast<int64_t>(p1.size() + r1.size() - 1));
    EXPECT_EQ(r2, run(*fresh, p2, g)) << "seeded=" << seeded;

    // Turn 3: a prompt that diverges early (an edited history) truncates the cache there.
    std::vector<int32_t> p3(p2.begin(), p2.begin() + 3);
    const auto other = tok.encode(" dog ran", false);
    p3.insert(p3.end(), other.begin(), other.end());
    const auto r3 = run(*chat, p3, reuse, &st);
    EXPECT_EQ(st.n_prompt_cached, 3);
    EXPECT_EQ(r3, run(*fresh, p3, g));

    // Turn 4: the same prompt again: all but its last token reused.
    const auto r4 = run(*chat, p3, reuse, &st);
    EXPECT_EQ(st.n_prompt_cached, static_cast<int64_t>(p3.size() - 1));
    EXPECT_EQ(r4, r3);

    // Without reuse_cache the cache starts empty.
    run(*chat, p3, g, &st);
    EXPECT_EQ(st.n_prompt_cached, 0);
  }
}

// ---- The KV cache belongs to the Session -------------------------------------------------------
// Session used to hand out its Transformer and KvCache mutably: a forward pass run through them
// changed the cache behind Session's record of the cached tokens, and the next reuse_cache
// generate silently returned other tokens. Only Session's own operations may change its cache.

// The old misuse, spelled as expressions (true when they compile).
template <typename S>
concept CanForwardIntoTheSessionCache = requires(S& s, std::span<const int32_t> ids, std::vector<float>& logits) {
  s.transformer().forward(ids, s.cache(), s.pool(), logits, false);
};
template <typename S>
concept CanClearTheSessionCache = requires(S& s) { s.cache().clear(); };
template <typename S>
concept CanTruncateTheSessionCache = requires(S& s) { s.cache().set_n_past(0); };
template <typename S>
concept CanWriteTheSessionCacheRows = requires(S& s) { s.cache().k(0) = Tensor(); };

static_assert(!CanForwardIntoTheSessionCache<Session>, "Session must not lend its transformer and cache mutably");
static_assert(!CanClearTheSessionCache<Session>, "Session::cache() must be read-only");
static_assert(!CanTruncateTheSessionCache<Session>, "Session::cache() must be read-only");
static_assert(!CanWriteTheSessionCacheRows<Session>, "Session::cache() must be read-only");
static_assert(std::is_same_v<decltype(std::declval<Session&>().transformer()), const Transformer&>);
static_assert(std::is_same_v<decltype(std::declval<Session&>().cache()), const KvCache&>);

// The misuse that used to compile: the cache cleared and refilled with other tokens (as many as
// Session had recorded) through the Session's own transformer. Compiled only while possible.
template <typename S>
bool forward_behind_the_sessions_back(S& s, const std::vector<int32_t>& other) {
  if constexpr (CanForwardIntoTheSessionCache<S> && CanClearTheSessionCache<S>) {
    std::vector<float> logits;
    s.cache().clear();
    s.transformer().forward(other, s.cache(), s.pool(), logits, false);
    return true;
  } else {
    return false;
  }
}

class SessionCacheOwnership : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = test::data_path("models/stories260K/stories260K.gguf");
    CONTRAIL_REQUIRE_DATA(model);
    SessionOptions so;
    so.n_threads = 2;
    so.n_ctx = 128;
    so.n_batch = 5;
    fresh_ = Session::load(model, so);
    chat_ = Session::load(model, so);
    greedy_.max_new_tokens = 12;
    greedy_.stop_at_eog = false;
    greedy_.sampling.temperature = 0.f;
    reuse_ = greedy_;
    reuse_.reuse_cache = true;
    p1_ = chat_->tokenizer().encode("Once upon a time", true);
  }

  std::unique_ptr<Session> fresh_, chat_;
  GenerateOptions greedy_, reuse_;
  std::vector<int32_t> p1_;
};

// Between two turns of a chat (reuse_cache), any operation on the Session: the second turn must
// still give exactly what a fresh prefill gives, and reuse only what the cache really holds.
TEST_F(SessionCacheOwnership, ReuseAfterAnyOperationEqualsAFreshPrefill) {
  const Tokenizer& tok = chat_->tokenizer();
  const std::vector<int32_t> r1 = run(*fresh_, p1_, greedy_);
  std::vector<int32_t> p2 = p1_;
  p2.insert(p2.end(), r1.begin(), r1.end());
  const auto more = tok.encode(" Lily said", false);
  p2.insert(p2.end(), more.begin(), more.end());
  const std::vector<int32_t> want = run(*fresh_, p2, greedy_);
  // As many tokens as the first turn leaves cached (the last reply token is never fed), but others.
  std::vector<int32_t> other = tok.encode(" The dog ran to the park and", true);
  other.resize(p1_.size() + r1.size() - 1, other.back());

  std::vector<std::pair<std::string, std::function<void(Session&)>>> ops = {
      {"nothing", [](Session&) {}},
      {"evaluate_all", [&](Session& s) { s.evaluate_all(other); }},
      {"generate without reuse", [&](Session& s) { run(s, other, greedy_); }},
      {"generate with reuse of another prompt", [&](Session& s) { run(s, other, reuse_); }},
      {"reset", [](Session& s) { s.reset(); }},
      {"reset + append", [&](Session& s) {
         std::vector<float> logits;
         s.reset();
         s.append(other, logits);
       }},
      {"append", [&](Session& s) {
         std::vector<float> logits;
         s.append(std::vector<int32_t>{5, 6, 7}, logits);
       }},
  };
  if (forward_behind_the_sessions_back(*chat_, other))  // the old API: record the misuse as an operation
    ops.emplace_back("forward through transformer()/cache()",
                     [&](Session& s) { forward_behind_the_sessions_back(s, other); });
  for (const auto& [name, op] : ops) {
    EXPECT_EQ(run(*chat_, p1_, greedy_), r1) << name;  // without reuse_cache: starts from an empty cache
    op(*chat_);
    GenerationStats st;
    EXPECT_EQ(run(*chat_, p2, reuse_, &st), want) << "after " << name;
    EXPECT_LE(st.n_prompt_cached, static_cast<int64_t>(p2.size()) - 1) << name;
    EXPECT_EQ(chat_->cached_tokens().size(), static_cast<size_t>(chat_->cache().n_past())) << name;
  }
}

// append() extends the cached sequence exactly as a prefill of the whole would: the logits match
// evaluate_all's, and a reuse_cache generate keeps what append put there.
TEST_F(SessionCacheOwnership, AppendExtendsTheCachedSequence) {
  const std::vector<float> all = fresh_->evaluate_all(p1_);
  const size_t n_vocab = static_cast<size_t>(chat_->config().n_vocab);
  std::vector<float> logits;
  chat_->reset();
  chat_->append(std::span<const int32_t>(p1_).first(2), logits);
  EXPECT_EQ(logits.size(), n_vocab);
  chat_->append(std::span<const int32_t>(p1_).subspan(2), logits, /*all_logits=*/true);
  ASSERT_EQ(logits.size(), (p1_.size() - 2) * n_vocab);
  for (size_t i = 0; i < logits.size(); ++i) ASSERT_NEAR(logits[i], all[2 * n_vocab + i], 1e-4f) << i;
  EXPECT_EQ(std::vector<int32_t>(chat_->cached_tokens().begin(), chat_->cached_tokens().end()), p1_);
  EXPECT_EQ(chat_->cache().n_past(), static_cast<int64_t>(p1_.size()));

  std::vector<int32_t> p2 = p1_;
  p2.push_back(p1_.back());
  GenerationStats st;
  EXPECT_EQ(run(*chat_, p2, reuse_, &st), run(*fresh_, p2, greedy_));
  EXPECT_EQ(st.n_prompt_cached, static_cast<int64_t>(p1_.size()));

  // Errors leave the record and the cache in step.
  chat_->reset();
  chat_->append(p1_, logits);
  test::expect_invalid([&] { chat_->append(std::vector<int32_t>(200, 1), logits); }, {"200", "128"});
  test::expect_invalid([&] { chat_->append(std::vector<int32_t>{}, logits); }, {"no tokens"});
  EXPECT_EQ(chat_->cache().n_past(), static_cast<int64_t>(p1_.size()));
  // A bad id in the second n_batch chunk: the first chunk stays cached, the rest does not.
  std::vector<int32_t> bad(8, 3);
  bad[6] = 1 << 30;
  EXPECT_THROW(chat_->append(bad, logits), InvalidArgument);
  EXPECT_EQ(chat_->cached_tokens().size(), static_cast<size_t>(chat_->cache().n_past()));
  EXPECT_EQ(chat_->cache().n_past(), static_cast<int64_t>(p1_.size() + 5));
}

}  // namespace
}  // namespace contrail
