// Hugging Face checkpoint directories (config.json + safetensors) loaded without conversion:
// logits against llama.cpp's goldens (computed from the GGUF conversion of the same weights) and
// against our own evaluation of that GGUF; malformed config.json / index files rejected with
// errors naming the field.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <ostream>
#include <nlohmann/json.hpp>

#include "contrail/core/error.h"
#include "contrail/model/arch.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/tokenizer.h"
#include "contrail/runtime/session.h"
#include "golden.h"
#include "test_util.h"

namespace contrail {
namespace {

using nlohmann::json;

std::string tiny(const std::string& model, const std::string& rel) {
  return test::data_path("golden/tiny-random/" + model + "/" + rel);
}

std::unique_ptr<Session> make_session(ModelFile m) {
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 256;  // as the goldens
  return std::make_unique<Session>(std::make_shared<const ModelFile>(std::move(m)), so);
}

// Per checkpoint: tolerances on |logit diff| vs llama.cpp's goldens (max over prompt rows and
// greedy steps; mean per sequence) and vs our evaluation of the GGUF conversion (max), about 3-5x
// the largest error measured with CONTRAIL_ISA=scalar, avx2 and avx512 (AMD EPYC Zen 5). The
// goldens were computed from the GGUF conversion, so the HF path sees the same floors as
// test_golden_tiny_random.cpp (see the reasons there); measured max / mean over the 3 sequences:
struct HfCase {
  const char* model;
  double tol_golden;       // max |logit - golden| (prompt rows and greedy steps)
  double mean_tol_golden;  // mean |logit - golden| of each sequence
  double tol_gguf;         // max |logit - our GGUF logit|
};

void PrintTo(const HfCase& c, std::ostream* os) { *os << c.model; }

const HfCase kHfCases[] = {
    // golden 1.88e-4 / 2.74e-5; vs GGUF 2.98e-7 (Q/K rows permuted: summation order differs).
    {"llama", 6e-4, 1e-4, 1e-6},
    // golden 1.70e-4 / 2.62e-5; vs GGUF 2.98e-7.
    {"mistral", 6e-4, 1e-4, 1e-6},
    // golden 4.17e-7 / 3.59e-8; vs GGUF 0 (bit-identical on every ISA: same layout, same math).
    {"qwen2", 1.5e-6, 1.5e-7, 1e-6},
    // golden 2.38e-7 / 3.56e-8; vs GGUF 0.
    {"phi3", 1e-6, 1.5e-7, 1e-6},
    // golden 2.06e-4 / 3.08e-5; vs GGUF 0.
    {"gpt2", 7e-4, 1e-4, 1e-6},
    // golden 8.05e-6 / 1.28e-6; vs GGUF 0. Doubled eps: 3.2e-5 / 3.1e-6 (caught by the max).
    {"gemma", 2.4e-5, 4e-6, 1e-6},
    // golden 2.41e-4 / 3.88e-5; vs GGUF 0.
    {"gemma2", 8e-4, 1.2e-4, 1e-6},
    // golden 1.07e-6 (greedy 1.07e-6) / 1.78e-7; vs GGUF 8.94e-7.
    {"llama_quant", 5e-6, 6e-7, 3e-6},
};

class HfGolden : public ::testing::TestWithParam<HfCase> {};

// The tokenizer read from the HF files (tokenizer.model / tokenizer.json + tokenizer_config.json)
// against the GGUF conversion's tokenizer.* keys, which llama.cpp's converter wrote from the same
// files: same pieces and special ids, and the golden text sequences (first N ids of
// llama-tokenize(TEXT), BOS as the vocab says) are prefixes of our HF-path tokenization.
void expect_same_tokenizer(const std::string& model, const VocabData& hf, const VocabData& gguf) {
  EXPECT_EQ(hf.kind, gguf.kind) << model;
  ASSERT_EQ(hf.tokens.size(), gguf.tokens.size()) << model;
  size_t differ = 0;
  for (size_t i = 0; i < hf.tokens.size(); ++i) differ += hf.tokens[i] != gguf.tokens[i];
  EXPECT_EQ(differ, 0u) << model << ": pieces that differ";
  EXPECT_EQ(hf.bos_id, gguf.bos_id) << model;
  EXPECT_EQ(hf.eos_id, gguf.eos_id) << model;
  EXPECT_EQ(hf.add_bos, gguf.add_bos) << model;
  EXPECT_EQ(hf.add_space_prefix, gguf.add_space_prefix) << model;
  const Tokenizer tok(hf);
  const json summary = test::read_json(tiny(model, "golden/summary.json"));
  int checked = 0;
  for (const auto& seq : summary.at("sequences")) {
    const std::string how = seq.at("how");
    const size_t at = how.find("llama-tokenize(");
    if (at == std::string::npos) continue;  // random ids
    const std::string key = how.substr(at + 15, how.find(')', at) - at - 15);
    const auto expected = seq.at("ids").get<std::vector<int32_t>>();
    auto ids = tok.encode(summary.at("texts").at(key).get<std::string>(), /*add_special=*/true);
    ASSERT_GE(ids.size(), expected.size()) << model << "/" << seq.at("name");
    ids.resize(expected.size());
    EXPECT_EQ(ids, expected) << model << "/" << seq.at("name");
    ++checked;
  }
  EXPECT_EQ(checked, 2) << model;
}

// Every golden sequence: HF logits within the case's tolerance of llama.cpp's goldens, and of the
// GGUF conversion evaluated by the same transformer (same weights; only the Q/K row order and
// with it the RoPE layout differ, so only summation order may move results); greedy
// continuations equal to llama.cpp's wherever its top1-top2 margin exceeds the tolerance.
// Control: the checkpoint with its norm epsilon doubled must miss the goldens by more.
TEST_P(HfGolden, LogitsMatchLlamaCppAndGguf) {
  const HfCase& c = GetParam();
  const std::string model = c.model;
  const std::string hf_dir = tiny(model, "hf");
  CONTRAIL_REQUIRE_DATA(hf_dir + "/config.json");
  ModelFile hf = load_model_file(hf_dir);
  EXPECT_EQ(hf.format, ModelFormat::HuggingFace);
  const bool rope = arch_traits(hf.config.arch).rope;
  if (rope) EXPECT_EQ(hf.config.rope.mode, ops::RopeMode::Neox);
  ModelFile gguf = load_gguf_model(tiny(model, "gguf/model.gguf"));
  EXPECT_EQ(hf.config.arch, gguf.config.arch);
  EXPECT_EQ(hf.config.n_vocab, gguf.config.n_vocab);
  EXPECT_EQ(hf.config.n_head_kv, gguf.config.n_head_kv);
  EXPECT_EQ(hf.config.tied_embeddings, gguf.config.tied_embeddings);
  EXPECT_FLOAT_EQ(hf.config.rope.freq_base, gguf.config.rope.freq_base);
  EXPECT_FLOAT_EQ(hf.config.norm_eps, gguf.config.norm_eps);
  EXPECT_EQ(hf.tensors.size(), gguf.tensors.size());
  expect_same_tokenizer(model, hf.vocab, gguf.vocab);
  // Control: the unpermuted HF rows with GGUF llama's adjacent-pair RoPE are a different model,
  // so the comparisons below can tell the layouts apart (GPT-2 has no RoPE).
  std::unique_ptr<Session> s_wrong;
  if (rope) {
    ModelFile wrong_layout = hf;
    wrong_layout.config.rope.mode = ops::RopeMode::Normal;
    s_wrong = make_session(std::move(wrong_layout));
  }
  ModelFile doubled_eps = hf;
  doubled_eps.config.norm_eps *= 2;
  auto s_eps = make_session(std::move(doubled_eps));
  test::LogitsDiff worst_eps;  // largest max and mean over the sequences
  size_t n_seqs = 0;
  auto s_hf = make_session(std::move(hf));
  auto s_gguf = make_session(std::move(gguf));
  const int64_t n_vocab = s_hf->config().n_vocab;

  for (const std::string& seq : test::tiny_random_sequences(model)) {
    const std::string jpath = tiny(model, "golden/" + seq + ".json");
    const json g = test::read_json(jpath);
    const auto ids = g.at("token_ids").get<std::vector<int32_t>>();
    const auto ref = test::read_f32(tiny(model, "golden/" + seq + ".logits.bin"));
    ASSERT_EQ(ref.size(), ids.size() * static_cast<size_t>(n_vocab)) << jpath;
    const auto got = s_hf->evaluate_all(ids);
    const auto d_golden = test::max_abs_diff(got, ref, n_vocab);
    const auto d_gguf = test::max_abs_diff(got, s_gguf->evaluate_all(ids), n_vocab);
    EXPECT_LE(d_golden.max_abs, c.tol_golden) << model << "/" << seq << ": worst at position " << d_golden.row
                                              << ", token " << d_golden.col;
    EXPECT_LE(d_golden.mean_abs, c.mean_tol_golden) << model << "/" << seq << ": mean |logit diff|";
    EXPECT_LE(d_gguf.max_abs, c.tol_gguf) << model << "/" << seq << ": worst at position " << d_gguf.row << ", token "
                                          << d_gguf.col;
    if (s_wrong) EXPECT_GT(test::max_abs_diff(s_wrong->evaluate_all(ids), ref, n_vocab).max_abs, 1e-2) << model << "/" << seq;
    double step_diff = 0;
    const int matched = test::check_greedy(*s_hf, ids, g, c.tol_golden, &step_diff);
    const auto d_eps = test::max_abs_diff(s_eps->evaluate_all(ids), ref, n_vocab);
    worst_eps.max_abs = std::max(worst_eps.max_abs, d_eps.max_abs);
    worst_eps.mean_abs = std::max(worst_eps.mean_abs, d_eps.mean_abs);
    RecordProperty(seq + "_max_abs_diff_golden", std::to_string(d_golden.max_abs));
    RecordProperty(seq + "_max_abs_diff_gguf", std::to_string(d_gguf.max_abs));
    std::printf("hf %s/%s: |logit diff| vs llama.cpp max %.3g mean %.3g, vs our GGUF max %.3g; greedy steps "
                "matched %d/%zu (max diff %.3g); doubled eps: max %.3g mean %.3g\n",
                model.c_str(), seq.c_str(), d_golden.max_abs, d_golden.mean_abs, d_gguf.max_abs, matched,
                g.at("greedy_ids").size(), step_diff, d_eps.max_abs, d_eps.mean_abs);
    ++n_seqs;
  }
  test::require_cases(n_seqs, model + " golden sequences");
  EXPECT_TRUE(worst_eps.max_abs > c.tol_golden || worst_eps.mean_abs > c.mean_tol_golden)
      << model << ": a doubled norm epsilon stays within the tolerances (max " << worst_eps.max_abs << ", mean "
      << worst_eps.mean_abs << ")";
}

INSTANTIATE_TEST_SUITE_P(TinyRandom, HfGolden, ::testing::ValuesIn(kHfCases),
                         [](const auto& info) { return std::string(info.param.model); });

// ---- malformed checkpoints ---------------------------------------------------------------------

void write_text(const test::TempDir& dir, const std::string& name, const std::string& text) {
  dir.write(name, std::vector<uint8_t>(text.begin(), text.end()));
}

// The tiny-random llama config.json, parsed, for editing.
json llama_config() { return test::read_json(tiny("llama", "hf/config.json")); }

// Loads `dir` and returns the FormatError message ("" and a test failure when it loads).
std::string load_error(const std::string& dir) {
  try {
    load_hf_model(dir);
  } catch (const FormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << dir << " loaded, expected a FormatError";
  return "";
}

struct BadConfig {
  const char* name;
  json patch;            // merged into the llama config (null values delete the key)
  const char* expected;  // substrings of the message, '|'-separated
};

class HfBadConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(HfBadConfig, RejectedNamingTheField) {
  const BadConfig& b = GetParam();
  CONTRAIL_REQUIRE_DATA(tiny("llama", "hf/config.json"));
  json cfg = llama_config();
  cfg.merge_patch(b.patch);
  test::TempDir dir("hf_bad");
  write_text(dir, "config.json", cfg.dump());
  const std::string msg = load_error(dir.path());
  EXPECT_NE(msg.find(dir.file("config.json")), std::string::npos) << msg;
  std::string want = b.expected;
  for (size_t pos = 0; pos <= want.size();) {
    const size_t bar = std::min(want.find('|', pos), want.size());
    EXPECT_NE(msg.find(want.substr(pos, bar - pos)), std::string::npos) << msg;
    pos = bar + 1;
  }
}

const BadConfig kBadConfigs[] = {
    {"missing_hidden_size", json::parse(R"({"hidden_size": null})"), "'hidden_size'|missing"},
    {"missing_eps", json::parse(R"({"rms_norm_eps": null})"), "'rms_norm_eps'|missing"},
    {"heads_is_string", json::parse(R"({"num_attention_heads": "4"})"), "'num_attention_heads'|\"4\"|integer"},
    {"layers_is_float", json::parse(R"({"num_hidden_layers": 2.5})"), "'num_hidden_layers'|2.5|integer"},
    {"tie_is_number", json::parse(R"({"tie_word_embeddings": 1})"), "'tie_word_embeddings'|boolean"},
    {"theta_is_string", json::parse(R"({"rope_theta": "1e4"})"), "'rope_theta'|number"},
    {"unsupported_class", json::parse(R"({"architectures": ["MambaForCausalLM"]})"),
     "'architectures'|MambaForCausalLM|LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, "
     "Gemma2ForCausalLM, Phi3ForCausalLM, GPT2LMHeadModel"},
    {"unsupported_model_type", json::parse(R"({"architectures": null, "model_type": "mamba"})"),
     "'model_type'|mamba|llama, mistral, qwen2, gemma, gemma2, phi3, gpt2"},
    {"no_architecture", json::parse(R"({"architectures": null, "model_type": null})"), "'architectures'|missing"},
    {"rope_scaling_yarn", json::parse(R"({"rope_scaling": {"type": "yarn", "factor": 4.0}})"),
     "'rope_scaling'|yarn|linear"},
    {"rope_scaling_no_factor", json::parse(R"({"rope_scaling": {"rope_type": "linear"}})"), "'rope_scaling'|factor"},
    {"rope_scaling_array", json::parse(R"({"rope_scaling": [1]})"), "'rope_scaling'|object"},
    {"odd_kv_heads", json::parse(R"({"num_key_value_heads": 3})"), "n_head_kv 3"},
    {"negative_vocab", json::parse(R"({"vocab_size": -5})"), "n_vocab is -5"},
    {"attention_bias", json::parse(R"({"attention_bias": true})"), "'attention_bias'"},
    {"gelu", json::parse(R"({"hidden_act": "gelu"})"), "'hidden_act'|gelu"},
};

INSTANTIATE_TEST_SUITE_P(Config, HfBadConfig, ::testing::ValuesIn(kBadConfigs),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HfModel, InvalidJsonAndMissingFilesAreFormatErrors) {
  CONTRAIL_REQUIRE_DATA(tiny("llama", "hf/config.json"));
  test::TempDir dir("hf_files");
  EXPECT_NE(load_error(dir.path()).find("config.json"), std::string::npos);  // no config.json at all
  write_text(dir, "config.json", "{\"hidden_size\": 64,");
  EXPECT_NE(load_error(dir.path()).find("not valid JSON"), std::string::npos);
  write_text(dir, "config.json", "[1, 2]");
  EXPECT_NE(load_error(dir.path()).find("expected an object"), std::string::npos);
  write_text(dir, "config.json", llama_config().dump());
  EXPECT_NE(load_error(dir.path()).find("model.safetensors"), std::string::npos);  // no weights
}

// A sharded checkpoint: the index maps every tensor to a shard beside it (here one shard, a link
// to the real file); the result equals the single-file load.
TEST(HfModel, ShardedIndex) {
  const std::string weights = tiny("llama", "hf/model.safetensors");
  CONTRAIL_REQUIRE_DATA(weights);
  const ModelFile single = load_hf_model(tiny("llama", "hf"));
  test::TempDir dir("hf_sharded");
  write_text(dir, "config.json", llama_config().dump());
  std::filesystem::create_symlink(weights, dir.file("model-00001-of-00001.safetensors"));
  json map = json::object();
  for (const char* name : {"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"})
    map[name] = "model-00001-of-00001.safetensors";
  for (int l = 0; l < 2; ++l)
    for (const char* t : {"input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                          "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      const std::string name = "model.layers." + std::to_string(l) + "." + t + ".weight";
      map[name] = "model-00001-of-00001.safetensors";
    }
  write_text(dir, "model.safetensors.index.json", json{{"metadata", json::object()}, {"weight_map", map}}.dump());
  const ModelFile sharded = load_model_file(dir.path());
  ASSERT_EQ(sharded.tensors.size(), single.tensors.size());
  for (const auto& [name, t] : single.tensors) {
    const Tensor* s = sharded.find(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->shape(), t.shape()) << name;
    EXPECT_EQ(s->dtype(), t.dtype()) << name;
  }

  // An unlisted tensor, a shard outside the directory, a tensor the named shard lacks.
  const std::string index = "model.safetensors.index.json";
  json partial = map;
  partial.erase("model.norm.weight");
  write_text(dir, index, json{{"weight_map", partial}}.dump());
  EXPECT_NE(load_error(dir.path()).find("'model.norm.weight' is not listed"), std::string::npos);
  json escape = map;
  escape["model.norm.weight"] = "../model.safetensors";
  write_text(dir, index, json{{"weight_map", escape}}.dump());
  EXPECT_NE(load_error(dir.path()).find("plain file name"), std::string::npos);
  json wrong = map;
  wrong["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00001.safetensors";
  write_text(dir, index, json{{"weight_map", wrong}}.dump());
  EXPECT_NE(load_error(dir.path()).find("does not hold it"), std::string::npos);
  write_text(dir, index, json{{"weight_map", 3}}.dump());
  EXPECT_NE(load_error(dir.path()).find("'weight_map'"), std::string::npos);
}

}  // namespace
}  // namespace contrail
