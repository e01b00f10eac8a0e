// Malformed Hugging Face files never crash anything: tokenizer.json, SentencePiece
// tokenizer.model, tiktoken tokenizer.model, tokenizer_config.json & co. and config.json, each
// mutated thousands of times (deterministic seeds, so a failure reproduces). Every input either
// loads into something usable (a vocabulary that tokenizes and decodes, a model that loads) or is
// rejected with a FormatError naming the file; any other exception type is a failure. CI runs
// this under AddressSanitizer + UBSan, where every overread is an error.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "contrail/core/error.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "contrail/tokenizer/tokenizer.h"
#include "golden.h"
#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_detail.h"

namespace contrail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- mutation helpers --------------------------------------------------------------------------

// Values that break type checks and limits when put anywhere in a JSON document.
json hostile_value(std::mt19937_64& rng) {
  switch (rng() % 14) {
    case 0: return nullptr;
    case 1: return -1;
    case 2: return int64_t{1} << 62;
    case 3: return 1e308;
    case 4: return 0.5;
    case 5: return "";
    case 6: return std::string(300, 'x');
    case 7: return json::array();
    case 8: return json::object();
    case 9: return true;
    case 10: return "\xC3\x28 invalid utf-8 \xFF";
    case 11: return json::array({1, "a", nullptr});
    case 12: return 4294967296LL;
    default: return "<0xZZ>";
  }
}

// Every node of `j` by pointer, so one can be picked at random.
void collect_nodes(json& j, std::vector<json*>& out) {
  out.push_back(&j);
  if (j.is_object() || j.is_array())
    for (auto& child : j) collect_nodes(child, out);
}

// One structural edit: a random node replaced by a hostile value, deleted from its parent, or (for
// arrays) a random element duplicated.
void mutate_tree(json& root, std::mt19937_64& rng) {
  std::vector<json*> nodes;
  collect_nodes(root, nodes);
  json& n = *nodes[rng() % nodes.size()];
  if ((n.is_object() || n.is_array()) && !n.empty() && rng() % 3 == 0) {
    if (n.is_object()) {
      auto it = n.begin();
      std::advance(it, static_cast<long>(rng() % n.size()));
      n.erase(it.key());
    } else {
      const size_t i = rng() % n.size();
      if (rng() % 2) n.erase(i); else n.push_back(n[i]);
    }
    return;
  }
  n = hostile_value(rng);
}

// One byte-level edit of a text: a JSON-significant character, a random byte, an insertion, a
// deletion or a truncation.
void mutate_text(std::string& s, std::mt19937_64& rng) {
  static const char kChars[] = "{}[]\":,-.0123456789eE \\u\n";
  if (s.empty()) return;
  const size_t at = rng() % s.size();
  switch (rng() % 5) {
    case 0: s[at] = kChars[rng() % (sizeof(kChars) - 1)]; break;
    case 1: s[at] = static_cast<char>(rng()); break;
    case 2: s.insert(at, 1, kChars[rng() % (sizeof(kChars) - 1)]); break;
    case 3: s.erase(at, 1 + rng() % std::min<size_t>(8, s.size() - at)); break;
    default: s.resize(at); break;
  }
}

// Uses an accepted vocabulary the way the engine does, so ASan sees whatever it exposes.
void exercise(const VocabData& v, const std::string& what) {
  const Tokenizer tok(v);  // must not throw: loaders return validated vocabularies
  for (const char* text : {"Hello world", " <s> </s> <|endoftext|>", "caf\xC3\xA9 \xF0\x9F\xA6\x99 12345", "\xFF\xFE bad",
                           ""}) {
    const auto ids = tok.encode(text, true, true);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.n_vocab()) << what;
    (void)tok.decode(ids, true);
  }
}

// Runs `load` on a mutant; returns true if it was accepted. Fails the test for any exception but
// a FormatError whose message starts with `source`.
template <typename Fn>
bool accepted(Fn&& load, const std::string& source, int iter) {
  try {
    load();
    return true;
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(source, 0), 0u) << "iteration " << iter << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "iteration " << iter << ": unexpected exception type: " << e.what();
  }
  return false;
}

// ---- tokenizer.json ----------------------------------------------------------------------------

