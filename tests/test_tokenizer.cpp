// Tokenizer tests against independent references: llama2.c's prompt ids for stories260K, the
// tiny-random models' llama-tokenize sequences, and hand-checked pieces and behaviours
// (SentencePiece and byte-level BPE). llama.cpp's test-tokenizer-0 vectors: test_tokenizer_vectors.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/tokenizer.h"
#include "contrail/tokenizer/vocab.h"
#include "golden.h"
#include "tokenizer/pre_tokenizer.h"
#include "contrail/core/utf8.h"
#include "test_util.h"

namespace contrail {
namespace {

using test::data_path;

constexpr const char* kTok512 = "models/stories260K/tok512.bin";
constexpr const char* kStoriesGguf = "models/stories260K/stories260K.gguf";
constexpr const char* kLlamaSpmVocab = "golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf";

VocabData gguf_vocab(const std::string& path) { return read_gguf_vocab(*GgufFile::open(path)); }

int32_t id_of(const Tokenizer& tok, const std::string& piece) {
  const auto& t = tok.vocab().tokens;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] == piece) return static_cast<int32_t>(i);
  ADD_FAILURE() << "piece '" << piece << "' not in vocabulary";
  return -1;
}

// The llama.cpp test-tokenizer-0 vectors for every shipped vocabulary, through GGUF and through
// the Hugging Face files, are in test_tokenizer_vectors.cpp.

// ---- stories260K: llama2.c tokenizer.bin vs GGUF vs llama2.c's own prompt ids -------------

TEST(Llama2cVocab, SameVocabularyAsGguf) {
  CONTRAIL_REQUIRE_DATA(data_path(kTok512));
  CONTRAIL_REQUIRE_DATA(data_path(kStoriesGguf));
  const VocabData bin = load_llama2c_vocab(data_path(kTok512), 512);
  const VocabData gguf = gguf_vocab(data_path(kStoriesGguf));
  ASSERT_EQ(bin.tokens.size(), 512u);
  EXPECT_EQ(bin.tokens, gguf.tokens);
  EXPECT_EQ(bin.scores, gguf.scores);
  EXPECT_EQ(bin.types, gguf.types);
  EXPECT_EQ(bin.types[0], TokenType::Unknown);
  EXPECT_EQ(bin.types[1], TokenType::Control);
  EXPECT_EQ(bin.types[2], TokenType::Control);
  EXPECT_EQ(bin.types[3 + 0x0A], TokenType::Byte);
  EXPECT_EQ(bin.tokens[3 + 0x0A], "<0x0A>");
  EXPECT_EQ(bin.bos_id, gguf.bos_id);
  EXPECT_EQ(bin.eos_id, gguf.eos_id);
  EXPECT_EQ(bin.unk_id, gguf.unk_id);
  EXPECT_EQ(bin.add_bos, gguf.add_bos);
  EXPECT_EQ(bin.add_space_prefix, gguf.add_space_prefix);
}

TEST(Llama2cVocab, PromptIdsMatchLlama2c) {
  CONTRAIL_REQUIRE_DATA(data_path(kTok512));
  CONTRAIL_REQUIRE_DATA(data_path(kStoriesGguf));
  const Tokenizer from_bin(load_llama2c_vocab(data_path(kTok512), 512));
  CONTRAIL_REQUIRE_DATA(data_path("golden/stories260K/llama2c"));
  const Tokenizer from_gguf(gguf_vocab(data_path(kStoriesGguf)));
  size_t n = 0;
  for (const std::string& name : test::stories_cases()) {
    const std::string base = data_path("golden/stories260K/llama2c/" + name);
    CONTRAIL_REQUIRE_DATA(base + ".json");
    const std::string prompt = test::read_text(base + ".prompt.txt");
    const auto expected = test::read_json(base + ".json")["prompt_ids_with_bos"].get<std::vector<int32_t>>();
    ASSERT_FALSE(expected.empty()) << name;
    EXPECT_EQ(from_bin.encode(prompt, /*add_special=*/true), expected) << name;
    EXPECT_EQ(from_gguf.encode(prompt, /*add_special=*/true), expected) << name;
    ++n;
  }
  test::require_cases(n, "stories260K prompts");
}

