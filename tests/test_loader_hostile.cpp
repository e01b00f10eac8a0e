// Hostile and malformed model files: truncations, hand-made corruptions of every header field and
// deterministic random mutations, fed to GgufFile::parse, the llama2.c header parser and the load
// paths. Every case must either load or throw contrail::FormatError naming the file and the field;
// nothing may crash or read out of bounds (this suite runs under ASan/UBSan in CI).
//
// Hand-made images are encoded here byte by byte (not with GgufWriter), so the reader is checked
// against an independent encoding of the spec.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <random>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "contrail/model/safetensors.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "contrail/tokenizer/vocab.h"
#include "model/loader_detail.h"
#include "test_util.h"

namespace contrail {
namespace {

namespace fs = std::filesystem;


// Little-endian GGUF encoder for hand-made images.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& put(T x) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &x, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
    return *this;
  }
  Bytes& u8(uint8_t x) { return put(x); }
  Bytes& u32(uint32_t x) { return put(x); }
  Bytes& u64(uint64_t x) { return put(x); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  Bytes& pad(size_t a) { return zeros((a - b.size() % a) % a); }
  // Header: magic, version, n_tensors, n_kv.
  static Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    Bytes x;
    x.b = {'G', 'G', 'U', 'F'};
    return x.u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& kv_string(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& tensor_info(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
};

constexpr uint32_t kF32 = 0, kQ8_0 = 8;
constexpr uint64_t kHuge = uint64_t(1) << 60;

// A valid image with one KV and two f32 tensors ((2, 4) at offset 0 and (8) at offset 32).
std::vector<uint8_t> valid_image() {
  Bytes x = Bytes::header(2, 1).kv_string("general.architecture", "llama");
  x.tensor_info("a", {4, 2}, kF32, 0).tensor_info("b", {8}, kF32, 32).pad(32).zeros(64);
  return x.b;
}

// Parses `img` and requires a FormatError containing "hostile.gguf" and every needle.
void expect_rejected(const std::vector<uint8_t>& img, const std::vector<std::string>& needles) {
  try {
    GgufFile::parse(nullptr, img.data(), img.size(), "hostile.gguf");
    ADD_FAILURE() << "accepted a malformed image (expected: " << (needles.empty() ? "" : needles[0]) << ")";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("hostile.gguf: ", 0), 0u) << m;
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(HostileGguf, BaselineImageIsValid) {
  const std::vector<uint8_t> img = valid_image();
  const auto g = GgufFile::parse(nullptr, img.data(), img.size(), "hostile.gguf");
  ASSERT_EQ(g->tensors().size(), 2u);
  EXPECT_EQ(g->tensors()[1].shape, std::vector<int64_t>{8});
  EXPECT_EQ(g->tensors()[1].offset, g->data_offset() + 32);
}

TEST(HostileGguf, Header) {
  std::vector<uint8_t> img = valid_image();
  std::memcpy(img.data(), "GGML", 4);
  expect_rejected(img, {"bad magic \"GGML\"", "not a GGUF file"});
  expect_rejected({'G', 'G'}, {"truncated while reading magic", "file size 2"});
  expect_rejected(Bytes::header(0, 0, 1).b, {"version 1 is not supported"});
  expect_rejected(Bytes::header(0, 0, 99).b, {"version 99 is not supported"});
  expect_rejected(Bytes::header(0, 0, 0x03000000).b, {"big-endian"});
  expect_rejected(Bytes::header(kHuge, 0).b, {"n_tensors 1152921504606846976 cannot fit"});
  expect_rejected(Bytes::header(0, std::numeric_limits<uint64_t>::max()).b, {"n_kv 18446744073709551615 cannot fit"});
  expect_rejected(Bytes::header(1, 0).zeros(31).b, {"n_tensors 1 cannot fit"});
}

// Metadata keys cost far more memory than their minimum encoding (~200 bytes for 14): a file of
// a million tiny keys (20 MB) used to take ~230 MB to parse. Their count is capped.
TEST(HostileGguf, MetadataKeyCountIsCapped) {
  const auto tiny_keys = [](uint64_t n) {
    Bytes x = Bytes::header(0, n);
    for (uint64_t i = 0; i < n; ++i) x.str(fmt::format("k{:06}", i)).u32(0).u8(1);
    return x.b;
  };
  const std::vector<uint8_t> ok = tiny_keys(uint64_t(1) << 16);
  EXPECT_EQ(GgufFile::parse(nullptr, ok.data(), ok.size(), "ok.gguf")->metadata().size(), size_t(1) << 16);
  expect_rejected(tiny_keys((uint64_t(1) << 16) + 1), {"n_kv 65537 exceeds the supported maximum of 65536"});
}

TEST(HostileGguf, Strings) {
  expect_rejected(Bytes::header(0, 1).u64(uint64_t(1) << 62).zeros(16).b, {"key #0 name length 4611686018427387904",
                                                                           "exceeds the 16 bytes left"});
  expect_rejected(Bytes::header(0, 1).str(std::string(70000, 'k')).u32(4).u32(1).b,
                  {"key #0 name length 70000 exceeds the limit of 65535"});
  expect_rejected(Bytes::header(0, 1).str("general.name").u32(8).u64(kHuge).zeros(8).b,
                  {"value of key 'general.name' length 1152921504606846976"});
  expect_rejected(Bytes::header(1, 0).str(std::string(65, 't')).u32(1).u64(1).u32(kF32).u64(0).b,
                  {"tensor #0 name length 65 exceeds the limit of 64"});
  expect_rejected(Bytes::header(0, 1).str("gen\x01ral").u32(4).u32(1).b,
                  {"key #0 name \"gen\\x01ral\" has byte 0x01 at position 3", "printable ASCII"});
  expect_rejected(Bytes::header(0, 1).str("caf\xc3\xa9").u32(4).u32(1).b, {"key #0 name", "byte 0xc3 at position 3"});
  expect_rejected(Bytes::header(1, 0).str("w\n").u32(1).u64(1).u32(kF32).u64(0).b,
                  {"tensor #0 name \"w\\x0a\" has byte 0x0a", "control characters"});
}

TEST(HostileGguf, Values) {
  const auto kv = [](uint32_t type) { return Bytes::header(0, 1).str("k").u32(type); };
  expect_rejected(kv(13).zeros(8).b, {"key 'k' has unknown value type 13"});
  expect_rejected(kv(7).u8(2).b, {"value of key 'k'", "bool with byte value 2"});
  expect_rejected(kv(9).u32(9).u64(1).zeros(16).b, {"key 'k'", "nested arrays"});
  expect_rejected(kv(9).u32(77).u64(1).zeros(16).b, {"key 'k' is an array of unknown value type 77"});
  expect_rejected(kv(9).u32(8).u64(kHuge).zeros(64).b, {"key 'k'", "array of 1152921504606846976 string values"});
  expect_rejected(kv(9).u32(4).u64(uint64_t(1) << 61).zeros(64).b, {"key 'k'", "array of 2305843009213693952 u32"});
  expect_rejected(kv(9).u32(8).u64(2).str("ok").u64(1000).zeros(8).b, {"value of key 'k' array element length 1000"});
  expect_rejected(kv(9).u32(10).u64(1).u64(uint64_t(1) << 63).b, {"array element 9223372036854775808 exceeds"});
  expect_rejected(kv(6).u8(0).b, {"truncated while reading value of key 'k'"});
  expect_rejected(Bytes::header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, {"duplicate key 'k'"});
}

TEST(HostileGguf, Alignment) {
  const auto with_alignment = [](uint32_t a) {
    return Bytes::header(1, 1).kv_u32("general.alignment", a).tensor_info("a", {4}, kF32, 0).pad(64).zeros(16).b;
  };
  expect_rejected(with_alignment(0), {"general.alignment 0 is not a power of two"});
  expect_rejected(with_alignment(3), {"general.alignment 3 is not a power of two"});
  expect_rejected(Bytes::header(0, 1).kv_string("general.alignment", "32").b,
                  {"'general.alignment' has type string, expected an integer"});
  // A valid custom alignment moves the data section and constrains the offsets.
  const std::vector<uint8_t> ok = with_alignment(64);
  EXPECT_EQ(GgufFile::parse(nullptr, ok.data(), ok.size(), "ok.gguf")->data_offset(), 128u);  // 90 bytes of header
  expect_rejected(Bytes::header(1, 1).kv_u32("general.alignment", 64).tensor_info("a", {4}, kF32, 32).pad(64).zeros(96).b,
                  {"tensor 'a' data offset 32 is misaligned", "alignment 64"});
  // Alignment 1 is a power of two, but f32 data must still start on a multiple of 4.
  Bytes unaligned = Bytes::header(1, 1).kv_u32("general.alignment", 1).tensor_info("a", {4}, kF32, 0);
  if (unaligned.b.size() % 4 == 0) unaligned.zeros(1);
  expect_rejected(unaligned.zeros(16).b, {"tensor 'a' (f32) data offset", "not a multiple of its element alignment 4"});
}

TEST(HostileGguf, TensorInfos) {
  const auto one = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    return Bytes::header(1, 0).tensor_info("w", std::move(ne), type, offset).pad(32).zeros(64).b;
  };
  expect_rejected(one({4}, 99, 0), {"tensor 'w' has unknown tensor type 99"});
  expect_rejected(one({256}, 16, 0), {"tensor 'w' has unknown tensor type 16"});  // IQ2_XXS: unknown here
  expect_rejected(one({1, 1, 1, 1, 1}, kF32, 0), {"tensor 'w' has n_dims 5"});
  expect_rejected(one({}, kF32, 0), {"tensor 'w' has n_dims 0"});
  expect_rejected(one({4, 0}, kF32, 0), {"tensor 'w' dim 1 is 0"});
  expect_rejected(one({std::numeric_limits<uint64_t>::max()}, kF32, 0), {"tensor 'w' dim 0 is 18446744073709551615"});
  expect_rejected(one({uint64_t(1) << 40}, kF32, 0), {"tensor 'w' dim 0 is 1099511627776", "2^40"});
  const uint64_t big = (uint64_t(1) << 40) - 1;
  expect_rejected(one({big, big}, kF32, 0), {"tensor 'w' element count overflows"});
  expect_rejected(one({(uint64_t(1) << 39), (uint64_t(1) << 23)}, 28, 0), {"tensor 'w' byte size overflows"});
  expect_rejected(one({33}, kQ8_0, 0), {"tensor 'w' row of 33 elements is not a multiple of the q8_0 block size 32"});
  expect_rejected(one({4}, kF32, 4), {"tensor 'w' data offset 4 is misaligned"});
  expect_rejected(one({4}, kF32, 64), {"tensor 'w' data [offset 64 + 64, 16 bytes] extends beyond the file size 128"});
  expect_rejected(one({4}, kF32, uint64_t(0) - 32), {"tensor 'w'", "extends beyond the file size"});
  expect_rejected(one({1024}, kF32, 0), {"tensor 'w' data", "4096 bytes] extends beyond the file size"});
  expect_rejected(Bytes::header(2, 0).tensor_info("w", {4}, kF32, 0).tensor_info("w", {4}, kF32, 32).pad(32).zeros(64).b,
                  {"duplicate tensor name 'w'"});
  expect_rejected(Bytes::header(1, 0).tensor_info("w", {4}, kF32, 0).b, {"extends beyond the file size"});
}

// ---- truncation ----------------------------------------------------------------------------------

// A small model-shaped GGUF written with GgufWriter: metadata of several types, a string array and
// tensors of three dtypes.
std::vector<uint8_t> small_writer_image(size_t* data_end) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  const std::vector<uint8_t> data(34 * 4, 0x11);
  w.add_tensor("n", DType::F32, {8}, data.data(), 32);
  w.add_tensor("h", DType::F16, {2, 3}, data.data(), 12);
  w.add_tensor("q", DType::Q8_0, {2, 64}, data.data(), 34 * 4);
  std::vector<uint8_t> img = w.serialize();
  const auto g = GgufFile::parse(nullptr, img.data(), img.size(), "small");
  *data_end = g->tensors().back().offset + g->tensors().back().nbytes;
  return img;
}

TEST(HostileGguf, EveryTruncationOfASmallFileIsRejected) {
  size_t data_end = 0;
  const std::vector<uint8_t> full = small_writer_image(&data_end);
  for (size_t len = 0; len < full.size(); ++len) {
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    try {
      GgufFile::parse(nullptr, prefix.data(), prefix.size(), "trunc.gguf");
      EXPECT_GE(len, data_end) << "a prefix missing tensor data was accepted";
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_LT(len, data_end) << m;
      EXPECT_EQ(m.rfind("trunc.gguf: ", 0), 0u) << m;
      EXPECT_NE(m.find(fmt::format("file size {}", len)), std::string::npos) << m;
    }
  }
}

// ---- llama2.c ------------------------------------------------------------------------------------

std::vector<uint8_t> llama2c_header(std::vector<int32_t> fields) {
  Bytes x;
  for (int32_t f : fields) x.put(f);
  return x.b;
}

void expect_llama2c_rejected(const std::vector<uint8_t>& img, const std::vector<std::string>& needles) {
  try {
    detail::parse_llama2c_header(img.data(), img.size(), "hostile.bin");
    ADD_FAILURE() << "accepted a malformed llama2.c header (expected: " << needles[0] << ")";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("hostile.bin: ", 0), 0u) << m;
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(HostileLlama2c, HeaderFields) {
  // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
  expect_llama2c_rejected(llama2c_header({-64, 172, 5, 8, 4, 512, 512}), {"field dim is -64"});
  expect_llama2c_rejected(llama2c_header({64, 0, 5, 8, 4, 512, 512}), {"field hidden_dim is 0"});
  expect_llama2c_rejected(llama2c_header({64, 172, 1 << 30, 8, 4, 512, 512}), {"field n_layers is 1073741824"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, -8, 4, 512, 512}), {"field n_heads is -8"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 8, 0, 512, 512}), {"field n_kv_heads is 0"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 8, 4, 0, 512}), {"field vocab_size is 0"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 8, 4, std::numeric_limits<int32_t>::min(), 512}),
                          {"field vocab_size is -2147483648"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 8, 4, 512, 0}), {"field seq_len is 0"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 7, 7, 512, 512}), {"n_heads 7 does not divide dim 64"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5, 8, 3, 512, 512}), {"n_kv_heads 3 does not divide n_heads 8"});
  expect_llama2c_rejected(llama2c_header({24, 172, 5, 8, 8, 512, 512}), {"dim/n_heads = 3 is odd"});
  expect_llama2c_rejected(llama2c_header({0x616b3432, 2, 0, 0, 0, 0, 0}), {"export version 2", "not supported"});
  expect_llama2c_rejected(llama2c_header({64, 172, 5}), {"truncated while reading n_heads", "file size 12"});
  // All fields at their limit: the implied size (far beyond 2^64) is reported exactly.
  const int32_t m = 1 << 24;
  expect_llama2c_rejected(llama2c_header({m, m, m, 2, 2, m, m}),
                          {"truncated: file size 28", "implies 132226265460999807041564 bytes"});
}

