// GGUF reader/writer and model loaders on real files, checked against independent references:
// the llama2.c checkpoint's raw bytes (read here with plain memcpy, following run.c's layout), the
// HF config.json / model.safetensors each GGUF was converted from, and the Q8_0 block format.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "contrail/core/error.h"
#include "contrail/core/half.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "test_util.h"

namespace contrail {
namespace {

namespace fs = std::filesystem;
using test::data_path;


std::vector<uint8_t> tensor_bytes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.data());
  return std::vector<uint8_t>(p, p + t.nbytes());
}

std::vector<uint8_t> slice(const std::vector<uint8_t>& b, size_t off, size_t n) {
  if (off + n > b.size()) throw std::runtime_error("slice out of range");
  return std::vector<uint8_t>(b.begin() + static_cast<std::ptrdiff_t>(off), b.begin() + static_cast<std::ptrdiff_t>(off + n));
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- llama2.c checkpoint read independently of the loader ----------------------------------------

struct Llama2cRaw {
  std::vector<uint8_t> bytes;
  int32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
  int32_t head_size() const { return dim / heads; }
  // Byte offsets of run.c's arrays (shared classifier, as stories260K.bin has).
  size_t tok_embd() const { return 28; }
  size_t rms_att() const { return tok_embd() + size_t(vocab) * dim * 4; }
  size_t wq() const { return rms_att() + size_t(layers) * dim * 4; }
  size_t rms_final() const {
    const size_t kv_dim = size_t(kv_heads) * head_size();
    return wq() + size_t(layers) * (2 * dim * dim + 2 * kv_dim * dim + dim + 3 * size_t(dim) * hidden) * 4;
  }
};

Llama2cRaw read_llama2c_raw(const std::string& path) {
  Llama2cRaw r;
  r.bytes = test::read_bytes(path);
  int32_t h[7];
  std::memcpy(h, r.bytes.data(), sizeof h);
  r.dim = h[0], r.hidden = h[1], r.layers = h[2], r.heads = h[3], r.kv_heads = h[4], r.vocab = h[5], r.seq_len = h[6];
  return r;
}

TEST(GgufFile, Stories260KMatchesItsLlama2cCheckpoint) {
  const std::string gguf_path = data_path("models/stories260K/stories260K.gguf");
  const std::string bin_path = data_path("models/stories260K/stories260K.bin");
  CONTRAIL_REQUIRE_DATA(gguf_path);
  CONTRAIL_REQUIRE_DATA(bin_path);
  const Llama2cRaw bin = read_llama2c_raw(bin_path);
  ASSERT_GT(bin.vocab, 0) << "stories260K.bin has a shared classifier";
  const auto g = GgufFile::open(gguf_path);

  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(g->data_offset() % 32, 0u);
  EXPECT_EQ(g->get_string("general.architecture"), "llama");
  EXPECT_EQ(g->get_int("llama.embedding_length"), bin.dim);
  EXPECT_EQ(g->get_int("llama.feed_forward_length"), bin.hidden);
  EXPECT_EQ(g->get_int("llama.block_count"), bin.layers);
  EXPECT_EQ(g->get_int("llama.attention.head_count"), bin.heads);
  EXPECT_EQ(g->get_int("llama.attention.head_count_kv"), bin.kv_heads);
  EXPECT_EQ(g->get_int("llama.rope.dimension_count"), bin.head_size());
  EXPECT_FLOAT_EQ(static_cast<float>(g->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(g->get_string_array("tokenizer.ggml.tokens").size(), static_cast<size_t>(bin.vocab));
  EXPECT_EQ(g->get_string_array("tokenizer.ggml.tokens")[1], "<s>");
  EXPECT_EQ(g->get_float_array("tokenizer.ggml.scores").size(), static_cast<size_t>(bin.vocab));
  EXPECT_EQ(g->get_int("tokenizer.ggml.bos_token_id"), 1);
  // 3 global tensors (token_embd, output_norm, output) + 9 per layer.
  EXPECT_EQ(g->tensors().size(), 3u + 9u * static_cast<size_t>(bin.layers));
  for (const GgufTensorInfo& t : g->tensors()) {
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_EQ(t.dtype, DType::F32) << t.name;
  }

  const size_t emb_bytes = size_t(bin.vocab) * bin.dim * 4;
  const Tensor emb = g->tensor("token_embd.weight");
  EXPECT_EQ(emb.shape(), (std::vector<int64_t>{bin.vocab, bin.dim}));
  EXPECT_EQ(tensor_bytes(emb), slice(bin.bytes, bin.tok_embd(), emb_bytes));
  // The converter wrote the shared classifier out as output.weight.
  EXPECT_EQ(tensor_bytes(g->tensor("output.weight")), slice(bin.bytes, bin.tok_embd(), emb_bytes));
  const Tensor q0 = g->tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q0.shape(), (std::vector<int64_t>{bin.dim, bin.dim}));
  EXPECT_EQ(tensor_bytes(q0), slice(bin.bytes, bin.wq(), size_t(bin.dim) * bin.dim * 4));
  const Tensor k0 = g->tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k0.shape(), (std::vector<int64_t>{int64_t(bin.kv_heads) * bin.head_size(), bin.dim}));
  EXPECT_EQ(tensor_bytes(g->tensor("blk.1.attn_norm.weight")), slice(bin.bytes, bin.rms_att() + bin.dim * 4, bin.dim * 4));
  EXPECT_EQ(tensor_bytes(g->tensor("output_norm.weight")), slice(bin.bytes, bin.rms_final(), bin.dim * 4));
  EXPECT_EQ(g->tensor("blk.4.ffn_down.weight").shape(), (std::vector<int64_t>{bin.dim, bin.hidden}));
  EXPECT_EQ(g->tensor("blk.4.ffn_gate.weight").shape(), (std::vector<int64_t>{bin.hidden, bin.dim}));
}

// ---- HF checkpoints the tiny-random GGUFs were converted from ------------------------------------

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(test::read_text(path)); }

// One tensor of a .safetensors file: (dtype, shape, bytes).
struct SafeTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

