// safetensors reader: the tiny-random llama checkpoint checked against its config.json and against
// the GGUF converted from it (an independent writer), then hostile images: every prefix of a valid
// image, hand-made corruptions (asserting the message names the file, field and value) and
// deterministic random mutations, which must all end in FormatError or a valid parse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "contrail/model/safetensors.h"
#include "test_util.h"

namespace contrail {
namespace {

using test::data_path;

std::vector<uint8_t> tensor_bytes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.data());
  return std::vector<uint8_t>(p, p + t.nbytes());
}

// ---- the tiny-random llama checkpoint ------------------------------------------------------------

TEST(SafetensorsFile, TinyRandomLlamaMatchesConfigAndGguf) {
  const std::string dir = data_path("golden/tiny-random/llama");
  CONTRAIL_REQUIRE_DATA(dir + "/hf/model.safetensors");
  CONTRAIL_REQUIRE_DATA(dir + "/gguf/model.gguf");
  const auto cfg = nlohmann::json::parse(test::read_text(dir + "/hf/config.json"));
  const int64_t hidden = cfg.at("hidden_size"), layers = cfg.at("num_hidden_layers");
  const int64_t heads = cfg.at("num_attention_heads"), kv_heads = cfg.at("num_key_value_heads");
  const int64_t head_dim = cfg.at("head_dim"), ff = cfg.at("intermediate_size"), vocab = cfg.at("vocab_size");

  const auto st = SafetensorsFile::open(dir + "/hf/model.safetensors");
  EXPECT_EQ(st->path(), dir + "/hf/model.safetensors");
  EXPECT_EQ(st->metadata().at("format"), "pt");
  ASSERT_EQ(st->tensors().size(), static_cast<size_t>(3 + 9 * layers));

  // Tensors are listed in file order and tile the data region up to the end of the file.
  size_t expected_offset = st->data_offset();
  for (const auto& t : st->tensors()) {
    EXPECT_EQ(t.offset, expected_offset) << t.name;
    expected_offset = t.offset + t.nbytes;
  }
  EXPECT_EQ(expected_offset, static_cast<size_t>(std::filesystem::file_size(dir + "/hf/model.safetensors")));

  const auto expect_shape = [&](const std::string& name, const char* st_dtype, std::vector<int64_t> shape) {
    const SafetensorsFile::TensorInfo* t = st->find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->st_dtype, st_dtype) << name;
    EXPECT_EQ(t->shape, shape) << name;
    const Tensor v = st->tensor(name);
    EXPECT_EQ(v.shape(), shape) << name;
    EXPECT_EQ(v.dtype(), std::string_view(st_dtype) == "F16" ? DType::F16 : DType::F32) << name;
    EXPECT_EQ(v.nbytes(), t->nbytes) << name;
  };
  // Vocab matrices are F16 (MANIFEST: F32 size above 4 MiB), everything else F32.
  expect_shape("model.embed_tokens.weight", "F16", {vocab, hidden});
  expect_shape("lm_head.weight", "F16", {vocab, hidden});
  expect_shape("model.norm.weight", "F32", {hidden});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expect_shape(p + "input_layernorm.weight", "F32", {hidden});
    expect_shape(p + "post_attention_layernorm.weight", "F32", {hidden});
    expect_shape(p + "self_attn.q_proj.weight", "F32", {heads * head_dim, hidden});
    expect_shape(p + "self_attn.k_proj.weight", "F32", {kv_heads * head_dim, hidden});
    expect_shape(p + "self_attn.v_proj.weight", "F32", {kv_heads * head_dim, hidden});
    expect_shape(p + "self_attn.o_proj.weight", "F32", {hidden, heads * head_dim});
    expect_shape(p + "mlp.gate_proj.weight", "F32", {ff, hidden});
    expect_shape(p + "mlp.up_proj.weight", "F32", {ff, hidden});
    expect_shape(p + "mlp.down_proj.weight", "F32", {hidden, ff});
  }
  EXPECT_EQ(st->find("model.layers.99.mlp.up_proj.weight"), nullptr);

  // Tensors the converter copies unchanged (q/k are permuted for GGUF's rotary layout, so not
  // those) are byte-identical in the GGUF.
  const auto g = GgufFile::open(dir + "/gguf/model.gguf");
  std::vector<std::pair<std::string, std::string>> same = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.norm.weight", "output_norm.weight"},
  };
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    same.insert(same.end(), {{p + "input_layernorm.weight", b + "attn_norm.weight"},
                             {p + "post_attention_layernorm.weight", b + "ffn_norm.weight"},
                             {p + "self_attn.v_proj.weight", b + "attn_v.weight"},
                             {p + "self_attn.o_proj.weight", b + "attn_output.weight"},
                             {p + "mlp.gate_proj.weight", b + "ffn_gate.weight"},
                             {p + "mlp.up_proj.weight", b + "ffn_up.weight"},
                             {p + "mlp.down_proj.weight", b + "ffn_down.weight"}});
  }
  for (const auto& [hf, gg] : same) {
    const Tensor a = st->tensor(hf), b = g->tensor(gg);
    EXPECT_EQ(a.shape(), b.shape()) << hf;
    EXPECT_EQ(a.dtype(), b.dtype()) << hf;
    EXPECT_TRUE(tensor_bytes(a) == tensor_bytes(b)) << hf << " differs from " << gg;
  }
}