// The tiny-random models' text sequences are "first N tokens of llama-tokenize(TEXT)" (with BOS
// exactly when the vocab says so); all but gpt2 use SentencePiece vocabularies, some without the
// dummy prefix (gemma) or without BOS (qwen2 small-vocab variant).
class TinyRandomSequences : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyRandomSequences, PrefixOfLlamaTokenize) {
  const std::string dir = data_path(std::string("golden/tiny-random/") + GetParam());
  CONTRAIL_REQUIRE_DATA(dir + "/golden/summary.json");
  const nlohmann::json summary = test::read_json(dir + "/golden/summary.json");
  const Tokenizer tok(gguf_vocab(dir + "/gguf/model.gguf"));
  int checked = 0;
  for (const auto& seq : summary["sequences"]) {
    const std::string how = seq["how"];
    const size_t at = how.find("llama-tokenize(");
    if (at == std::string::npos) continue;  // random ids
    const std::string key = how.substr(at + 15, how.find(')', at) - at - 15);
    const std::string text = summary["texts"][key];
    const auto expected = seq["ids"].get<std::vector<int32_t>>();
    auto ids = tok.encode(text, /*add_special=*/true);
    ASSERT_GE(ids.size(), expected.size()) << seq["name"];
    ids.resize(expected.size());
    EXPECT_EQ(ids, expected) << seq["name"] << ": " << text;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

INSTANTIATE_TEST_SUITE_P(Spm, TinyRandomSequences,
                         ::testing::Values("llama", "mistral", "llama_quant", "phi3", "gemma", "gemma2", "qwen2"));

// ---- encode/decode behaviour ---------------------------------------------------------------

class SpmVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    CONTRAIL_REQUIRE_DATA(data_path(kLlamaSpmVocab));
    tok_ = std::make_unique<Tokenizer>(gguf_vocab(data_path(kLlamaSpmVocab)));
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(SpmVocab, VocabMetadata) {
  EXPECT_EQ(tok_->n_vocab(), 32000);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->vocab().unk_id, 0);
  EXPECT_TRUE(tok_->vocab().add_bos);
  EXPECT_FALSE(tok_->vocab().add_eos);
  EXPECT_TRUE(tok_->vocab().add_space_prefix);
  EXPECT_TRUE(tok_->is_eog(2));
  EXPECT_FALSE(tok_->is_eog(1));
  EXPECT_FALSE(tok_->is_eog(id_of(*tok_, "\xE2\x96\x81the")));
}

TEST_F(SpmVocab, AddSpecialPrependsBos) {
  const auto plain = tok_->encode("Hello world", false);
  const auto with_bos = tok_->encode("Hello world", true);
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], 1);
  EXPECT_EQ(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()), plain);
  // Like sentencepiece: "" -> [] without specials, [BOS] with them.
  EXPECT_TRUE(tok_->encode("", false).empty());
  EXPECT_EQ(tok_->encode("", true), std::vector<int32_t>{1});
}

TEST_F(SpmVocab, ParseSpecial) {
  // Control-token text is matched only with parse_special; the raw text after a special token
  // gets the dummy-prefix space again (llama.cpp / sentencepiece behaviour).
  const auto hello = tok_->encode("Hello", false);
  std::vector<int32_t> expected{1};
  expected.insert(expected.end(), hello.begin(), hello.end());
  expected.push_back(2);
  EXPECT_EQ(tok_->encode("<s>Hello</s>", false, /*parse_special=*/true), expected);

  const auto literal = tok_->encode("<s>Hello</s>", false, /*parse_special=*/false);
  for (const int32_t id : literal) EXPECT_NE(tok_->vocab().types[id], TokenType::Control);
  EXPECT_EQ(tok_->decode(literal), " <s>Hello</s>");
}

TEST_F(SpmVocab, TokenToBytes) {
  EXPECT_EQ(tok_->token_to_bytes(id_of(*tok_, "<0x0A>")), "\n");
  EXPECT_EQ(tok_->token_to_bytes(id_of(*tok_, "<0xF0>")), "\xF0");
  EXPECT_EQ(tok_->token_to_bytes(id_of(*tok_, "\xE2\x96\x81the")), " the");
  EXPECT_EQ(tok_->token_to_bytes(1), "");
  EXPECT_EQ(tok_->token_to_bytes(1, /*render_special=*/true), "<s>");
  EXPECT_EQ(tok_->token_to_bytes(0), "");
  EXPECT_EQ(tok_->token_to_bytes(0, true), "<unk>");
  EXPECT_THROW(tok_->token_to_bytes(32000), InvalidArgument);
  EXPECT_THROW(tok_->token_to_bytes(-1), InvalidArgument);
}