SafeTensor read_safetensor(const std::vector<uint8_t>& file, const std::string& name) {
  uint64_t header_len;
  std::memcpy(&header_len, file.data(), 8);
  const auto header = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
  const auto& e = header.at(name);
  SafeTensor t;
  t.dtype = e.at("dtype").get<std::string>();
  t.shape = e.at("shape").get<std::vector<int64_t>>();
  const auto off = e.at("data_offsets").get<std::vector<size_t>>();
  t.bytes = slice(file, 8 + header_len + off[0], off[1] - off[0]);
  return t;
}

TEST(GgufFile, TinyRandomLlamaMatchesHfCheckpoint) {
  const std::string dir = data_path("golden/tiny-random/llama");
  CONTRAIL_REQUIRE_DATA(dir + "/gguf/model.gguf");
  const auto cfg = read_json(dir + "/hf/config.json");
  const int64_t hidden = cfg.at("hidden_size"), layers = cfg.at("num_hidden_layers");
  const int64_t heads = cfg.at("num_attention_heads"), kv_heads = cfg.at("num_key_value_heads");
  const int64_t head_dim = cfg.at("head_dim"), ff = cfg.at("intermediate_size"), vocab = cfg.at("vocab_size");
  const auto g = GgufFile::open(dir + "/gguf/model.gguf");

  EXPECT_EQ(g->get_int("llama.embedding_length"), hidden);
  EXPECT_EQ(g->get_int("llama.block_count"), layers);
  EXPECT_EQ(g->get_int("llama.attention.head_count"), heads);
  EXPECT_EQ(g->get_int("llama.attention.head_count_kv"), kv_heads);
  EXPECT_EQ(g->get_int("llama.attention.key_length"), head_dim);
  EXPECT_EQ(g->get_int("llama.feed_forward_length"), ff);
  EXPECT_EQ(g->get_int("llama.context_length"), cfg.at("max_position_embeddings").get<int64_t>());
  EXPECT_EQ(g->get_float("llama.rope.freq_base"), cfg.at("rope_theta").get<double>());
  EXPECT_FLOAT_EQ(static_cast<float>(g->get_float("llama.attention.layer_norm_rms_epsilon")),
                  cfg.at("rms_norm_eps").get<float>());
  EXPECT_EQ(g->get_string_array("tokenizer.ggml.tokens").size(), static_cast<size_t>(vocab));
  EXPECT_TRUE(g->get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_EQ(g->tensors().size(), static_cast<size_t>(3 + 9 * layers));

  const auto emb = g->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::F16);  // vocab matrices are F16 (MANIFEST: > 4 MiB as F32)
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{vocab, hidden}));
  EXPECT_EQ(emb->nbytes, static_cast<size_t>(vocab * hidden * 2));
  EXPECT_EQ(g->tensor("blk.1.attn_q.weight").shape(), (std::vector<int64_t>{heads * head_dim, hidden}));
  EXPECT_EQ(g->tensor("blk.1.attn_k.weight").shape(), (std::vector<int64_t>{kv_heads * head_dim, hidden}));
  EXPECT_EQ(g->tensor("blk.1.attn_output.weight").shape(), (std::vector<int64_t>{hidden, heads * head_dim}));
  EXPECT_EQ(g->tensor("blk.1.ffn_up.weight").shape(), (std::vector<int64_t>{ff, hidden}));

  // Tensors the converter copies unchanged are byte-identical to the safetensors originals.
  const std::vector<uint8_t> st = test::read_bytes(dir + "/hf/model.safetensors");
  const std::pair<const char*, const char*> same[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"},
      {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"},
      {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"},
  };
  for (const auto& [hf, gg] : same) {
    const SafeTensor ref = read_safetensor(st, hf);
    const Tensor t = g->tensor(gg);
    EXPECT_EQ(t.shape(), ref.shape) << gg;
    EXPECT_EQ(dtype_name(t.dtype()), ref.dtype == "F16" ? "f16" : "f32") << gg;
    EXPECT_TRUE(tensor_bytes(t) == ref.bytes) << gg << " differs from " << hf;
  }
}

TEST(GgufFile, Q8_0ModelDequantizesToTheF32Model) {
  const std::string dir = data_path("golden/tiny-random/llama_quant");
  CONTRAIL_REQUIRE_DATA(dir + "/gguf/model-Q8_0.gguf");
  const auto cfg = read_json(dir + "/hf/config.json");
  const auto q = GgufFile::open(dir + "/gguf/model-Q8_0.gguf");
  const auto f = GgufFile::open(dir + "/gguf/model.gguf");
  EXPECT_EQ(q->get_int("llama.embedding_length"), cfg.at("hidden_size").get<int64_t>());
  EXPECT_EQ(q->get_int("llama.block_count"), cfg.at("num_hidden_layers").get<int64_t>());
  EXPECT_EQ(q->get_int("general.file_type"), 7);  // LLAMA_FTYPE_MOSTLY_Q8_0
  ASSERT_EQ(q->tensors().size(), f->tensors().size());

  size_t n_q8 = 0;
  for (const GgufTensorInfo& ft : f->tensors()) {
    const GgufTensorInfo* qt = q->find_tensor(ft.name);
    ASSERT_NE(qt, nullptr) << ft.name;
    ASSERT_EQ(qt->shape, ft.shape) << ft.name;
    const Tensor fv = f->tensor(ft.name), qv = q->tensor(ft.name);
    if (ft.shape.size() == 1) {  // norms stay f32, unchanged
      EXPECT_EQ(qt->dtype, DType::F32) << ft.name;
      EXPECT_EQ(tensor_bytes(qv), tensor_bytes(fv)) << ft.name;
      continue;
    }
    ASSERT_EQ(qt->dtype, DType::Q8_0) << ft.name;
    ASSERT_EQ(ft.dtype, DType::F32) << ft.name;
    ++n_q8;
    const int64_t n = fv.numel();
    EXPECT_EQ(qt->nbytes, static_cast<size_t>(n / kQ8_0Block) * sizeof(BlockQ8_0)) << ft.name;
    // value = d * q with |x - value| <= d/2 (rounding) + the f16 rounding of d times |q| <= 127.
    const auto* blocks = static_cast<const BlockQ8_0*>(qv.data());
    const float* ref = fv.data_as<float>();
    double worst = 0;
    for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
      const float d = f16_to_f32(blocks[b].d);
      for (int64_t i = 0; i < kQ8_0Block; ++i) {
        const float x = ref[b * kQ8_0Block + i];
        const double err = std::fabs(static_cast<double>(x) - static_cast<double>(d) * blocks[b].qs[i]);
        worst = std::max(worst, err / (0.5 * d + 127.0 * d / 2048 + 1e-12));
      }
    }
    EXPECT_LE(worst, 1.0) << ft.name << ": dequantized Q8_0 does not match the f32 weights";
  }
  EXPECT_EQ(n_q8, 2u + 7u * 2u);  // token_embd, output + 7 matrices in each of 2 layers
}