// A valid tiny checkpoint: dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab 4 (negative:
// separate classifier), seq_len 3.
std::vector<uint8_t> tiny_llama2c() {
  std::vector<uint8_t> img = llama2c_header({8, 12, 1, 2, 1, -4, 3});
  // floats: emb 32, rms_att 8, wq 64, wk 32, wv 32, wo 64, rms_ffn 8, w1/w2/w3 3*96, rms_final 8,
  // freq_cis 2 * 3*2, wcls 32 = 580 floats
  const size_t floats = 32 + 8 + 64 + 32 + 32 + 64 + 8 + 288 + 8 + 12 + 32;
  img.resize(img.size() + floats * 4, 0);
  return img;
}

TEST(HostileLlama2c, FileSizeMustMatchTheHeader) {
  std::vector<uint8_t> img = tiny_llama2c();
  const auto h = detail::parse_llama2c_header(img.data(), img.size(), "tiny.bin");
  EXPECT_EQ(h.file_bytes, img.size());
  EXPECT_FALSE(h.shared_classifier);
  EXPECT_EQ(h.vocab_size, 4);
  EXPECT_EQ(img.size(), 28u + 580u * 4u);
  img.push_back(0);
  expect_llama2c_rejected(img, {"file size 2349 exceeds the 2348 bytes its header", "separate classifier"});
  img.resize(2344);
  expect_llama2c_rejected(img, {"truncated: file size 2344", "implies 2348 bytes"});
}