TEST_F(SpmVocab, ByteFallbackForUnknownCharacters) {
  // U+1F999 is not a piece of the llama vocabulary: it falls back to its four UTF-8 bytes.
  const auto ids = tok_->encode("\xF0\x9F\xA6\x99", false);
  const std::vector<int32_t> expected{id_of(*tok_, "\xE2\x96\x81"), id_of(*tok_, "<0xF0>"), id_of(*tok_, "<0x9F>"),
                                      id_of(*tok_, "<0xA6>"), id_of(*tok_, "<0x99>")};
  EXPECT_EQ(ids, expected);
}

// decode(encode(x)) gives x back behind SentencePiece's dummy-prefix space.
void expect_round_trip(const Tokenizer& tok, const std::string& text) {
  const auto ids = tok.encode(text, /*add_special=*/true);
  EXPECT_EQ(tok.decode(ids), " " + text) << "text: " << text;
  StreamDecoder stream(tok, /*strip_leading_space=*/true);
  std::string streamed;
  for (const int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  EXPECT_EQ(streamed, text) << "text: " << text;
}

const std::vector<std::string> kRoundTripTexts = {
    "Hello world",
    "  leading spaces, trailing spaces  ",
    "tabs\tand\nnewlines\r\n",
    "ASCII punctuation: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "na\xC3\xAFve caf\xC3\xA9 \xC3\x84pfel",                                  // 2-byte UTF-8
    "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8",  // Cyrillic + CJK
    "\xE1\x9E\x80\xE1\x9E\xB6\xE1\x9E\x93\xE1\x9F\x8B",                      // Khmer
    "emoji \xF0\x9F\xA6\x99 \xF0\x9F\x9A\x80 \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F \xE2\x9C\x85",
};

TEST_F(SpmVocab, RoundTrip) {
  for (const auto& text : kRoundTripTexts) expect_round_trip(*tok_, text);
}

TEST_F(SpmVocab, ArbitraryBytesRoundTrip) {
  // Byte fallback makes any byte string (even ill-formed UTF-8) encodable and exactly decodable.
  // Two exclusions, both faithful to llama.cpp/sentencepiece: a literal U+2581 reads as a space,
  // and a space right after a truncated multi-byte lead is swallowed into that lead's "character"
  // (split by lead-byte length), so its U+2581 comes back as raw bytes.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), len(1, 48);
  for (int i = 0; i < 300; ++i) {
    std::string text(static_cast<size_t>(len(rng)), '\0');
    for (char& c : text) {
      do c = static_cast<char>(byte(rng));
      while (c == ' ');
    }
    if (text.find("\xE2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ(tok_->decode(tok_->encode(text, false)), " " + text) << ::testing::PrintToString(text);
  }
}

TEST(Llama2cVocab, RoundTripWithSmallVocab) {
  // 512 pieces: most non-ASCII text goes through byte fallback.
  CONTRAIL_REQUIRE_DATA(data_path(kTok512));
  const Tokenizer tok(load_llama2c_vocab(data_path(kTok512), 512));
  for (const auto& text : kRoundTripTexts) expect_round_trip(tok, text);
}

TEST(Phi3Vocab, EndOfGenerationTokens) {
  const std::string path = data_path("golden/tokenizers/vocab/ggml-vocab-phi-3.gguf");
  CONTRAIL_REQUIRE_DATA(path);
  const Tokenizer tok(gguf_vocab(path));
  EXPECT_EQ(tok.eos_id(), 32000);
  EXPECT_TRUE(tok.is_eog(id_of(tok, "<|endoftext|>")));
  EXPECT_TRUE(tok.is_eog(id_of(tok, "<|end|>")));
  EXPECT_FALSE(tok.is_eog(id_of(tok, "<|user|>")));
  // "<|user|>" is a control token: parsed only when asked to.
  const int32_t user = id_of(tok, "<|user|>");
  EXPECT_EQ(tok.encode("<|user|>", false, true), std::vector<int32_t>{user});
  const auto literal = tok.encode("<|user|>", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), user), 0);
  EXPECT_EQ(tok.decode(tok.encode("Hi<|end|>", false, true)), " Hi");
  EXPECT_EQ(tok.decode(tok.encode("Hi<|end|>", false, true), true), " Hi<|end|>");
}

// ---- byte-level BPE (GPT-2, Llama 3, Qwen2) ------------------------------------------------

constexpr const char* kGpt2Vocab = "golden/tokenizers/vocab/ggml-vocab-gpt-2.gguf";
constexpr const char* kLlamaBpeVocab = "golden/tokenizers/vocab/ggml-vocab-llama-bpe.gguf";

class BytePairVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    CONTRAIL_REQUIRE_DATA(data_path(kGpt2Vocab));
    VocabData v = gguf_vocab(data_path(kGpt2Vocab));
    // GPT-2's detokenizer cleans up spaces (" !" -> "!"), which is lossy by design; the round
    // trips below check the tokenizer, so they decode without it.
    v.clean_up_spaces = false;
    tok_ = std::make_unique<Tokenizer>(std::move(v));
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(BytePairVocab, VocabMetadata) {
  const VocabData& v = tok_->vocab();
  EXPECT_EQ(v.kind, VocabKind::BytePair);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_FALSE(v.merges.empty());
  EXPECT_FALSE(v.pre_patterns.empty());
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_FALSE(v.add_bos);
  EXPECT_EQ(tok_->n_vocab(), 50257);
  EXPECT_TRUE(tok_->is_eog(id_of(*tok_, "<|endoftext|>")));
}

TEST_F(BytePairVocab, KnownPieces) {
  // GPT-2's well-known ids; no dummy prefix, the space belongs to the following word.
  EXPECT_EQ(tok_->encode("Hello world", false), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok_->encode(" Hello", false), std::vector<int32_t>{18435});
  EXPECT_TRUE(tok_->encode("", false).empty());
  EXPECT_TRUE(tok_->encode("", true).empty());  // add_bos is false for gpt-2
  EXPECT_EQ(tok_->token_to_bytes(id_of(*tok_, "\xC4\xA0world")), " world");  // U+0120 spells ' '
  EXPECT_EQ(tok_->token_to_bytes(id_of(*tok_, "\xC4\x8A")), "\n");           // U+010A spells '\n'
}

TEST_F(BytePairVocab, RoundTripValidUtf8) {
  for (const auto& text : kRoundTripTexts) {
    const auto ids = tok_->encode(text, false);
    EXPECT_EQ(tok_->decode(ids), text) << ::testing::PrintToString(text);
    StreamDecoder stream(*tok_);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    EXPECT_EQ(streamed + stream.flush(), text) << ::testing::PrintToString(text);
  }
  // Random well-formed UTF-8 from many scripts, planes and whitespace kinds.
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x2FF}, {0x300, 0x36F}, {0x400, 0x4FF}, {0x590, 0x6FF}, {0x900, 0x97F},
      {0xE00, 0xE7F}, {0x2000, 0x206F}, {0x3000, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xE000, 0xF8FF},
      {0xFE00, 0xFFFD}, {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}};
  std::mt19937 rng(11);
  std::uniform_int_distribution<size_t> pick(0, ranges.size() - 1);
  std::uniform_int_distribution<int> len(1, 40);
  for (int i = 0; i < 300; ++i) {
    std::string text;
    for (int k = len(rng); k > 0; --k) {
      const auto [lo, hi] = ranges[pick(rng)];
      uint32_t cp = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      append_utf8(text, cp);
    }
    EXPECT_EQ(tok_->decode(tok_->encode(text, false)), text) << ::testing::PrintToString(text);
  }
}