// A small byte-level BPE tokenizer.json (GPT-2 style): all 256 byte symbols, a few merges, one
// special added token, a TemplateProcessing post-processor.
json byte_level_tokenizer_json() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(detail::byte_level_char(static_cast<uint8_t>(b)))] = b;
  int id = 256;
  for (const char* t : {"he", "ll", "llo", "hello", "\xC4\xA0w", "\xC4\xA0wor", "ld", "\xC4\xA0world"}) vocab[t] = id++;
  json j = {
      {"version", "1.0"},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens",
         {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", json::array({264})}, {"tokens", json::array({"<|endoftext|>"})}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", json::array({"h e", "l l", "ll o", "he llo", "\xC4\xA0 w", "\xC4\xA0w o", "l d",
                                json::array({"\xC4\xA0wo", "r"})})}}},
      {"added_tokens",
       json::array({{{"id", id}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}}})},
  };
  j["model"]["vocab"]["\xC4\xA0wo"] = id + 1;
  j["model"]["vocab"]["\xC4\xA0worl"] = id + 2;
  j["model"]["merges"].push_back("\xC4\xA0wor l");
  return j;
}

// A small SentencePiece-style tokenizer.json (Llama 2 / Mistral style): Prepend + Replace
// normalizer, byte fallback, merges by rank, <s> as BOS.
json spm_style_tokenizer_json() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  int id = 3;
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = id++;
  }
  for (const char* t : {"\xE2\x96\x81", "H", "e", "l", "o", "w", "r", "d", "\xE2\x96\x81H", "ll", "llo",
                        "\xE2\x96\x81Hello", "\xE2\x96\x81He"})
    vocab[t] = id++;
  return {
      {"version", "1.0"},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", json::array({1})}, {"tokens", json::array({"<s>"})}}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true},
        {"vocab", vocab},
        {"merges", json::array({"\xE2\x96\x81 H", "l l", "ll o", "\xE2\x96\x81H e", "\xE2\x96\x81He llo"})}}},
      {"added_tokens",
       json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                    {{"id", 1}, {"content", "<s>"}, {"special", true}},
                    {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
  };
}

VocabData parse_tokenizer_json(const std::string& text) { return detail::parse_hf_tokenizer_json(text, "mutant.json"); }

TEST(HostileTokenizerJson, BaselinesAreValid) {
  const VocabData bl = parse_tokenizer_json(byte_level_tokenizer_json().dump());
  EXPECT_EQ(bl.kind, VocabKind::BytePair);
  exercise(bl, "byte-level baseline");
  const Tokenizer tok(bl);
  EXPECT_EQ(tok.decode(tok.encode("hello world", false)), "hello world");
  const VocabData spm = parse_tokenizer_json(spm_style_tokenizer_json().dump());
  EXPECT_EQ(spm.kind, VocabKind::SentencePiece);
  exercise(spm, "spm baseline");
}

// Targeted cases: each error names the file, the JSON path and the offending value.
TEST(HostileTokenizerJson, ErrorsNameThePathAndValue) {
  const struct {
    const char* name;
    std::function<void(json&)> edit;
    std::vector<std::string> expected;
  } cases[] = {
      {"model type", [](json& j) { j["model"]["type"] = "Unigram"; }, {"mutant.json", "model.type", "Unigram"}},
      {"vocab id type", [](json& j) { j["model"]["vocab"]["he"] = "x"; }, {"mutant.json", "model.vocab", "\"x\""}},
      {"vocab id range", [](json& j) { j["model"]["vocab"]["he"] = int64_t{1} << 40; }, {"mutant.json", "1099511627776"}},
      {"merge of unknown pieces", [](json& j) { j["model"]["merges"][0] = "q z"; }, {"mutant.json", "model.merges[0]"}},
      {"merge not a string", [](json& j) { j["model"]["merges"][1] = 17; }, {"mutant.json", "model.merges[1]", "17"}},
      {"added token id", [](json& j) { j["added_tokens"][0]["id"] = -5; }, {"mutant.json", "added_tokens[0]", "-5"}},
      {"added token huge id", [](json& j) { j["added_tokens"][0]["id"] = int64_t{1} << 40; },
       {"mutant.json", "added_tokens[0]"}},
      {"pre-tokenizer", [](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; },
       {"mutant.json", "pre_tokenizer", "Whitespace"}},
      {"model missing", [](json& j) { j.erase("model"); }, {"mutant.json", "model"}},
      {"top level", [](json& j) { j = json::array(); }, {"mutant.json"}},
  };
  for (const auto& c : cases) {
    json j = byte_level_tokenizer_json();
    c.edit(j);
    try {
      parse_tokenizer_json(j.dump());
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const FormatError& e) {
      for (const std::string& part : c.expected)
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << c.name << ": '" << part << "' not in " << e.what();
    }
  }
  EXPECT_THROW(parse_tokenizer_json("{\"model\": "), FormatError);
  EXPECT_THROW(parse_tokenizer_json(""), FormatError);
}