TEST(HostileLlama2c, SampledTruncationsOfStories260K) {
  const std::string path = test::data_path("models/stories260K/stories260K.bin");
  CONTRAIL_REQUIRE_DATA(path);
  const std::vector<uint8_t> full = test::read_bytes(path);
  const size_t n = full.size();
  std::vector<size_t> lens = {0, 1, 4, 27, 28, 29, 1000, n / 2, n - 4, n - 1};
  for (size_t i = 1; i < 24; ++i) lens.push_back(n * i / 24 + i);
  for (size_t len : lens) {
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    const std::string size_text = fmt::format("file size {}", len);
    if (len < detail::Llama2cHeader::kBytes)
      expect_llama2c_rejected(prefix, {"truncated while reading", size_text});
    else
      expect_llama2c_rejected(prefix, {"truncated: " + size_text, fmt::format("implies {} bytes", n)});
  }
  // Through the whole load path (files on disk; the header is checked before any tokenizer).
  test::TempDir dir("contrail_hostile");
  for (size_t len : {size_t(0), size_t(27), size_t(29), n / 3, n - 1}) {
    const std::string p =
        dir.write(fmt::format("cut{}.bin", len), std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)));
    try {
      load_model_file(p);
      ADD_FAILURE() << "accepted a truncated checkpoint of " << len << " bytes";
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(p), std::string::npos) << m;
      EXPECT_NE(m.find(fmt::format("file size {}", len)), std::string::npos) << m;
    }
  }
}