TEST_F(BytePairVocab, IllFormedUtf8BecomesReplacementCharacters) {
  // llama.cpp's convention (unicode_cpts_from_utf8): each byte that does not start a leniently
  // decoded character becomes U+FFFD; overlong forms are decoded (and re-encoded shortest).
  const std::string fffd = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xFF", fffd},
      {"a\x80" "b", "a" + fffd + "b"},
      {"\xC3", fffd},                                   // truncated 2-byte sequence at the end
      {"\xE2\x82", fffd + fffd},                        // truncated 3-byte sequence: lead, then stray
      {"\xE2\x82 x", fffd + fffd + " x"},               // interrupted by a space
      {"\xC0\xAF", "/"},                                // overlong '/'
      {"ok \xF8\x88\x80\x80\x80!", "ok " + fffd + fffd + fffd + fffd + fffd + "!"},  // 5-byte form
  };
  for (const auto& [in, expected] : cases)
    EXPECT_EQ(tok_->decode(tok_->encode(in, false)), expected) << ::testing::PrintToString(in);
  // Any byte string encodes (never throws) and decodes to exactly its llama.cpp-sanitised form.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255), len(1, 48);
  for (int i = 0; i < 300; ++i) {
    std::string text(static_cast<size_t>(len(rng)), '\0');
    for (char& c : text) c = static_cast<char>(byte(rng));
    EXPECT_EQ(tok_->decode(tok_->encode(text, false)), detail::prepare_text(text, false).text)
        << ::testing::PrintToString(text);
  }
}