// ---- hand-built images ---------------------------------------------------------------------------

// A file image: `header` (padded with spaces to a multiple of 8, as writers do) behind its length,
// then `data`.
std::vector<uint8_t> image(std::string header, const std::vector<uint8_t>& data) {
  while (header.size() % 8 != 0) header += ' ';
  std::vector<uint8_t> b(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::copy(header.begin(), header.end(), b.begin() + 8);
  std::copy(data.begin(), data.end(), b.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
  return b;
}

// Values of the valid image's tensors: a = (2, 3) F32 {0.5, 1.5, ...}, then raw bytes 0, 1, 2, ...
std::vector<uint8_t> valid_data() {
  std::vector<uint8_t> d(48);
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i) {
    const float v = 0.5f + static_cast<float>(i);
    std::memcpy(d.data() + 4 * i, &v, 4);
  }
  return d;
}

const char* kValidHeader =
    R"({"__metadata__": {"format": "pt", "note": "hand-made"},)"
    R"( "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},)"
    R"( "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},)"
    R"( "c": {"dtype": "U8", "shape": [3], "data_offsets": [32, 35]},)"
    R"( "e": {"dtype": "BF16", "shape": [0, 5], "data_offsets": [35, 35]},)"
    R"( "s": {"dtype": "I64", "shape": [], "data_offsets": [40, 48]}})";

std::vector<uint8_t> valid_image() { return image(kValidHeader, valid_data()); }

// An image with one tensor entry "a" (F32, 48 data bytes); `entry` is the entry's JSON.
std::vector<uint8_t> one_tensor(const std::string& entry) { return image(R"({"a": )" + entry + "}", valid_data()); }

std::shared_ptr<SafetensorsFile> parse(const std::vector<uint8_t>& img, const char* source = "hostile.safetensors") {
  return SafetensorsFile::parse(nullptr, img.data(), img.size(), source);
}