// ---- GGUF model layer ----------------------------------------------------------------------------

using TensorPlan = std::map<std::string, std::pair<DType, std::vector<int64_t>>>;

// A tiny llama model: n_embd 32, 4 heads of 8 (2 kv heads), n_ff 64, 2 layers, vocab 8.
// `skip_key` is left out; `edit` may change the tensor plan; `keys` may override metadata.
std::vector<uint8_t> tiny_model(const std::string& skip_key = "", const std::function<void(TensorPlan&)>& edit = {},
                                const std::function<void(GgufWriter&)>& keys = {}) {
  GgufWriter w;
  const auto u32 = [&](const std::string& k, uint32_t v) {
    if (k != skip_key) w.set_u32(k, v);
  };
  w.set_string("general.architecture", "llama");
  u32("llama.context_length", 64);
  u32("llama.embedding_length", 32);
  u32("llama.block_count", 2);
  u32("llama.feed_forward_length", 64);
  u32("llama.attention.head_count", 4);
  u32("llama.attention.head_count_kv", 2);
  if (skip_key != "llama.attention.layer_norm_rms_epsilon") w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"});
  if (keys) keys(w);
  TensorPlan plan = {{"token_embd.weight", {DType::F16, {8, 32}}},
                     {"output_norm.weight", {DType::F32, {32}}},
                     {"output.weight", {DType::Q8_0, {8, 32}}}};
  for (int i = 0; i < 2; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    plan[p + "attn_norm.weight"] = {DType::F32, {32}};
    plan[p + "attn_q.weight"] = {DType::Q8_0, {32, 32}};
    plan[p + "attn_k.weight"] = {DType::F32, {16, 32}};
    plan[p + "attn_v.weight"] = {DType::BF16, {16, 32}};
    plan[p + "attn_output.weight"] = {DType::F16, {32, 32}};
    plan[p + "ffn_norm.weight"] = {DType::F32, {32}};
    plan[p + "ffn_gate.weight"] = {DType::Q8_0, {64, 32}};
    plan[p + "ffn_up.weight"] = {DType::F32, {64, 32}};
    plan[p + "ffn_down.weight"] = {DType::F16, {32, 64}};
  }
  if (edit) edit(plan);
  for (const auto& [name, spec] : plan) {
    const size_t nbytes = Tensor(spec.first, spec.second, nullptr).nbytes();
    const std::vector<uint8_t> zeros(nbytes, 0);
    w.add_tensor(name, spec.first, spec.second, zeros.data(), nbytes);
  }
  return w.serialize();
}

