// Session::generate with reuse_cache (a chat's earlier turns stay in the KV cache): the output
// must be exactly what a fresh prefill of the same prompt gives, greedy and seeded, whatever the
// overlap with the previous call.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace contrail