// Parses `img` and requires a FormatError starting with "hostile.safetensors: " containing every needle.
void expect_rejected(const std::vector<uint8_t>& img, const std::vector<std::string>& needles) {
  try {
    parse(img);
    ADD_FAILURE() << "accepted a malformed image (expected: " << (needles.empty() ? "" : needles[0]) << ")";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("hostile.safetensors: ", 0), 0u) << m;
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void expect_view_rejected(const SafetensorsFile& f, const std::string& name, const std::vector<std::string>& needles) {
  try {
    f.tensor(name);
    ADD_FAILURE() << "viewed tensor '" << name << "' (expected: " << needles[0] << ")";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(HostileSafetensors, BaselineImageIsValid) {
  const std::vector<uint8_t> img = valid_image();
  const auto f = parse(img);
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "hand-made"}}));
  ASSERT_EQ(f->tensors().size(), 5u);
  const std::vector<std::string> order = {"a", "b", "c", "e", "s"};  // by data offset; "e" is empty
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(f->tensors()[i].name, order[i]);
  EXPECT_EQ(f->data_offset(), img.size() - 48);
  EXPECT_EQ(f->find("b")->offset, f->data_offset() + 24);
  EXPECT_EQ(f->find("c")->dtype, std::nullopt);
  EXPECT_EQ(f->find("e")->nbytes, 0u);

  const Tensor a = f->tensor("a");
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data(), img.data() + f->data_offset());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.data_as<float>()[i], 0.5f + static_cast<float>(i));
  EXPECT_EQ(f->tensor("b").dtype(), DType::F16);
  EXPECT_EQ(f->tensor("e").numel(), 0);
  const Tensor s = f->tensor("s");  // a scalar is viewed as shape (1)
  EXPECT_EQ(s.shape(), std::vector<int64_t>{1});
  int64_t sv = 0;
  std::memcpy(&sv, valid_data().data() + 40, 8);
  EXPECT_EQ(s.data_as<int64_t>()[0], sv);

  expect_view_rejected(*f, "c", {"hostile.safetensors: ", "'c'", "U8"});
  expect_view_rejected(*f, "zz", {"hostile.safetensors: ", "'zz' not found"});
}

TEST(HostileSafetensors, EveryPrefixIsRejected) {
  const std::vector<uint8_t> img = valid_image();
  for (size_t n = 0; n < img.size(); ++n) {
    const std::vector<uint8_t> prefix(img.begin(), img.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      parse(prefix);
      ADD_FAILURE() << "accepted the " << n << "-byte prefix";
    } catch (const FormatError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("hostile.safetensors: ", 0), 0u) << e.what();
    }
  }
}

TEST(HostileSafetensors, LengthPrefix) {
  expect_rejected({1, 2, 3}, {"file size 3", "8-byte header length"});
  std::vector<uint8_t> img = valid_image();
  const uint64_t huge = 200'000'000;
  std::memcpy(img.data(), &huge, 8);
  expect_rejected(img, {"header length 200000000", "limit of 100000000"});
  const uint64_t beyond = img.size();
  std::memcpy(img.data(), &beyond, 8);
  expect_rejected(img, {"header length " + std::to_string(beyond), "beyond the file size"});
}

TEST(HostileSafetensors, HeaderJson) {
  const std::vector<uint8_t> d = valid_data();
  expect_rejected(image("{\"a\": ", d), {"not valid JSON"});
  expect_rejected(image("", d), {"not valid JSON"});
  expect_rejected(image("[1, 2]", d), {"header is a JSON array", "expected an object"});
  expect_rejected(image("{\"a\\xff\": 1}", d), {"not valid JSON"});  // invalid escape
  expect_rejected(image(std::string("{\"a\xff\": 1}"), d), {"not valid JSON"});  // invalid UTF-8
  expect_rejected(image(R"({"__metadata__": {"k": [[1]]}})", d), {"nests 4 containers deep", "'__metadata__'"});
  // Deep nesting must not recurse: it is cut off at the first container too deep.
  expect_rejected(image(std::string(200000, '[') + std::string(200000, ']'), d), {"nests 4 containers deep"});
  expect_rejected(image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                        R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                        d),
                  {"duplicate tensor name 'a'"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]})"),
                  {"duplicate key 'dtype' in entry 'a'"});
  expect_rejected(image(R"({"__metadata__": {"k": "1", "k": "2"}})", d), {"duplicate key 'k' in entry '__metadata__'"});
  // The same key in different objects is not a duplicate.
  EXPECT_EQ(parse(image(R"({"__metadata__": {"dtype": "x"}, "dtype": {"dtype": "U8", "shape": [1],)"
                        R"( "data_offsets": [0, 1]}})",
                        d))
                ->tensors()
                .size(),
            1u);
}