TEST(HostileGgufModel, BaselineTinyModelIsValid) {
  const std::vector<uint8_t> img = tiny_model();
  ModelFile m;
  detail::read_gguf_weights(GgufFile::parse(nullptr, img.data(), img.size(), "tiny.gguf"), m);
  EXPECT_EQ(m.config.n_vocab, 8);
  EXPECT_EQ(m.config.head_dim, 8);
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.tensors.size(), 3u + 18u);
}

// Loads `img` from a file through load_gguf_model; requires a FormatError naming the file + needles.
void expect_model_rejected(const std::vector<uint8_t>& img, const std::vector<std::string>& needles) {
  test::TempDir dir("contrail_hostile");
  const std::string path = dir.write("model.gguf", img);
  try {
    load_gguf_model(path);
    ADD_FAILURE() << "accepted an invalid model (expected: " << needles[0] << ")";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(HostileGgufModel, ConfigKeys) {
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_string("general.architecture", "mamba"); }),
                        {"unsupported architecture 'mamba'"});
  expect_model_rejected(tiny_model("llama.block_count"), {"required key 'llama.block_count' is missing"});
  expect_model_rejected(tiny_model("llama.attention.layer_norm_rms_epsilon"),
                        {"'llama.attention.layer_norm_rms_epsilon' is missing"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_string("llama.embedding_length", "32"); }),
                        {"key 'llama.embedding_length' has type string, expected an integer"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.attention.head_count_kv", 3); }),
                        {"n_head_kv 3 does not divide n_head 4"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.attention.head_count", 0); }),
                        {"n_head is 0"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.block_count", 4000000000u); }),
                        {"n_layer is 4000000000"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.attention.key_length", 7); }),
                        {"head_dim 7 is odd"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.rope.dimension_count", 10); }),
                        {"rope n_rot 10"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_f32("llama.rope.freq_base", -1.f); }),
                        {"rope freq_base is -1"});
  expect_model_rejected(
      tiny_model("", {}, [](GgufWriter& w) { w.set_string("llama.rope.scaling.type", "yarn"); }),
      {"llama.rope.scaling.type 'yarn' is not supported yet"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_u32("llama.attention.value_length", 16); }),
                        {"value_length 16 differs from the key length 8"});
  expect_model_rejected(tiny_model("", {}, [](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.tokens", {1}); }),
                        {"'tokenizer.ggml.tokens' is not an array of strings"});
}

TEST(HostileGgufModel, Tensors) {
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p.erase("blk.1.ffn_up.weight"); }),
                        {"required tensor 'blk.1.ffn_up.weight' (64, 32) is missing"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["blk.0.attn_k.weight"].second = {32, 32}; }),
                        {"tensor 'blk.0.attn_k.weight' has shape (32, 32), expected (16, 32)"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["blk.0.ffn_down.weight"].second = {64, 32}; }),
                        {"tensor 'blk.0.ffn_down.weight' has shape (64, 32), expected (32, 64)"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["blk.1.attn_norm.weight"].first = DType::F16; }),
                        {"tensor 'blk.1.attn_norm.weight' has dtype f16, but norm weights must be f32"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["blk.0.attn_q.weight"].first = DType::Q4_0; }),
                        {"tensor 'blk.0.attn_q.weight' has dtype q4_0, which is not supported yet"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["token_embd.weight"].first = DType::I32; }),
                        {"tensor 'token_embd.weight' has dtype i32, which is not supported yet"});
  // rope_freqs.weight (Llama 3 rope scaling) is optional, but must have n_rot / 2 = 4 factors.
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["rope_freqs.weight"] = {DType::F32, {5}}; }),
                        {"tensor 'rope_freqs.weight' has shape (5), expected (4)"});
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["blk.2.attn_q.weight"] = {DType::F32, {32, 32}}; }),
                        {"unexpected tensor 'blk.2.attn_q.weight'"});
  // The vocabulary size comes from the token list; the embedding must agree with it.
  expect_model_rejected(tiny_model("", [](TensorPlan& p) { p["token_embd.weight"].second = {9, 32}; }),
                        {"tensor 'token_embd.weight' has shape (9, 32), expected (8, 32)"});
  // Without output.weight the embeddings are tied.
  const std::vector<uint8_t> tied = tiny_model("", [](TensorPlan& p) { p.erase("output.weight"); });
  ModelFile m;
  detail::read_gguf_weights(GgufFile::parse(nullptr, tied.data(), tied.size(), "tied.gguf"), m);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(m.find("output.weight"), nullptr);
}