TEST_F(BytePairVocab, ParseSpecial) {
  const int32_t eot = id_of(*tok_, "<|endoftext|>");
  EXPECT_EQ(tok_->encode("<|endoftext|>", false, /*parse_special=*/true), std::vector<int32_t>{eot});
  auto expected = tok_->encode("Hi", false);
  expected.push_back(eot);
  const auto there = tok_->encode(" there", false);
  expected.insert(expected.end(), there.begin(), there.end());
  EXPECT_EQ(tok_->encode("Hi<|endoftext|> there", false, true), expected);
  // Without parse_special the control token's text is ordinary text.
  const auto literal = tok_->encode("Hi<|endoftext|> there", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), eot), 0);
  EXPECT_EQ(tok_->decode(literal), "Hi<|endoftext|> there");
  EXPECT_EQ(tok_->decode(tok_->encode("Hi<|endoftext|>", false, true)), "Hi");
  EXPECT_EQ(tok_->decode(tok_->encode("Hi<|endoftext|>", false, true), true), "Hi<|endoftext|>");
}

TEST(BytePairAddedTokens, UserDefinedNeverSplit) {
  CONTRAIL_REQUIRE_DATA(data_path(kGpt2Vocab));
  VocabData v = gguf_vocab(data_path(kGpt2Vocab));
  // A user-defined token is matched verbatim in raw text, with or without parse_special, and the
  // text around it is tokenized as separate fragments (llama.cpp's tokenizer_st_partition).
  const auto added = static_cast<int32_t>(v.tokens.size());
  v.tokens.push_back("hello world");
  v.types.push_back(TokenType::UserDefined);
  if (!v.scores.empty()) v.scores.push_back(0.0f);
  const Tokenizer tok(v);
  for (const bool parse_special : {false, true}) {
    auto expected = tok.encode("say ", false);
    expected.push_back(added);
    const auto tail = tok.encode("! hello", false);
    expected.insert(expected.end(), tail.begin(), tail.end());
    EXPECT_EQ(tok.encode("say hello world! hello", false, parse_special), expected);
    EXPECT_EQ(tok.encode("hello worldhello world", false, parse_special), (std::vector<int32_t>{added, added}));
  }
  EXPECT_EQ(tok.token_to_bytes(added), "hello world");
  EXPECT_EQ(tok.decode(tok.encode("a hello world b", false)), "a hello world b");
}

TEST(BytePairLlama3, SpecialTokensAndBos) {
  const std::string path = data_path(kLlamaBpeVocab);
  CONTRAIL_REQUIRE_DATA(path);
  const Tokenizer tok(gguf_vocab(path));
  const int32_t bot = id_of(tok, "<|begin_of_text|>");
  const int32_t eot = id_of(tok, "<|eot_id|>");
  EXPECT_EQ(bot, 128000);
  EXPECT_EQ(tok.bos_id(), bot);
  EXPECT_TRUE(tok.vocab().add_bos);
  EXPECT_TRUE(tok.vocab().ignore_merges);
  EXPECT_TRUE(tok.is_eog(eot));
  const auto hi = tok.encode("Hi", false);
  std::vector<int32_t> expected{bot};
  expected.insert(expected.end(), hi.begin(), hi.end());
  EXPECT_EQ(tok.encode("Hi", /*add_special=*/true), expected);
  expected.push_back(eot);
  EXPECT_EQ(tok.encode("<|begin_of_text|>Hi<|eot_id|>", false, /*parse_special=*/true), expected);
  const auto literal = tok.encode("<|begin_of_text|>Hi<|eot_id|>", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), bot), 0);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), eot), 0);
  EXPECT_EQ(tok.decode(literal), "<|begin_of_text|>Hi<|eot_id|>");
}