TEST(HostileSafetensors, MetadataAndNames) {
  const std::vector<uint8_t> d = valid_data();
  expect_rejected(image(R"({"__metadata__": ["x"]})", d), {"__metadata__ is array [\"x\"]", "object of strings"});
  expect_rejected(image(R"({"__metadata__": {"k": 17}})", d), {"__metadata__ value of key 'k' is integer 17"});
  expect_rejected(image(R"({"": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})", d), {"empty name"});
  expect_rejected(image(R"({"x\u0001": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})", d),
                  {"tensor name \"x\\u0001\"", "control character 0x01 at position 1"});
}

TEST(HostileSafetensors, TensorEntries) {
  expect_rejected(one_tensor("5"), {"tensor 'a' entry is integer 5", "must be an object"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "data_offsets": [0, 4]})"), {"tensor 'a' lacks the field 'shape'"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "foo": 1})"),
                  {"tensor 'a' has unknown field 'foo'"});
  expect_rejected(one_tensor(R"({"dtype": 4, "shape": [1], "data_offsets": [0, 4]})"),
                  {"tensor 'a' dtype is integer 4"});
  expect_rejected(one_tensor(R"({"dtype": "F31", "shape": [1], "data_offsets": [0, 4]})"),
                  {"tensor 'a' has unknown dtype \"F31\""});
  expect_rejected(one_tensor(R"({"dtype": "F4", "shape": [2], "data_offsets": [0, 1]})"), {"sub-byte dtype F4"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": "1", "data_offsets": [0, 4]})"),
                  {"tensor 'a' shape is string \"1\""});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]})"),
                  {"tensor 'a' shape[1] is -3"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 4]})"),
                  {"tensor 'a' shape[0] is number 2.5"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1e2], "data_offsets": [0, 4]})"),
                  {"tensor 'a' shape[0] is number 100"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]})"),
                  {"shape[0] is 18446744073709551615", "exceeds the maximum 9223372036854775807"});
  expect_rejected(one_tensor(R"({"dtype": "U8", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]})"),
                  {"tensor 'a' shape [4294967296,4294967296,0]", "overflows int64 at dim 1"});
  expect_rejected(one_tensor(R"({"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]})"),
                  {"tensor 'a' byte size overflows", "4611686018427387904 elements of F64"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": [0]})"),
                  {"tensor 'a' data_offsets is [0]", "[begin, end]"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": {"0": 4}})"),
                  {"tensor 'a' data_offsets is {\"0\":4}"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]})"),
                  {"tensor 'a' data_offsets[0] is -4"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]})"),
                  {"tensor 'a' data_offsets [8, 4] has begin > end"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [2], "data_offsets": [44, 52]})"),
                  {"tensor 'a' data_offsets [44, 52] extend beyond the 48-byte data region"});
  expect_rejected(one_tensor(R"({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]})"),
                  {"tensor 'a' data_offsets [0, 20] span 20 bytes", "shape [2,3] of F32 needs 24 bytes"});
  expect_rejected(image(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                        R"( "b": {"dtype": "U8", "shape": [0], "data_offsets": [8, 8]},)"
                        R"( "c": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                        valid_data()),
                  {"tensor 'c' data_offsets [12, 20] overlap tensor 'a' data_offsets [0, 16]"});
}

TEST(HostileSafetensors, ViewsCheckAlignmentAndRank) {
  const std::vector<uint8_t> img =
      image(R"({"odd": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]},)"
            R"( "r5": {"dtype": "U8", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 1]},)"
            R"( "i5": {"dtype": "I8", "shape": [1, 1, 1, 1, 1], "data_offsets": [9, 10]}})",
            valid_data());
  const auto f = parse(img);  // the layout is valid; only views are refused
  expect_view_rejected(*f, "odd", {"tensor 'odd' (F32)", "not aligned to its element size 4"});
  expect_view_rejected(*f, "i5", {"tensor 'i5' has 5 dims", "at most 4"});
}