// ---- deterministic random mutations --------------------------------------------------------------

// Exercises everything a successfully parsed image offers, so ASan sees every byte it exposes.
void touch(const std::shared_ptr<GgufFile>& g) {
  for (const GgufKV& kv : g->metadata()) (void)kv.value.to_display();
  static volatile uint8_t sink;
  for (const GgufTensorInfo& t : g->tensors()) {
    const Tensor v = g->tensor(t.name);
    const auto* p = static_cast<const uint8_t*>(v.data());
    for (size_t i = 0; i < v.nbytes(); ++i) sink = p[i];
  }
  ModelFile m;
  try {
    detail::read_gguf_weights(g, m);
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("mutant.gguf: ", 0), 0u) << e.what();
  }
}

// One random edit: bit flip, byte overwrite, "interesting" u64 overwrite, insertion, deletion or
// truncation. Offsets mostly fall in the first `hot` bytes (header, metadata, tensor infos).
void mutate(std::vector<uint8_t>& b, size_t hot, std::mt19937_64& rng) {
  const auto offset = [&](size_t n) -> size_t {
    if (n == 0) return 0;
    return (rng() % 5 != 0 && hot < n) ? rng() % hot : rng() % n;
  };
  static const uint64_t kInteresting[] = {0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff,
                                          uint64_t(1) << 32, uint64_t(1) << 40, uint64_t(1) << 62,
                                          uint64_t(1) << 63, std::numeric_limits<uint64_t>::max()};
  switch (rng() % 6) {
    case 0:
      if (!b.empty()) b[offset(b.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
      break;
    case 1:
      if (!b.empty()) b[offset(b.size())] = static_cast<uint8_t>(rng());
      break;
    case 2:
      if (b.size() >= 8) {
        const uint64_t v = kInteresting[rng() % std::size(kInteresting)];
        std::memcpy(b.data() + offset(b.size() - 7), &v, 8);
      }
      break;
    case 3: {
      const size_t at = offset(b.size() + 1);
      std::vector<uint8_t> ins(1 + rng() % 16);
      for (auto& x : ins) x = static_cast<uint8_t>(rng());
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
      break;
    }
    case 4:
      if (!b.empty()) {
        const size_t at = offset(b.size());
        const size_t n = std::min<size_t>(1 + rng() % 16, b.size() - at);
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
      }
      break;
    default:
      b.resize(offset(b.size() + 1));
      break;
  }
}

// ---- Paths that are not regular files -----------------------------------------------------------
// Opening a FIFO for reading blocks until a writer appears, so a loader that opens before checking
// the type hangs (`mkfifo f.gguf; contrail info f.gguf`). Every file a loader reads must be
// rejected without blocking, with an Error naming the path and its type.

// Runs load() on another thread; it must throw contrail::Error containing `path` and `type`. A
// loader that blocks fails the test after 10 s instead of hanging it: the FIFO is then opened for
// writing and closed, which releases the blocked open().
void expect_rejected_without_blocking(const std::string& what, const std::string& path, const std::string& type,
                                      const std::function<void()>& load) {
  std::future<std::string> result = std::async(std::launch::async, [&load]() -> std::string {
    try {
      load();
      return "accepted";
    } catch (const Error& e) {
      return std::string("Error: ") + e.what();
    } catch (const std::exception& e) {
      return std::string("wrong exception type: ") + e.what();
    }
  });
  if (result.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
    ADD_FAILURE() << what << ": blocked for 10 s opening " << path;
    for (int i = 0; i < 200 && result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready; ++i) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // succeeds once a reader waits
      if (fd >= 0) ::close(fd);
    }
  }
  const std::string r = result.get();
  EXPECT_EQ(r.rfind("Error: ", 0), 0u) << what << ": " << r;
  EXPECT_NE(r.find(path), std::string::npos) << what << ": the error does not name " << path << ": " << r;
  EXPECT_NE(r.find(type), std::string::npos) << what << ": the error does not say '" << type << "': " << r;
}

std::string make_fifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + path + ": " + std::strerror(errno));
  return path;
}