// ---- GgufWriter ----------------------------------------------------------------------------------

GgufValue scalar(GgufType t, std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string> v) {
  GgufValue g;
  g.type = t;
  g.scalar = std::move(v);
  return g;
}

GgufValue int_array(GgufType elem, std::vector<int64_t> v) { return GgufValue::int_array(elem, v); }

GgufValue float_array(GgufType elem, std::vector<double> v) { return GgufValue::float_array(elem, v); }

void expect_same_value(const GgufValue& a, const GgufValue& b, const std::string& key) {
  EXPECT_EQ(a.type, b.type) << key;
  EXPECT_EQ(a.scalar, b.scalar) << key;
  if (a.type == GgufType::ARRAY) {
    EXPECT_EQ(a.elem_type, b.elem_type) << key;
    EXPECT_EQ(a.array_size(), b.array_size()) << key;
    EXPECT_EQ(a.array_bytes, b.array_bytes) << key;
    EXPECT_EQ(a.string_ends, b.string_ends) << key;
    if (a.elem_type == GgufType::STRING) {
      EXPECT_EQ(a.strings(), b.strings()) << key;
    } else if (a.elem_type == GgufType::FLOAT32 || a.elem_type == GgufType::FLOAT64) {
      EXPECT_EQ(a.floats(), b.floats()) << key;
    } else {
      EXPECT_EQ(a.ints(), b.ints()) << key;
    }
  }
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 7);
  return v;
}

struct TestTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// A writer holding every value type and tensors of several dtypes and ranks.
GgufWriter all_types_writer(std::vector<GgufKV>& kvs, std::vector<TestTensor>& tensors) {
  kvs = {
      {"t.u8", scalar(GgufType::UINT8, uint64_t{200})},
      {"t.i8", scalar(GgufType::INT8, int64_t{-100})},
      {"t.u16", scalar(GgufType::UINT16, uint64_t{60000})},
      {"t.i16", scalar(GgufType::INT16, int64_t{-30000})},
      {"t.u32", scalar(GgufType::UINT32, uint64_t{4000000000u})},
      {"t.i32", scalar(GgufType::INT32, int64_t{-2000000000})},
      {"t.u64", scalar(GgufType::UINT64, uint64_t{(uint64_t(1) << 63) + 5})},
      {"t.i64", scalar(GgufType::INT64, std::numeric_limits<int64_t>::min())},
      {"t.f32", scalar(GgufType::FLOAT32, 1.5)},
      {"t.f64", scalar(GgufType::FLOAT64, 3.141592653589793)},
      {"t.bool", scalar(GgufType::BOOL, true)},
      {"t.string", scalar(GgufType::STRING, std::string("h\xc3\xa9llo \xe2\x96\x81world"))},
      {"t.empty_string", scalar(GgufType::STRING, std::string())},
      {"a.u8", int_array(GgufType::UINT8, {0, 1, 255})},
      {"a.i8", int_array(GgufType::INT8, {-128, 0, 127})},
      {"a.u16", int_array(GgufType::UINT16, {65535, 7})},
      {"a.i16", int_array(GgufType::INT16, {-32768, 32767})},
      {"a.u32", int_array(GgufType::UINT32, {4294967295, 0})},
      {"a.i32", int_array(GgufType::INT32, {-5, 6, 7})},
      {"a.u64", int_array(GgufType::UINT64, {std::numeric_limits<int64_t>::max(), 1})},
      {"a.i64", int_array(GgufType::INT64, {std::numeric_limits<int64_t>::min(), -1})},
      {"a.bool", int_array(GgufType::BOOL, {1, 0, 1})},
      {"a.f32", float_array(GgufType::FLOAT32, {0.25, -1e-3f, 1e30f})},
      {"a.f64", float_array(GgufType::FLOAT64, {1e-300, -2.5})},
      {"a.empty", int_array(GgufType::INT32, {})},
  };
  kvs.push_back({"a.string", GgufValue::string_array({"<unk>", "", "\xe2\x96\x81the", std::string("nul\0inside", 10)})});

  tensors = {
      {"f32.2d", DType::F32, {3, 5}, pattern(60, 1)},
      {"f16.3d", DType::F16, {2, 3, 4}, pattern(48, 2)},
      {"bf16.1d", DType::BF16, {7}, pattern(14, 3)},
      {"q8_0.2d", DType::Q8_0, {2, 64}, pattern(2 * 2 * 34, 4)},
      {"f32.4d", DType::F32, {2, 1, 3, 2}, pattern(48, 5)},
  };
  GgufWriter w;
  for (const GgufKV& kv : kvs) w.set(kv.key, kv.value);
  for (const TestTensor& t : tensors) w.add_tensor(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
  return w;
}

void expect_round_trip(size_t alignment) {
  std::vector<GgufKV> kvs;
  std::vector<TestTensor> tensors;
  GgufWriter w = all_types_writer(kvs, tensors);
  if (alignment != 32) {
    w.set_alignment(alignment);
    kvs.push_back({"general.alignment", scalar(GgufType::UINT32, uint64_t{alignment})});
  }
  test::TempDir dir("contrail_gguf");
  const std::string path = dir.file("round_trip.gguf");
  w.write(path);
  EXPECT_EQ(test::read_bytes(path), w.serialize());

  const auto g = GgufFile::open(path);
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->alignment(), alignment);
  ASSERT_EQ(g->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(g->metadata()[i].key, kvs[i].key);
    expect_same_value(g->metadata()[i].value, kvs[i].value, kvs[i].key);
  }
  ASSERT_EQ(g->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& info = g->tensors()[i];
    EXPECT_EQ(info.name, tensors[i].name);
    EXPECT_EQ(info.dtype, tensors[i].dtype);
    EXPECT_EQ(info.shape, tensors[i].shape);
    EXPECT_EQ(info.offset % alignment, 0u) << info.name;
    EXPECT_EQ(tensor_bytes(g->tensor(info.name)), tensors[i].bytes) << info.name;
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"round_trip.gguf"});
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensor) { expect_round_trip(32); }
TEST(GgufWriter, RoundTripsWithCustomAlignment) { expect_round_trip(64); }

