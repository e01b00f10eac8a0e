// Random-weight models of the supported architectures against llama.cpp's goldens (MANIFEST sections 2, 4, 5):
// logits of every position within the tolerance, greedy continuations equal wherever the golden
// top1-top2 margin exceeds it.
#include <gtest/gtest.h>

#include <cstdio>

#include "contrail/runtime/session.h"
#include "golden.h"
#include "test_util.h"

namespace contrail {
namespace {

struct Case {
  const char* name;
  const char* arch;
  const char* model;   // under golden/tiny-random/
  const char* golden;  // golden/<seq><suffix>.json
  double tol;
};

// MANIFEST: atol 1e-3 for F32/F16-vocab models with F32 KV; ~5e-2 for quantized ones (ggml
// quantizes activations; llama.cpp itself moves by 2.3e-2 between settings).
const Case kCases[] = {
    {"llama_f32_f16vocab", "llama", "llama/gguf/model.gguf", "llama/golden/{}.json", 1e-3},
    {"llama_quant_f32", "llama_quant", "llama_quant/gguf/model.gguf", "llama_quant/golden/{}.json", 1e-3},
    {"llama_quant_q8_0", "llama_quant", "llama_quant/gguf/model-Q8_0.gguf", "llama_quant/golden/{}.Q8_0.json", 5e-2},
    // GGUF arch "llama" (MQA 4/1, explicit head_dim, theta 1e6).
    {"mistral", "mistral", "mistral/gguf/model.gguf", "mistral/golden/{}.json", 1e-3},
    // GGUF arch "qwen2": q/k/v biases, NEOX RoPE, tied embeddings, theta 1e6; sequences without BOS.
    {"qwen2", "qwen2", "qwen2/gguf/model.gguf", "qwen2/golden/{}.json", 1e-3},
    // GGUF arch "phi3": fused attn_qkv and ffn_up (gate rows first), NEOX RoPE, GQA 4/2.
    {"phi3", "phi3", "phi3/gguf/model.gguf", "phi3/golden/{}.json", 1e-3},
    // GGUF arch "gpt2": LayerNorm with biases, learned positions, GELU MLP, fused QKV with bias, tied.
    {"gpt2", "gpt2", "gpt2/gguf/model.gguf", "gpt2/golden/{}.json", 1e-3},
    // GGUF arch "gemma": GeGLU, embeddings x sqrt(n_embd), (1+w) norms stored with the 1, head_dim 32.
    {"gemma", "gemma", "gemma/gguf/model.gguf", "gemma/golden/{}.json", 1e-3},
    // GGUF arch "gemma2": alternating sliding-window/global layers, attention and final soft-capping,
    // post-attention and post-FFN norms.
    {"gemma2", "gemma2", "gemma2/gguf/model.gguf", "gemma2/golden/{}.json", 1e-3},
};

std::string golden_json(const Case& c, const std::string& seq) {
  std::string p = c.golden;
  p.replace(p.find("{}"), 2, seq);
  return test::data_path("golden/tiny-random/" + p);
}

class TinyRandom : public ::testing::TestWithParam<Case> {};

TEST_P(TinyRandom, LogitsAndGreedyMatchLlamaCpp) {
  const Case& c = GetParam();
  const std::string model = test::data_path(std::string("golden/tiny-random/") + c.model);
  CONTRAIL_REQUIRE_DATA(model);
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 256;  // as the goldens
  auto s = Session::load(model, so);
  const int64_t n_vocab = s->config().n_vocab;
  for (const std::string& seq : test::tiny_random_sequences(c.arch)) {
    const std::string jpath = golden_json(c, seq);
    const auto g = test::read_json(jpath);
    const auto ids = g.at("token_ids").get<std::vector<int32_t>>();
    const std::string lpath = jpath.substr(0, jpath.size() - 5) + ".logits.bin";
    const auto ref = test::read_f32(lpath);
    ASSERT_EQ(ref.size(), ids.size() * static_cast<size_t>(n_vocab)) << lpath;
    const auto got = s->evaluate_all(ids);
    const auto d = test::max_abs_diff(got, ref, n_vocab);
    EXPECT_LE(d.max_abs, c.tol) << c.name << "/" << seq << ": worst at position " << d.row << ", token " << d.col;
    const int matched = test::check_greedy(*s, ids, g, c.tol);
    RecordProperty(seq + "_greedy_matched", matched);
    RecordProperty(seq + "_max_abs_diff", std::to_string(d.max_abs));
    std::printf("%s/%s: max |logit diff| %.3g, greedy steps matched %d/%zu\n", c.name, seq.c_str(), d.max_abs, matched,
                g.at("greedy_ids").size());
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, TinyRandom, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace contrail