TEST(HostileFiles, FifoModelPathsAreRejectedWithoutBlocking) {
  const std::string model_bin = test::data_path("models/stories260K/stories260K.bin");
  const std::string tok_bin = test::data_path("models/stories260K/tok512.bin");
  CONTRAIL_REQUIRE_DATA(model_bin);
  CONTRAIL_REQUIRE_DATA(tok_bin);
  test::TempDir dir("contrail_fifo");
  const std::string fifo = make_fifo(dir.file("model.gguf"));
  const std::string kFifo = "FIFO";
  expect_rejected_without_blocking("load_model_file", fifo, kFifo, [&] { load_model_file(fifo); });
  expect_rejected_without_blocking("load_gguf_model", fifo, kFifo, [&] { load_gguf_model(fifo); });
  expect_rejected_without_blocking("GgufFile::open", fifo, kFifo, [&] { GgufFile::open(fifo); });
  expect_rejected_without_blocking("MappedFile::open", fifo, kFifo, [&] { MappedFile::open(fifo); });
  expect_rejected_without_blocking("SafetensorsFile::open", fifo, kFifo, [&] { SafetensorsFile::open(fifo); });
  expect_rejected_without_blocking("load_llama2c_model", fifo, kFifo, [&] { load_llama2c_model(fifo, tok_bin); });
  expect_rejected_without_blocking("llama2.c tokenizer", fifo, kFifo, [&] { load_llama2c_model(model_bin, fifo); });
  expect_rejected_without_blocking("load_model_file tokenizer_path", fifo, kFifo,
                                   [&] { load_model_file(model_bin, LoadOptions{fifo}); });
  expect_rejected_without_blocking("load_llama2c_vocab", fifo, kFifo, [&] { load_llama2c_vocab(fifo, 512); });
  expect_rejected_without_blocking("load_hf_tokenizer_json", fifo, kFifo, [&] { load_hf_tokenizer_json(fifo); });
  expect_rejected_without_blocking("load_sentencepiece_model", fifo, kFifo, [&] { load_sentencepiece_model(fifo); });
  expect_rejected_without_blocking("load_tiktoken_model", fifo, kFifo, [&] { load_tiktoken_model(fifo); });
  expect_rejected_without_blocking("load_model_vocab", fifo, kFifo, [&] { load_model_vocab(fifo); });
  expect_rejected_without_blocking("load_model_vocab tokenizer_path", fifo, kFifo,
                                   [&] { load_model_vocab(model_bin, LoadOptions{fifo}); });
  // Other kinds of non-regular files are named too.
  expect_rejected_without_blocking("a directory", dir.path(), "a directory", [&] { GgufFile::open(dir.path()); });
  expect_rejected_without_blocking("a character device", "/dev/null", "a character device",
                                   [&] { load_model_file("/dev/null"); });
}