// Re-writing llama.cpp's own file through GgufWriter reproduces it byte for byte: same header,
// metadata encoding, tensor infos, padding and data layout.
TEST(GgufWriter, ReproducesLlamaCppFileExactly) {
  const std::string path = data_path("models/stories260K/stories260K.gguf");
  CONTRAIL_REQUIRE_DATA(path);
  const auto g = GgufFile::open(path);
  GgufWriter w;
  for (const GgufKV& kv : g->metadata()) w.set(kv.key, kv.value);
  for (const GgufTensorInfo& t : g->tensors()) {
    const Tensor v = g->tensor(t.name);
    w.add_tensor(t.name, t.dtype, t.shape, v.data(), v.nbytes());
  }
  const std::vector<uint8_t> original = test::read_bytes(path);
  const std::vector<uint8_t> image = w.serialize();
  ASSERT_EQ(image.size(), original.size());
  EXPECT_TRUE(image == original);
}

TEST(GgufWriter, AtomicWriteReplacesTheFileAndLeavesNoTempFiles) {
  test::TempDir dir("contrail_gguf");
  const std::string path = dir.file("model.gguf");
  GgufWriter a;
  a.set_string("general.name", "first");
  a.write(path);
  GgufWriter b;
  b.set_string("general.name", "second");
  const std::vector<float> x = {1, 2, 3, 4};
  b.add_tensor("x", DType::F32, {4}, x.data(), 16);
  b.write(path);
  EXPECT_EQ(test::read_bytes(path), b.serialize());
  EXPECT_EQ(GgufFile::open(path)->get_string("general.name"), "second");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.gguf"});
}

TEST(GgufWriter, FailedWriteLeavesTheOldFileIntact) {
  test::TempDir dir("contrail_gguf");
  const std::string path = dir.file("model.gguf");
  GgufWriter old_w;
  old_w.set_string("general.name", "old");
  old_w.write(path);
  const std::vector<uint8_t> old_bytes = test::read_bytes(path);

  // A write that fails half-way: the file size limit stops it after 4 KiB (EFBIG).
  GgufWriter big;
  const std::vector<uint8_t> payload(1 << 16, 0x5a);
  big.add_tensor("big", DType::I8, {1 << 16}, payload.data(), payload.size());
  std::string msg;
  {
    struct rlimit saved {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    msg = error_of([&] { big.write(path); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
  }
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("write"), std::string::npos) << msg;
  EXPECT_EQ(test::read_bytes(path), old_bytes);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.gguf"});

  // A write whose final rename fails (the target is a non-empty directory).
  const std::string dir_target = dir.file("occupied");
  fs::create_directory(dir_target);
  std::ofstream(dir_target + "/keep").put('x');
  msg = error_of([&] { old_w.write(dir_target); });
  EXPECT_NE(msg.find("rename"), std::string::npos) << msg;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"model.gguf", "occupied"}));

  // A writer that cannot serialise never touches the disk.
  GgufWriter bad;
  EXPECT_THROW(bad.set("k", scalar(GgufType::UINT8, uint64_t{300})), InvalidArgument);
  EXPECT_EQ(test::read_bytes(path), old_bytes);
}

TEST(GgufWriter, RejectsInvalidInput) {
  GgufWriter w;
  const auto msg = [](auto&& f) { return error_of(f); };
  EXPECT_NE(msg([&] { w.set("k.u8", scalar(GgufType::UINT8, uint64_t{256})); }).find("does not fit in u8"),
            std::string::npos);
  EXPECT_NE(msg([&] { w.set("k.i8", scalar(GgufType::INT8, int64_t{-129})); }).find("does not fit in i8"),
            std::string::npos);
  EXPECT_NE(msg([&] { w.set("k.str", scalar(GgufType::STRING, 1.0)); }).find("k.str"), std::string::npos);
  EXPECT_NE(msg([&] { w.set("k.arr", int_array(GgufType::ARRAY, {})); }).find("scalar type"), std::string::npos);
  EXPECT_NE(msg([&] { w.set("k.b", int_array(GgufType::BOOL, {2})); }).find("does not fit in bool"), std::string::npos);
  EXPECT_NE(msg([&] { w.set_alignment(48); }).find("power of two"), std::string::npos);
  EXPECT_NE(msg([&] { w.set_u32("general.alignment", 0); }).find("power of two"), std::string::npos);
  const std::vector<uint8_t> data(4096);
  EXPECT_NE(msg([&] { w.add_tensor("t", DType::F32, {4}, data.data(), 15); }).find("needs 16 bytes, got 15"),
            std::string::npos);
  EXPECT_NE(msg([&] { w.add_tensor("q", DType::Q8_0, {33}, data.data(), 34); }).find("block size"), std::string::npos);
  EXPECT_NE(msg([&] { w.add_tensor("z", DType::F32, {0, 4}, data.data(), 0); }).find("dim 0"), std::string::npos);
  EXPECT_NE(msg([&] { w.add_tensor(std::string(65, 'n'), DType::F32, {1}, data.data(), 4); }).find("length 65"),
            std::string::npos);
  EXPECT_NE(msg([&] { w.set_u32("k\tx", 1); }).find("byte 0x09 at position 1"), std::string::npos);
  EXPECT_NE(msg([&] { w.add_tensor("t\n", DType::F32, {1}, data.data(), 4); }).find("control characters"),
            std::string::npos);
  w.add_tensor("t", DType::F32, {4}, data.data(), 16);
  EXPECT_NE(msg([&] { w.add_tensor("t", DType::F32, {4}, data.data(), 16); }).find("duplicate tensor 't'"),
            std::string::npos);
}