// ---- malformed inputs ----------------------------------------------------------------------

// Runs `fn`, expects a FormatError whose message contains every string of `needles`.
template <typename Fn>
void expect_format_error(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected FormatError mentioning " << ::testing::PrintToString(needles);
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

class MalformedTokenizerBin : public ::testing::Test {
 protected:
  void SetUp() override {
    CONTRAIL_REQUIRE_DATA(data_path(kTok512));
    good_ = test::read_bytes(data_path(kTok512));
  }
  // Writes `bytes` to a file in this test's temporary directory and returns its path.
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) {
    return dir_.write(name + ".bin", bytes);
  }
  // Offset of token i's int32 length field in the good file.
  size_t length_offset(int token) const {
    size_t off = 4;
    for (int i = 0; i < token; ++i) {
      int32_t len;
      std::memcpy(&len, good_.data() + off + 4, 4);
      off += 8 + len;
    }
    return off + 4;
  }
  void set_i32(std::vector<uint8_t>& b, size_t off, int32_t v) { std::memcpy(b.data() + off, &v, 4); }
  std::vector<uint8_t> good_;
  test::TempDir dir_{"contrail_tok"};
};

TEST_F(MalformedTokenizerBin, Truncated) {
  const std::vector<uint8_t> cut(good_.begin(), good_.begin() + good_.size() / 2);
  const std::string path = write("truncated", cut);
  expect_format_error([&] { load_llama2c_vocab(path, 512); }, {path, "vocab_size 512"});
  // Cut inside a token's text: n_vocab small enough to pass the size bound.
  const size_t cut_in_text = length_offset(3) + 4 + 2;  // 2 bytes into token 3's text
  const std::string path2 =
      write("truncated_text", std::vector<uint8_t>(good_.begin(), good_.begin() + cut_in_text));
  expect_format_error([&] { load_llama2c_vocab(path2, 4); }, {path2, "truncated", "token 3 text"});
  expect_format_error([&] { load_llama2c_vocab(write("empty", {}), 512); }, {"vocab_size"});
}

TEST_F(MalformedTokenizerBin, NegativeAndHugeLengths) {
  auto neg = good_;
  set_i32(neg, length_offset(300), -5);
  const std::string p1 = write("neg", neg);
  expect_format_error([&] { load_llama2c_vocab(p1, 512); }, {p1, "token 300 length", "-5"});
  auto huge = good_;
  set_i32(huge, length_offset(300), 0x7fffffff);
  const std::string p2 = write("huge", huge);
  expect_format_error([&] { load_llama2c_vocab(p2, 512); }, {p2, "token 300 length", "2147483647"});
  auto bad_max = good_;
  set_i32(bad_max, 0, 0);
  const std::string p3 = write("max0", bad_max);
  expect_format_error([&] { load_llama2c_vocab(p3, 512); }, {p3, "max_token_length"});
}

TEST_F(MalformedTokenizerBin, VocabSizeMismatch) {
  const std::string path = write("good", good_);
  EXPECT_NO_THROW(load_llama2c_vocab(path, 512));
  expect_format_error([&] { load_llama2c_vocab(path, 511); }, {path, "trailing"});
  expect_format_error([&] { load_llama2c_vocab(path, 513); }, {path, "truncated"});
  expect_format_error([&] { load_llama2c_vocab(path, -512); }, {path, "vocab_size"});
  expect_format_error([&] { load_llama2c_vocab(path, int64_t{1} << 40); }, {path, "vocab_size"});
}

VocabData small_vocab() {
  VocabData v;
  v.tokens = {"<unk>", "<s>", "</s>", "<0x41>", "\xE2\x96\x81" "a", "b"};
  v.scores = {0, 0, 0, 0, -1, -2};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Byte, TokenType::Normal,
             TokenType::Normal};
  v.bos_id = 1, v.eos_id = 2, v.unk_id = 0;
  return v;
}