TEST(FuzzTokenizerJson, StructuralAndTextMutationsNeverCrash) {
  std::mt19937_64 rng(20261207);
  int ok = 0, rejected = 0;
  const json bases[] = {byte_level_tokenizer_json(), spm_style_tokenizer_json()};
  for (int iter = 0; iter < 1500; ++iter) {
    json j = bases[iter % 2];
    for (int e = 0, n = 1 + static_cast<int>(rng() % 2); e < n; ++e) mutate_tree(j, rng);
    std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (rng() % 4 == 0) mutate_text(text, rng);
    VocabData v;
    if (accepted([&] { v = parse_tokenizer_json(text); }, "mutant.json", iter)) {
      ++ok;
      exercise(v, "iteration " + std::to_string(iter));
    } else {
      ++rejected;
    }
  }
  std::printf("tokenizer.json mutants: %d accepted, %d rejected\n", ok, rejected);
  // The loader is strict (a vocab id or merge that is off by anything is an error), so most
  // mutants are rejected; the accepted ones are exercised above.
  EXPECT_GT(ok, 20);
  EXPECT_GT(rejected, 300);
}

// ---- SentencePiece tokenizer.model -------------------------------------------------------------

TEST(FuzzSentencePieceModel, ByteMutationsAndTruncationsNeverCrash) {
  const std::string path = test::data_path("golden/tiny-random/llama_quant/hf/tokenizer.model");
  CONTRAIL_REQUIRE_DATA(path);
  const std::vector<uint8_t> base = test::read_bytes(path);
  exercise(detail::parse_sentencepiece_model(base.data(), base.size(), "mutant.model"), "baseline");
  std::mt19937_64 rng(7);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> img = base;
    switch (iter % 4) {
      case 0: img.resize(rng() % img.size()); break;  // truncated anywhere
      case 1:
        for (int e = 0; e < 1 + static_cast<int>(rng() % 4); ++e) img[rng() % img.size()] = static_cast<uint8_t>(rng());
        break;
      case 2:  // a varint run (length or tag) made huge
        for (size_t at = rng() % img.size(), k = 0; k < 5 && at + k < img.size(); ++k) img[at + k] = 0xFF;
        break;
      default:
        img.insert(img.begin() + static_cast<long>(rng() % img.size()), static_cast<uint8_t>(rng()));
        break;
    }
    img.shrink_to_fit();
    VocabData v;
    if (accepted([&] { v = detail::parse_sentencepiece_model(img.data(), img.size(), "mutant.model"); }, "mutant.model",
                 iter)) {
      ++ok;
      exercise(v, "iteration " + std::to_string(iter));
    } else {
      ++rejected;
    }
  }
  std::printf("tokenizer.model mutants: %d accepted, %d rejected\n", ok, rejected);
  EXPECT_GT(rejected, 300);
}

// ---- tiktoken tokenizer.model (Llama 3) --------------------------------------------------------

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += k[(v >> 18) & 63], out += k[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += k[(v >> 18) & 63], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string tiktoken_text() {
  std::string t;
  int rank = 0;
  for (int b = 0; b < 256; ++b) t += base64(std::string(1, static_cast<char>(b))) + " " + std::to_string(rank++) + "\n";
  for (const char* s : {"he", "ll", "llo", "hello", " w", " wo", " wor", " worl", " world"})
    t += base64(s) + " " + std::to_string(rank++) + "\n";
  return t;
}

TEST(FuzzTiktokenModel, LineMutationsNeverCrash) {
  const std::string base = tiktoken_text();
  const VocabData v0 = detail::parse_tiktoken_model(base, "mutant.tiktoken");
  exercise(v0, "baseline");
  const Tokenizer tok(v0);
  EXPECT_EQ(tok.decode(tok.encode("hello world", false)), "hello world");
  EXPECT_THROW(detail::parse_tiktoken_model("aGk= 5\n", "mutant.tiktoken"), FormatError);  // ranks must start at 0
  EXPECT_THROW(detail::parse_tiktoken_model("!!!! 0\n", "mutant.tiktoken"), FormatError);  // not base64
  std::mt19937_64 rng(99);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string text = base;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 3); ++e) mutate_text(text, rng);
    VocabData v;
    if (accepted([&] { v = detail::parse_tiktoken_model(text, "mutant.tiktoken"); }, "mutant.tiktoken", iter)) {
      ++ok;
      exercise(v, "iteration " + std::to_string(iter));
    } else {
      ++rejected;
    }
  }
  std::printf("tiktoken mutants: %d accepted, %d rejected\n", ok, rejected);
  EXPECT_GT(rejected, 100);
}