TEST(GgufFile, TypedGettersCheckTypesAndNameTheKey) {
  GgufWriter w;
  w.set_string("s", "text");
  w.set_i32("i", -7);
  w.set_f32("f", 0.5f);
  w.set_bool("b", true);
  w.set("big", scalar(GgufType::UINT64, std::numeric_limits<uint64_t>::max()));
  w.set_string_array("sa", {"x", "y"});
  w.set_i32_array("ia", {1, 2, 3});
  w.set_f32_array("fa", {0.5f, 1.5f});
  const std::vector<uint8_t> img = w.serialize();
  const auto g = GgufFile::parse(nullptr, img.data(), img.size(), "getters.gguf");

  EXPECT_EQ(g->get_string("s"), "text");
  EXPECT_EQ(g->get_string_opt("missing"), std::nullopt);
  EXPECT_EQ(g->get_int("i"), -7);
  EXPECT_EQ(g->get_int("missing", 42), 42);
  EXPECT_EQ(g->get_float("f"), 0.5);
  EXPECT_EQ(g->get_float("i"), -7.0);
  EXPECT_EQ(g->get_float("missing", 2.0), 2.0);
  EXPECT_TRUE(g->get_bool("b", false));
  EXPECT_EQ(g->get_string_array("sa"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(g->get_int_array("ia"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(g->get_float_array("fa"), (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ(g->get_float_array("ia"), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(g->find("ia")->array_size(), 3u);
  EXPECT_EQ(g->find("sa")->to_display(), "[\"x\", \"y\"] (2 x string)");
  EXPECT_EQ(g->find("ia")->to_display(2), "[1, 2, ...] (3 x i32)");

  const auto expect_error = [](auto&& f, std::vector<std::string> needles) {
    const std::string m = error_of(f);
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  };
  expect_error([&] { g->get_int("s"); }, {"getters.gguf", "key 's'", "type string", "integer"});
  expect_error([&] { g->get_int("missing"); }, {"getters.gguf", "'missing'", "missing"});
  expect_error([&] { g->get_int("big"); }, {"key 'big'", "18446744073709551615"});
  expect_error([&] { g->get_string("i"); }, {"key 'i'", "type i32"});
  expect_error([&] { g->get_bool("i", false); }, {"key 'i'", "bool"});
  expect_error([&] { g->get_string_array("ia"); }, {"key 'ia'", "array of i32"});
  expect_error([&] { g->get_float_array("sa"); }, {"key 'sa'", "array of string"});
  expect_error([&] { g->get_int_array("s"); }, {"key 's'"});
  expect_error([&] { g->tensor("nope"); }, {"getters.gguf", "tensor 'nope' not found"});
}

// Arrays are kept in the file's encoding and converted on access (a u8 array used to be widened to
// 8 bytes per element): payload size, values through every accessor, and the builders' checks.
TEST(GgufFile, ArraysAreStoredCompactlyAndConvertedOnAccess) {
  GgufWriter w;
  w.set("u8", GgufValue::int_array(GgufType::UINT8, {0, 7, 255}));
  w.set("i8", GgufValue::int_array(GgufType::INT8, {-128, 127}));
  w.set("u16", GgufValue::int_array(GgufType::UINT16, {65535, 1}));
  w.set("i16", GgufValue::int_array(GgufType::INT16, {-32768, 5}));
  w.set("b", GgufValue::int_array(GgufType::BOOL, {1, 0, 1, 1}));
  w.set("u32", GgufValue::int_array(GgufType::UINT32, {4294967295}));
  w.set("u64", GgufValue::int_array(GgufType::UINT64, {std::numeric_limits<int64_t>::max()}));
  w.set("f32", GgufValue::float_array(GgufType::FLOAT32, {0.5, -2}));
  w.set("f64", GgufValue::float_array(GgufType::FLOAT64, {1e-300}));
  w.set("s", GgufValue::string_array({"", "ab", std::string("c\0d", 3), ""}));
  const std::vector<uint8_t> img = w.serialize();
  const auto g = GgufFile::parse(nullptr, img.data(), img.size(), "compact.gguf");

  const std::pair<const char*, size_t> sizes[] = {{"u8", 3},  {"i8", 2},  {"u16", 4}, {"i16", 4}, {"b", 4},
                                                  {"u32", 4}, {"u64", 8}, {"f32", 8}, {"f64", 8}};
  for (const auto& [key, bytes] : sizes) {
    EXPECT_EQ(g->find(key)->array_bytes.size(), bytes) << key;
    EXPECT_LE(g->find(key)->array_payload_bytes(), bytes + 16) << key;
  }
  const GgufValue& s_val = *g->find("s");
  EXPECT_EQ(s_val.array_bytes.size(), 5u);
  EXPECT_EQ(s_val.string_ends, (std::vector<uint64_t>{0, 2, 5, 5}));
  EXPECT_LE(s_val.array_payload_bytes(), 5u + 4u * 8u + 16u);
  EXPECT_EQ(s_val.strings(), (std::vector<std::string>{"", "ab", std::string("c\0d", 3), ""}));
  EXPECT_EQ(s_val.string_at(1), "ab");

  EXPECT_EQ(g->get_int_array("u8"), (std::vector<int64_t>{0, 7, 255}));
  EXPECT_EQ(g->get_int_array("i8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(g->get_int_array("u16"), (std::vector<int64_t>{65535, 1}));
  EXPECT_EQ(g->get_int_array("i16"), (std::vector<int64_t>{-32768, 5}));
  EXPECT_EQ(g->get_int_array("b"), (std::vector<int64_t>{1, 0, 1, 1}));
  EXPECT_EQ(g->get_int_array("u32"), (std::vector<int64_t>{4294967295}));
  EXPECT_EQ(g->get_int_array("u64"), (std::vector<int64_t>{std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(g->get_float_array("f32"), (std::vector<float>{0.5f, -2.f}));
  EXPECT_EQ(g->get_float_array("u8"), (std::vector<float>{0, 7, 255}));
  EXPECT_EQ(g->find("f64")->float_at(0), 1e-300);
  EXPECT_EQ(g->find("i16")->int_at(0), -32768);
  EXPECT_EQ(g->find("b")->to_display(), "[true, false, true, true] (4 x bool)");
  EXPECT_EQ(g->find("i8")->to_display(), "[-128, 127] (2 x i8)");

  // Accessors check the element type and the index; builders check the values.
  EXPECT_THROW(g->find("u8")->float_at(0), InvalidArgument);
  EXPECT_THROW(g->find("f32")->int_at(0), InvalidArgument);
  EXPECT_THROW(g->find("s")->ints(), InvalidArgument);
  EXPECT_THROW(g->find("u8")->int_at(3), InvalidArgument);
  EXPECT_NE(error_of([] { GgufValue::int_array(GgufType::UINT8, {256}); }).find("256 at index 0 does not fit in u8"),
            std::string::npos);
  EXPECT_NE(error_of([] { GgufValue::int_array(GgufType::INT16, {1, -40000}); }).find("-40000 at index 1"),
            std::string::npos);
  EXPECT_THROW(GgufValue::int_array(GgufType::FLOAT32, {1}), InvalidArgument);
  EXPECT_THROW(GgufValue::float_array(GgufType::INT32, {1}), InvalidArgument);
  // The writer refuses what the reader would: a hand-filled bool array holding 2, a ragged array.
  GgufValue bad_bool = GgufValue::int_array(GgufType::BOOL, {1});
  bad_bool.array_bytes[0] = 2;
  EXPECT_NE(error_of([&] { w.set("bad", bad_bool); }).find("does not fit in bool"), std::string::npos);
  GgufValue ragged = GgufValue::int_array(GgufType::UINT16, {1});
  ragged.array_bytes.push_back(0);
  EXPECT_NE(error_of([&] { w.set("bad", ragged); }).find("not a whole number"), std::string::npos);
  GgufValue bad_ends = GgufValue::string_array({"ab"});
  bad_ends.string_ends[0] = 3;
  EXPECT_THROW(w.set("bad", bad_ends), InvalidArgument);
}

// Anonymous resident memory of this process (heap), from /proc/self/status, in bytes. File-backed
// pages (the GGUF mapping itself) are not counted.
size_t rss_anon_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) * 1024;  // "RssAnon:  123 kB"
  return 0;
}

// A GGUF whose metadata holds large u8 / i8 / u16 / i16 / bool / string arrays. Loading used to widen
// every integer element to an int64_t (8x for u8: a 106 MB file took 936 MB) and every string to a
// 32-byte std::string: the memory held must stay near the file size.
TEST(GgufFile, LargeMetadataArraysTakeNoMoreMemoryThanTheFile) {
  if (rss_anon_bytes() == 0) GTEST_SKIP() << "no RssAnon in /proc/self/status";
  test::TempDir dir("contrail_gguf_big");
  const std::string path = dir.file("big_arrays.gguf");
  constexpr uint64_t kU8 = 50u << 20, kSmall = 2u << 20, kStrings = 1u << 20;
  {
    std::ofstream out(path, std::ios::binary);
    const auto put = [&out](auto x) { out.write(reinterpret_cast<const char*>(&x), sizeof(x)); };
    const auto key = [&](const std::string& k) {
      put(uint64_t{k.size()});
      out.write(k.data(), static_cast<std::streamsize>(k.size()));
    };
    out.write("GGUF", 4);
    put(uint32_t{3});
    put(uint64_t{0});  // n_tensors
    put(uint64_t{6});  // n_kv
    std::vector<char> chunk(1 << 20);
    const auto array = [&](const std::string& k, GgufType elem, uint64_t n, size_t elem_bytes, char fill) {
      key(k);
      put(static_cast<uint32_t>(GgufType::ARRAY));
      put(static_cast<uint32_t>(elem));
      put(n);
      std::fill(chunk.begin(), chunk.end(), fill);
      for (uint64_t left = n * elem_bytes; left > 0;) {
        const size_t m = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
        out.write(chunk.data(), static_cast<std::streamsize>(m));
        left -= m;
      }
    };
    array("big.u8", GgufType::UINT8, kU8, 1, 7);
    array("big.i8", GgufType::INT8, kSmall, 1, -3);
    array("big.u16", GgufType::UINT16, kSmall, 2, 1);
    array("big.i16", GgufType::INT16, kSmall, 2, 1);
    array("big.bool", GgufType::BOOL, kSmall, 1, 1);
    array("big.strings", GgufType::STRING, kStrings, 8, 0);  // empty strings: just the lengths
    ASSERT_TRUE(out.good());
  }
  const size_t file_bytes = fs::file_size(path);
  const size_t before = rss_anon_bytes();
  const auto g = GgufFile::open(path);
  const size_t held = rss_anon_bytes() - std::min(before, rss_anon_bytes());
  EXPECT_EQ(g->find("big.u8")->array_size(), kU8);
  EXPECT_EQ(g->find("big.strings")->array_size(), kStrings);
  EXPECT_EQ(g->get_int_array("big.i8").back(), -3);
  EXPECT_EQ(g->get_int_array("big.i16").front(), 0x0101);
  EXPECT_EQ(g->get_int_array("big.bool").size(), kSmall);
  EXPECT_LE(static_cast<double>(held), 1.5 * static_cast<double>(file_bytes))
      << "loading a " << file_bytes << "-byte GGUF took " << held << " bytes of heap";
}

// ---- model loading -------------------------------------------------------------------------------

TEST(GgufModel, Stories260KGgufAndLlama2cGiveTheSameModel) {
  const std::string gguf_path = data_path("models/stories260K/stories260K.gguf");
  const std::string bin_path = data_path("models/stories260K/stories260K.bin");
  CONTRAIL_REQUIRE_DATA(gguf_path);
  CONTRAIL_REQUIRE_DATA(bin_path);
  const ModelFile g = load_model_file(gguf_path);
  const ModelFile b = load_model_file(bin_path);  // finds tok512.bin beside it
  EXPECT_EQ(g.format, ModelFormat::Gguf);
  EXPECT_EQ(b.format, ModelFormat::Llama2c);
  ASSERT_NE(g.gguf, nullptr);
  EXPECT_EQ(b.gguf, nullptr);

  const ModelConfig& gc = g.config;
  const ModelConfig& bc = b.config;
  EXPECT_EQ(gc.arch, "llama");
  EXPECT_EQ(bc.arch, "llama");
  EXPECT_EQ(gc.n_vocab, 512);
  EXPECT_EQ(gc.n_vocab, bc.n_vocab);
  EXPECT_EQ(gc.n_embd, 64);
  EXPECT_EQ(gc.n_embd, bc.n_embd);
  EXPECT_EQ(gc.n_layer, 5);
  EXPECT_EQ(gc.n_layer, bc.n_layer);
  EXPECT_EQ(gc.n_head, 8);
  EXPECT_EQ(gc.n_head, bc.n_head);
  EXPECT_EQ(gc.n_head_kv, 4);
  EXPECT_EQ(gc.n_head_kv, bc.n_head_kv);
  EXPECT_EQ(gc.head_dim, 8);
  EXPECT_EQ(gc.head_dim, bc.head_dim);
  EXPECT_EQ(gc.n_ff, 172);
  EXPECT_EQ(gc.n_ff, bc.n_ff);
  EXPECT_EQ(gc.norm_eps, bc.norm_eps);
  EXPECT_EQ(gc.rope.n_rot, bc.rope.n_rot);
  EXPECT_EQ(gc.rope.freq_base, bc.rope.freq_base);
  EXPECT_EQ(gc.rope.freq_scale, bc.rope.freq_scale);
  EXPECT_EQ(gc.rope.mode, bc.rope.mode);
  // Where the converter chose differently: llama.context_length 2048 vs run.c's seq_len 512, and
  // the shared classifier written out as a separate output.weight.
  EXPECT_EQ(gc.n_ctx_train, 2048);
  EXPECT_EQ(bc.n_ctx_train, 512);
  EXPECT_TRUE(bc.tied_embeddings);
  EXPECT_FALSE(gc.tied_embeddings);
  EXPECT_EQ(b.find("output.weight"), nullptr);
  EXPECT_EQ(tensor_bytes(g.tensor("output.weight")), tensor_bytes(b.tensor("token_embd.weight")));

  // Every llama2.c weight has the same name, shape and f32 values in the GGUF.
  EXPECT_EQ(b.tensors.size(), 2u + 9u * 5u);
  for (const auto& [name, bt] : b.tensors) {
    const Tensor* gt = g.find(name);
    ASSERT_NE(gt, nullptr) << name;
    EXPECT_EQ(gt->shape(), bt.shape()) << name;
    EXPECT_EQ(gt->dtype(), DType::F32) << name;
    EXPECT_EQ(bt.dtype(), DType::F32) << name;
    EXPECT_EQ(tensor_bytes(*gt), tensor_bytes(bt)) << name;
  }
  const Tensor& q0 = b.tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q0.data_as<float>()[5], g.tensor("blk.0.attn_q.weight").data_as<float>()[5]);
  // Views, not copies: the GGUF model's tensors point into the GGUF mapping.
  EXPECT_EQ(g.tensor("token_embd.weight").data(), g.gguf->tensor("token_embd.weight").data());
  EXPECT_NE(b.tensor("token_embd.weight").owner(), nullptr);

  EXPECT_EQ(g.vocab.tokens.size(), 512u);
  EXPECT_EQ(b.vocab.tokens.size(), 512u);
  EXPECT_FALSE(g.metadata.empty());
  EXPECT_FALSE(b.metadata.empty());
  EXPECT_NE(error_of([&] { g.tensor("blk.9.attn_q.weight"); }).find("blk.9.attn_q.weight"), std::string::npos);
}

TEST(GgufModel, TinyRandomLlamaConfigMatchesHfConfig) {
  const std::string dir = data_path("golden/tiny-random/llama");
  CONTRAIL_REQUIRE_DATA(dir + "/gguf/model.gguf");
  const auto cfg = read_json(dir + "/hf/config.json");
  const ModelFile m = load_gguf_model(dir + "/gguf/model.gguf");
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.n_vocab, cfg.at("vocab_size").get<int64_t>());
  EXPECT_EQ(c.n_embd, cfg.at("hidden_size").get<int64_t>());
  EXPECT_EQ(c.n_layer, cfg.at("num_hidden_layers").get<int64_t>());
  EXPECT_EQ(c.n_head, cfg.at("num_attention_heads").get<int64_t>());
  EXPECT_EQ(c.n_head_kv, cfg.at("num_key_value_heads").get<int64_t>());
  EXPECT_EQ(c.head_dim, cfg.at("head_dim").get<int64_t>());
  EXPECT_EQ(c.n_ff, cfg.at("intermediate_size").get<int64_t>());
  EXPECT_EQ(c.n_ctx_train, cfg.at("max_position_embeddings").get<int64_t>());
  EXPECT_EQ(c.rope.freq_base, cfg.at("rope_theta").get<float>());
  EXPECT_EQ(c.rope.n_rot, c.head_dim);
  EXPECT_EQ(c.rope.mode, ops::RopeMode::Normal);
  EXPECT_EQ(c.norm_eps, cfg.at("rms_norm_eps").get<float>());
  EXPECT_EQ(c.tied_embeddings, cfg.at("tie_word_embeddings").get<bool>());
  EXPECT_EQ(m.tensor("token_embd.weight").dtype(), DType::F16);
  EXPECT_EQ(m.tensors.size(), 3u + 9u * 2u);
}

TEST(GgufModel, LoadsQ8_0Weights) {
  const std::string path = data_path("golden/tiny-random/llama_quant/gguf/model-Q8_0.gguf");
  CONTRAIL_REQUIRE_DATA(path);
  const ModelFile m = load_model_file(path);
  EXPECT_EQ(m.config.n_embd, 256);
  EXPECT_EQ(m.config.head_dim, 32);
  EXPECT_EQ(m.tensor("blk.1.ffn_down.weight").dtype(), DType::Q8_0);
  EXPECT_EQ(m.tensor("blk.1.ffn_down.weight").shape(), (std::vector<int64_t>{256, 512}));
  EXPECT_EQ(m.tensor("blk.1.ffn_norm.weight").dtype(), DType::F32);
}

TEST(GgufModel, RejectsWhatItCannotRunYet) {
  const std::string q4 = data_path("golden/tiny-random/llama_quant/gguf/model-Q4_0.gguf");
  CONTRAIL_REQUIRE_DATA(q4);
  const std::string msg = error_of([&] { load_model_file(q4); });
  EXPECT_NE(msg.find(q4), std::string::npos) << msg;
  EXPECT_NE(msg.find("q4_0, which is not supported yet"), std::string::npos) << msg;
}

TEST(Llama2cModel, FindsTheTokenizerBesideTheModel) {
  const std::string bin = data_path("models/stories260K/stories260K.bin");
  const std::string tok = data_path("models/stories260K/tok512.bin");
  CONTRAIL_REQUIRE_DATA(bin);
  CONTRAIL_REQUIRE_DATA(tok);
  test::TempDir dir("contrail_gguf");
  fs::create_symlink(bin, dir.file("model.bin"));
  std::string msg = error_of([&] { load_model_file(dir.file("model.bin")); });
  EXPECT_NE(msg.find("neither tokenizer.bin nor a tok*.bin"), std::string::npos) << msg;

  fs::create_symlink(tok, dir.file("tok512.bin"));
  EXPECT_EQ(load_model_file(dir.file("model.bin")).vocab.tokens.size(), 512u);

  fs::create_symlink(tok, dir.file("tok_other.bin"));
  msg = error_of([&] { load_model_file(dir.file("model.bin")); });
  EXPECT_NE(msg.find("several candidates"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tok_other.bin"), std::string::npos) << msg;

  LoadOptions opts;
  opts.tokenizer_path = tok;
  EXPECT_EQ(load_model_file(dir.file("model.bin"), opts).config.n_vocab, 512);
  fs::create_symlink(tok, dir.file("tokenizer.bin"));  // preferred over tok*.bin
  EXPECT_EQ(load_model_file(dir.file("model.bin")).vocab.tokens.size(), 512u);
}

// LoadOptions::tokenizer_path is for llama2.c checkpoints: with a GGUF or a Hugging Face directory,
// which carry their own tokenizer, it used to be silently ignored.
TEST(ModelFile, TokenizerPathIsRejectedForFormatsWithTheirOwnTokenizer) {
  const std::string gguf = data_path("models/stories260K/stories260K.gguf");
  const std::string tok = data_path("models/stories260K/tok512.bin");
  const std::string hf = data_path("golden/tiny-random/llama/hf");
  CONTRAIL_REQUIRE_DATA(gguf);
  CONTRAIL_REQUIRE_DATA(tok);
  CONTRAIL_REQUIRE_DATA(hf + "/config.json");
  LoadOptions opts;
  opts.tokenizer_path = tok;
  for (const std::string& path : {gguf, hf}) {
    const std::string msg = error_of([&] { load_model_file(path, opts); });
    for (const std::string& want : {path, tok, std::string("llama2.c checkpoints only")})
      EXPECT_NE(msg.find(want), std::string::npos) << "'" << want << "' not in: " << msg;
    EXPECT_THROW(load_model_file(path, opts), InvalidArgument);
    EXPECT_THROW(load_model_vocab(path, opts), InvalidArgument);
  }
}

// The vocabulary alone: a vocab-only GGUF (llama.cpp's ggml-vocab-*.gguf: tokenizer keys, no
// tensors), a GGUF model, a Hugging Face directory and a llama2.c checkpoint.
TEST(ModelFile, LoadModelVocabReadsOnlyTheTokenizer) {
  const std::string vocab_only = data_path("golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf");
  const std::string gguf = data_path("models/stories260K/stories260K.gguf");
  const std::string bin = data_path("models/stories260K/stories260K.bin");
  const std::string hf = data_path("golden/tiny-random/llama/hf");
  CONTRAIL_REQUIRE_DATA(vocab_only);
  CONTRAIL_REQUIRE_DATA(gguf);
  CONTRAIL_REQUIRE_DATA(bin);
  CONTRAIL_REQUIRE_DATA(hf + "/config.json");
  EXPECT_TRUE(GgufFile::open(vocab_only)->tensors().empty());
  EXPECT_THROW(load_model_file(vocab_only), FormatError);  // no weights to run
  EXPECT_EQ(load_model_vocab(vocab_only).tokens.size(), 32000u);
  EXPECT_EQ(load_model_vocab(gguf).tokens, load_model_file(gguf).vocab.tokens);
  EXPECT_EQ(load_model_vocab(bin).tokens, load_model_file(bin).vocab.tokens);
  EXPECT_EQ(load_model_vocab(hf).tokens, load_model_file(hf).vocab.tokens);
  // A tokenizer-only Hugging Face directory (no config.json, no weights) is enough.
  test::TempDir dir("contrail_vocab");
  for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
    fs::create_symlink(fs::path(hf) / f, dir.file(f));
  EXPECT_EQ(load_model_vocab(dir.path()).tokens.size(), load_model_file(hf).vocab.tokens.size());
}

}  // namespace
}  // namespace contrail