// ---- deterministic random mutations --------------------------------------------------------------

// Exercises everything a successfully parsed image offers, so ASan sees every byte it exposes.
void touch(const SafetensorsFile& f) {
  static volatile uint8_t sink;
  for (const auto& [k, v] : f.metadata()) sink = static_cast<uint8_t>(k.size() + v.size());
  for (const SafetensorsFile::TensorInfo& t : f.tensors()) {
    EXPECT_EQ(f.find(t.name), &t);
    Tensor v;
    try {
      v = f.tensor(t.name);
    } catch (const FormatError&) {  // no DType, rank > 4 or misaligned: the layout itself is valid
      EXPECT_TRUE(!t.dtype || t.shape.size() > 4 || (t.nbytes != 0 && t.offset % dtype_traits(*t.dtype).type_size != 0))
          << t.name;
      continue;
    }
    EXPECT_EQ(v.nbytes(), t.nbytes) << t.name;
    const auto* p = static_cast<const uint8_t*>(v.data());
    for (size_t i = 0; i < v.nbytes(); ++i) sink = p[i];
  }
}

// One random edit of the JSON text: a character replaced by a JSON-significant one or a random
// byte, a digit run replaced by an "interesting" number, an insertion or a deletion.
void mutate_json(std::string& s, std::mt19937_64& rng) {
  static const char kChars[] = "{}[]\":,-.0123456789eE \\u";
  static const char* kNumbers[] = {"0", "1", "-1", "255", "4294967296", "9223372036854775807", "9223372036854775808",
                                   "18446744073709551615", "18446744073709551616", "1e308", "1.5", "-0"};
  const size_t at = s.empty() ? 0 : rng() % s.size();
  switch (rng() % 6) {
    case 0:
      if (!s.empty()) s[at] = kChars[rng() % (sizeof(kChars) - 1)];
      break;
    case 1:
      if (!s.empty()) s[at] = static_cast<char>(rng());
      break;
    case 2:
    case 3: {  // replace the digit run at or after `at`
      size_t b = s.find_first_of("0123456789", at);
      if (b == std::string::npos) break;
      size_t e = b;
      while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
      s.replace(b, e - b, kNumbers[rng() % std::size(kNumbers)]);
      break;
    }
    case 4:
      s.insert(at, 1, kChars[rng() % (sizeof(kChars) - 1)]);
      break;
    default:
      if (!s.empty()) s.erase(at, 1 + rng() % std::min<size_t>(8, s.size() - at));
      break;
  }
}

TEST(FuzzSafetensors, DeterministicMutationsNeverCrash) {
  const std::vector<uint8_t> data = valid_data();
  std::mt19937_64 rng(20251125);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string header = kValidHeader;
    const int edits = 1 + static_cast<int>(rng() % 2);
    for (int e = 0; e < edits; ++e) mutate_json(header, rng);
    std::vector<uint8_t> img = image(header, data);
    // Now and then break the framing too: the length field or the data region.
    switch (rng() % 16) {
      case 0: {
        const uint64_t n = rng() % (img.size() + 16);
        std::memcpy(img.data(), &n, 8);
        break;
      }
      case 1:
        img.resize(img.size() - rng() % 16);
        break;
      case 2:
        img.push_back(static_cast<uint8_t>(rng()));
        break;
      default:
        break;
    }
    img.shrink_to_fit();  // exact-size buffer: any overread is an ASan error
    try {
      touch(*parse(img, "mutant.safetensors"));
      ++accepted;
    } catch (const FormatError& e) {
      ++rejected;
      ASSERT_EQ(std::string(e.what()).rfind("mutant.safetensors: ", 0), 0u) << "iteration " << iter << ": " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": unexpected exception type: " << e.what();
    }
  }
  // Both outcomes must be common, or the mutations are not exercising the parser.
  EXPECT_GT(accepted, 50);
  EXPECT_GT(rejected, 3000);
}

}  // namespace
}  // namespace contrail