// ---- tokenizer_config.json & co. beside a real tokenizer.model --------------------------------

void write_json(const test::TempDir& dir, const std::string& name, const std::string& text) {
  dir.write(name, std::vector<uint8_t>(text.begin(), text.end()));
}

TEST(FuzzHfTokenizerDir, ConfigFileMutationsNeverCrash) {
  const std::string src = test::data_path("golden/tiny-random/llama_quant/hf");
  CONTRAIL_REQUIRE_DATA(src + "/tokenizer.model");
  const json tok_config = test::read_json(src + "/tokenizer_config.json");
  const json extra_tok_config = {
      {"added_tokens_decoder",
       {{"0", {{"content", "<unk>"}, {"special", true}, {"lstrip", false}, {"rstrip", false}}},
        {"512", {{"content", "<|im_start|>"}, {"special", true}}}}},
      {"chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}"}};
  const json gen_config = {{"bos_token_id", 1}, {"eos_token_id", json::array({2, 1})}, {"pad_token_id", 0}};
  const json special_map = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}}, {"eos_token", "</s>"}};
  const json config = test::read_json(src + "/config.json");
  std::mt19937_64 rng(31337);
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 300; ++iter) {
    test::TempDir dir("hf_tok_fuzz");
    fs::create_symlink(src + "/tokenizer.model", dir.file("tokenizer.model"));
    json files[] = {tok_config, gen_config, special_map, config};
    files[0].update(extra_tok_config);
    const char* names[] = {"tokenizer_config.json", "generation_config.json", "special_tokens_map.json", "config.json"};
    const size_t victim = rng() % 4;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 2); ++e) mutate_tree(files[victim], rng);
    for (size_t f = 0; f < 4; ++f) {
      std::string text = files[f].dump(-1, ' ', false, json::error_handler_t::replace);
      if (f == victim && rng() % 5 == 0) mutate_text(text, rng);
      write_json(dir, names[f], text);
    }
    VocabData v;
    if (accepted([&] { v = load_hf_tokenizer(dir.path()); }, dir.path(), iter)) {
      ++ok;
      exercise(v, "iteration " + std::to_string(iter));
    } else {
      ++rejected;
    }
  }
  std::printf("tokenizer directory mutants: %d accepted, %d rejected\n", ok, rejected);
  EXPECT_GT(ok, 30);
  EXPECT_GT(rejected, 30);
}

// ---- config.json beside real weights -----------------------------------------------------------

TEST(FuzzHfConfig, MutatedConfigsLoadOrFailClearly) {
  const std::string src = test::data_path("golden/tiny-random/llama_quant/hf");
  CONTRAIL_REQUIRE_DATA(src + "/model.safetensors");
  const json config = test::read_json(src + "/config.json");
  std::mt19937_64 rng(4242);
  int ok = 0, rejected = 0;
  test::TempDir dir("hf_cfg_fuzz");
  fs::create_symlink(src + "/model.safetensors", dir.file("model.safetensors"));
  for (int iter = 0; iter < 400; ++iter) {
    json j = config;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 2); ++e) mutate_tree(j, rng);
    std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (rng() % 5 == 0) mutate_text(text, rng);
    write_json(dir, "config.json", text);
    if (accepted([&] { (void)load_hf_model(dir.path()); }, dir.path(), iter)) ++ok; else ++rejected;
  }
  std::printf("config.json mutants: %d accepted, %d rejected\n", ok, rejected);
  EXPECT_GT(ok, 30);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace contrail