TEST(VocabValidate, RejectsInconsistentData) {
  EXPECT_NO_THROW(small_vocab().validate("x.gguf"));
  {
    auto v = small_vocab();
    v.scores.pop_back();
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "scores", "5", "6"});
  }
  {
    auto v = small_vocab();
    v.types.push_back(TokenType::Normal);
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "token_type", "7", "6"});
  }
  {
    auto v = small_vocab();
    v.bos_id = 6;
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "bos_token_id", "6"});
    EXPECT_THROW(Tokenizer{v}, FormatError);
  }
  {
    auto v = small_vocab();
    v.eos_id = -7;
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "eos_token_id", "-7"});
  }
  {
    auto v = small_vocab();
    v.bos_id = -1;  // unset is fine unless BOS must be added
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "add_bos_token"});
    v.add_bos = false;
    EXPECT_NO_THROW(v.validate("x.gguf"));
  }
  {
    auto v = small_vocab();
    v.tokens[5] = "<s>";
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "duplicate", "<s>"});
  }
  {
    auto v = small_vocab();
    v.types[5] = TokenType::Byte;
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "token 5", "Byte"});
  }
  {
    auto v = small_vocab();
    v.types[4] = static_cast<TokenType>(42);
    expect_format_error([&] { v.validate("x.gguf"); }, {"x.gguf", "token_type[4]", "42"});
  }
  expect_format_error([] { VocabData{}.validate("x.gguf"); }, {"x.gguf", "no tokens"});
}

// GGUF images built in memory with GgufWriter, parsed back with GgufFile::parse.
std::shared_ptr<GgufFile> parse_gguf(const GgufWriter& w, const std::string& name) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(w.serialize());
  return GgufFile::parse(bytes, bytes->data(), bytes->size(), name);
}

GgufWriter small_gguf() {
  const VocabData v = small_vocab();
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_f32_array("tokenizer.ggml.scores", v.scores);
  std::vector<int32_t> types;
  for (const TokenType t : v.types) types.push_back(static_cast<int32_t>(t));
  w.set_i32_array("tokenizer.ggml.token_type", types);
  return w;
}

TEST(GgufVocab, DefaultsLikeLlamaCpp) {
  const VocabData v = read_gguf_vocab(*parse_gguf(small_gguf(), "small.gguf"));
  EXPECT_EQ(v.kind, VocabKind::SentencePiece);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_EQ(v.pad_id, -1);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_TRUE(v.chat_template.empty());

  auto w = small_gguf();
  w.set_u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);  // "none", as converters write it
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_string("tokenizer.chat_template", "{{ x }}");
  const VocabData v2 = read_gguf_vocab(*parse_gguf(w, "small.gguf"));
  EXPECT_EQ(v2.pad_id, -1);
  EXPECT_FALSE(v2.add_space_prefix);
  EXPECT_EQ(v2.chat_template, "{{ x }}");
  // Without the dummy prefix "a" is not "\u2581a": byte fallback for 'a' is absent -> unk.
  const Tokenizer tok(v2);
  EXPECT_EQ(tok.encode(" a", false), std::vector<int32_t>{4});
  EXPECT_EQ(tok.encode("A", false), std::vector<int32_t>{3});
  EXPECT_EQ(tok.encode("c", false), std::vector<int32_t>{0});
}

TEST(GgufVocab, RejectsMalformedKeys) {
  {
    auto w = small_gguf();
    w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0});
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "bad_scores.gguf")); }, {"bad_scores.gguf", "scores"});
  }
  {
    auto w = small_gguf();
    w.set_i32_array("tokenizer.ggml.token_type", {1, 1});
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "bad_types.gguf")); }, {"bad_types.gguf", "token_type"});
  }
  {
    auto w = small_gguf();
    w.set_u32("tokenizer.ggml.bos_token_id", 99);
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "bad_bos.gguf")); }, {"bad_bos.gguf", "bos_token_id", "99"});
  }
  {
    auto w = small_gguf();
    w.set_string("tokenizer.ggml.model", "t5");
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "t5.gguf")); }, {"t5.gguf", "tokenizer.ggml.model", "t5"});
  }
  {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "llama");
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "no_tokens.gguf")); },
                        {"no_tokens.gguf", "tokenizer.ggml.tokens"});
  }
  {
    auto w = small_gguf();
    w.set_string("tokenizer.ggml.model", "gpt2");  // needs merges
    expect_format_error([&] { read_gguf_vocab(*parse_gguf(w, "no_merges.gguf")); },
                        {"no_merges.gguf", "tokenizer.ggml.merges"});
  }
}

}  // namespace
}  // namespace contrail
