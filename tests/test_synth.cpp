// `contrail synth`: the GGUF has the shapes, dtypes and metadata asked for, the tokenizer of the
// given vocab file byte for byte, loads in Contrail and generates; every preset has the published
// model's shape; seeds are reproducible.
#include <gtest/gtest.h>

#include <cmath>

#include "contrail/core/half.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "contrail/model/synth.h"
#include "contrail/runtime/session.h"
#include "test_util.h"

namespace contrail {
namespace {

std::string quote(const std::string& s) { return "'" + s + "'"; }

TEST(Synth, PresetsHaveThePublishedShapes) {
  const ModelConfig t = synth_preset("tinyllama-1.1b");
  EXPECT_EQ(t.arch, "llama");
  EXPECT_EQ(t.n_embd, 2048);
  EXPECT_EQ(t.n_layer, 22);
  EXPECT_EQ(t.n_head, 32);
  EXPECT_EQ(t.n_head_kv, 4);
  EXPECT_EQ(t.n_ff, 5632);
  const ModelConfig g = synth_preset("gemma-2b");
  EXPECT_EQ(g.head_dim, 256);
  EXPECT_EQ(g.n_head_kv, 1);
  EXPECT_TRUE(g.tied_embeddings);
  EXPECT_EQ(synth_preset("gpt2-124m").n_ff, 3072);
  test::expect_invalid([] { synth_preset("llama-9000"); }, {"llama-9000", "tinyllama-1.1b"});
}

TEST(Synth, CliWritesALoadableModelWithTheRealTokenizer) {
  const std::string vocab = test::data_path("golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf");
  CONTRAIL_REQUIRE_DATA(vocab);
  test::TempDir dir("synth");
  for (const char* outtype : {"f16", "q8_0"}) {
    const std::string out = dir.file(std::string("tiny-") + outtype + ".gguf");
    std::string log;
    ASSERT_EQ(test::run_command(quote(test::cli_path()) + " synth --preset tinyllama-1.1b --n-embd 128 --n-layer 3 "
                                    "--n-ff 352 --n-head 4 --n-head-kv 2 --vocab " + quote(vocab) + " -t " + outtype +
                                    " --seed 5 -o " + quote(out) + " 2>&1",
                                &log),
              0)
        << log;
    const ModelFile m = load_model_file(out);
    EXPECT_EQ(m.config.arch, "llama");
    EXPECT_EQ(m.config.n_embd, 128);
    EXPECT_EQ(m.config.n_layer, 3);
    EXPECT_EQ(m.config.n_head_kv, 2);
    EXPECT_EQ(m.config.head_dim, 32);
    EXPECT_EQ(m.config.n_ff, 352);
    EXPECT_EQ(m.config.n_vocab, 32000);
    EXPECT_EQ(m.config.n_ctx_train, 2048);
    const DType want = std::string(outtype) == "f16" ? DType::F16 : DType::Q8_0;
    EXPECT_EQ(m.tensor("blk.2.ffn_down.weight").dtype(), want);
    EXPECT_EQ(m.tensor("blk.2.ffn_down.weight").shape(), (std::vector<int64_t>{128, 352}));
    EXPECT_EQ(m.tensor("token_embd.weight").dtype(), want);
    EXPECT_EQ(m.tensor("blk.0.attn_norm.weight").dtype(), DType::F32);
    // The tokenizer is the vocab file's, unchanged.
    const auto g = GgufFile::open(vocab);
    const VocabData v = read_gguf_vocab(*g);
    EXPECT_EQ(m.vocab.tokens, v.tokens);
    EXPECT_EQ(m.vocab.scores, v.scores);
    EXPECT_EQ(m.vocab.types, v.types);
    EXPECT_EQ(m.vocab.bos_id, v.bos_id);
    EXPECT_EQ(m.vocab.eos_id, v.eos_id);
    // Weights have the documented scale: N(0, 0.02) for ffn matrices.
    auto s = Session::load(out);
    const Tensor& w = m.tensor("blk.1.ffn_up.weight");
    if (w.dtype() == DType::F16) {
      double sum2 = 0;
      const auto* p = static_cast<const uint16_t*>(w.data());
      for (int64_t i = 0; i < w.numel(); ++i) {
        const float x = f16_to_f32(p[i]);
        sum2 += static_cast<double>(x) * x;
      }
      EXPECT_NEAR(std::sqrt(sum2 / static_cast<double>(w.numel())), 0.02, 0.001);
    }
    // It generates, and the output is finite and deterministic.
    const auto ids = s->tokenizer().encode("Hello world", true);
    GenerateOptions go;
    go.max_new_tokens = 8;
    go.sampling.temperature = 0;
    go.stop_at_eog = false;
    std::vector<int32_t> a, b;
    s->generate(ids, go, [&](int32_t t) { return a.push_back(t), true; });
    s->generate(ids, go, [&](int32_t t) { return b.push_back(t), true; });
    EXPECT_EQ(a.size(), 8u);
    EXPECT_EQ(a, b);
    const auto logits = s->evaluate_all(ids);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
  }
  // The same seed gives the same file; another seed another one.
  std::string log;
  const std::string again = dir.file("again.gguf"), other = dir.file("other.gguf");
  const std::string base = quote(test::cli_path()) + " synth --preset tinyllama-1.1b --n-embd 128 --n-layer 3 "
                           "--n-ff 352 --n-head 4 --n-head-kv 2 --vocab " + quote(vocab) + " -t f16 ";
  ASSERT_EQ(test::run_command(base + "--seed 5 -o " + quote(again) + " 2>&1", &log), 0) << log;
  ASSERT_EQ(test::run_command(base + "--seed 6 -o " + quote(other) + " 2>&1", &log), 0) << log;
  EXPECT_EQ(test::read_bytes(again), test::read_bytes(dir.file("tiny-f16.gguf")));
  EXPECT_NE(test::read_bytes(other), test::read_bytes(again));
  // Bad arguments are clear errors.
  log.clear();
  EXPECT_NE(test::run_command(quote(test::cli_path()) + " synth --preset nope --vocab " + quote(vocab) + " -o " +
                                  quote(dir.file("x.gguf")) + " 2>&1",
                              &log),
            0);
  EXPECT_NE(log.find("unknown preset 'nope'"), std::string::npos) << log;
}

TEST(Synth, TokenizerFromAHuggingFaceTokenizerJson) {
  const std::string tj = test::data_path("tokenizers/gpt2/tokenizer.json");
  CONTRAIL_REQUIRE_DATA(tj);
  test::TempDir dir("synth_hf");
  const std::string out = dir.file("gpt2.gguf");
  std::string log;
  ASSERT_EQ(test::run_command(quote(test::cli_path()) + " synth --preset gpt2-124m --n-embd 64 --n-layer 1 --n-head 4 "
                                  "--n-ff 128 --vocab " + quote(tj) + " -t f16 -o " + quote(out) + " 2>&1",
                              &log),
            0)
      << log;
  const ModelFile m = load_model_file(out);
  EXPECT_EQ(m.config.arch, "gpt2");
  EXPECT_EQ(m.config.n_vocab, 50257);
  EXPECT_EQ(m.vocab.kind, VocabKind::BytePair);
  EXPECT_EQ(m.vocab.pre, "gpt-2");
  auto s = Session::load(out);
  EXPECT_EQ(s->tokenizer().encode("Hello world", false), (std::vector<int32_t>{15496, 995}));  // GPT-2's ids
}

TEST(Synth, EveryArchitectureLoadsAndRuns) {
  const std::string spm = test::data_path("golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf");
  const std::string gpt2 = test::data_path("golden/tokenizers/vocab/ggml-vocab-gpt-2.gguf");
  CONTRAIL_REQUIRE_DATA(spm);
  CONTRAIL_REQUIRE_DATA(gpt2);
  for (const char* preset : {"tinyllama-1.1b", "mistral-7b", "gemma-2b", "gpt2-124m", "qwen2-0.5b"}) {
    ModelConfig c = synth_preset(preset);
    c.n_embd = 64, c.n_layer = 2, c.n_ff = 96, c.n_head = 4;
    c.n_head_kv = std::min<int64_t>(c.n_head_kv, 2);
    c.head_dim = c.rope.n_rot = std::string(preset) == "gemma-2b" ? 32 : 16;
    const auto g = GgufFile::open(std::string(preset) == "gpt2-124m" ? gpt2 : spm);
    VocabData v = read_gguf_vocab(*g);
    c.n_vocab = static_cast<int64_t>(v.tokens.size());
    auto m = std::make_shared<const ModelFile>(synth_model(c, v, 3));
    Session s(m, {});
    const auto logits = s.evaluate_all(s.tokenizer().encode("The quick brown fox", true));
    for (float x : logits) ASSERT_TRUE(std::isfinite(x)) << preset;
  }
}

}  // namespace
}  // namespace contrail