// A Hugging Face directory (the tiny-random checkpoints) whose files are symbolic links to the
// real ones, except `fifo_name`, a FIFO.
std::string hf_dir_with_fifo(const test::TempDir& tmp, const std::string& src, const std::string& fifo_name,
                             const std::vector<std::string>& skip = {}) {
  const fs::path d = fs::path(tmp.path()) / ("hf_" + std::to_string(std::hash<std::string>()(src + fifo_name)));
  fs::create_directories(d);
  for (const auto& e : fs::directory_iterator(src)) {
    const std::string name = e.path().filename().string();
    if (name == fifo_name || std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    fs::create_symlink(e.path(), d / name);
  }
  return make_fifo((d / fifo_name).string());
}

TEST(HostileFiles, FifoFilesInAHuggingFaceDirectoryAreRejectedWithoutBlocking) {
  const std::string spm = test::data_path("golden/tiny-random/llama/hf");     // tokenizer.model
  const std::string json = test::data_path("golden/tiny-random/gpt2/hf");     // tokenizer.json
  CONTRAIL_REQUIRE_DATA(spm + "/config.json");
  CONTRAIL_REQUIRE_DATA(json + "/config.json");
  test::TempDir tmp("contrail_fifo_hf");
  struct Case {
    std::string src, fifo;
    std::vector<std::string> skip;  // source files left out
  };
  const std::vector<Case> cases = {
      {spm, "config.json", {}},
      {spm, "model.safetensors", {}},
      {spm, "model.safetensors.index.json", {"model.safetensors"}},
      {spm, "tokenizer.model", {}},
      {spm, "tokenizer_config.json", {}},
      {spm, "added_tokens.json", {}},
      {spm, "special_tokens_map.json", {}},
      {spm, "generation_config.json", {}},
      {spm, "chat_template.jinja", {}},
      {json, "tokenizer.json", {}},
      {json, "tokenizer_config.json", {}},
  };
  for (const Case& c : cases) {
    const std::string fifo = hf_dir_with_fifo(tmp, c.src, c.fifo, c.skip);
    const std::string dir = fs::path(fifo).parent_path().string();
    expect_rejected_without_blocking("load_model_file with a FIFO " + c.fifo, fifo, "FIFO",
                                     [&] { load_model_file(dir); });
    if (c.fifo.find("safetensors") == std::string::npos && c.fifo != "config.json")
      expect_rejected_without_blocking("load_hf_tokenizer with a FIFO " + c.fifo, fifo, "FIFO",
                                       [&] { load_hf_tokenizer(dir); });
  }
  // A shard named by the index.
  const fs::path d = fs::path(tmp.path()) / "sharded";
  fs::create_directories(d);
  fs::create_symlink(fs::path(spm) / "config.json", d / "config.json");
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00001.safetensors"}})";
  const std::string shard = make_fifo((d / "model-00001-of-00001.safetensors").string());
  expect_rejected_without_blocking("a FIFO shard", shard, "FIFO", [&] { load_model_file(d.string()); });
}

TEST(FuzzGguf, DeterministicMutationsNeverCrash) {
  const std::vector<uint8_t> base = tiny_model();
  const size_t hot = GgufFile::parse(nullptr, base.data(), base.size(), "base")->data_offset();
  std::mt19937_64 rng(20240611);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> img = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) mutate(img, hot, rng);
    img.shrink_to_fit();  // exact-size buffer: any overread is an ASan error
    try {
      touch(GgufFile::parse(nullptr, img.data(), img.size(), "mutant.gguf"));
      ++accepted;
    } catch (const FormatError& e) {
      ++rejected;
      ASSERT_EQ(std::string(e.what()).rfind("mutant.gguf: ", 0), 0u) << "iteration " << iter << ": " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": unexpected exception type: " << e.what();
    }
  }
  // Both outcomes must be common, or the mutations are not exercising the parser.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 1000);
}

TEST(FuzzLlama2c, DeterministicHeaderMutationsNeverCrash) {
  const std::vector<uint8_t> base = tiny_llama2c();
  std::mt19937_64 rng(7);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> img = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) mutate(img, detail::Llama2cHeader::kBytes, rng);
    img.shrink_to_fit();
    try {
      const auto h = detail::parse_llama2c_header(img.data(), img.size(), "mutant.bin");
      EXPECT_EQ(h.file_bytes, img.size());
      ++accepted;
    } catch (const FormatError& e) {
      ASSERT_EQ(std::string(e.what()).rfind("mutant.bin: ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(accepted, 10);
}

}  // namespace
}  // namespace contrail
