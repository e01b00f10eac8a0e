// StreamDecoder: token-by-token output must always be valid UTF-8, hold back incomplete
// sequences, and reproduce llama2.c's printed text for stories260K.
#include <gtest/gtest.h>
#include <iconv.h>

#include <cerrno>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"
#include "contrail/tokenizer/tokenizer.h"
#include "contrail/core/utf8.h"
#include "golden.h"
#include "test_util.h"

namespace contrail {
namespace {

using test::data_path;

const std::string kFFFD = "\xEF\xBF\xBD";

// Independent UTF-8 validator: glibc's iconv rejects ill-formed input (overlong forms,
// surrogates, code points above U+10FFFF, truncated sequences).
bool iconv_valid_utf8(const std::string& s) {
  iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
  if (cd == reinterpret_cast<iconv_t>(-1)) throw std::runtime_error("iconv_open failed");
  std::string in = s;
  std::vector<char> out(4 * s.size() + 16);
  char* ip = in.data();
  char* op = out.data();
  size_t il = in.size(), ol = out.size();
  const size_t rc = iconv(cd, &ip, &il, &op, &ol);
  iconv_close(cd);
  return rc != static_cast<size_t>(-1) && il == 0;
}

class StreamDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = data_path("golden/tokenizers/vocab/ggml-vocab-llama-spm.gguf");
    CONTRAIL_REQUIRE_DATA(path);
    tok_ = std::make_unique<Tokenizer>(read_gguf_vocab(*GgufFile::open(path)));
  }
  int32_t id_of(const std::string& piece) const {
    const auto& t = tok_->vocab().tokens;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == piece) return static_cast<int32_t>(i);
    ADD_FAILURE() << "piece '" << piece << "' not in vocabulary";
    return 0;
  }
  int32_t byte_id(uint8_t b) const {
    static constexpr char kHex[] = "0123456789ABCDEF";
    return id_of(std::string{'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'});
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(StreamDecoderTest, HoldsBackEmojiUntilComplete) {
  StreamDecoder d(*tok_);
  const std::string llama = "\xF0\x9F\xA6\x99";  // U+1F999
  EXPECT_EQ(d.push(byte_id(0xF0)), "");
  EXPECT_EQ(d.push(byte_id(0x9F)), "");
  EXPECT_EQ(d.push(byte_id(0xA6)), "");
  EXPECT_EQ(d.push(byte_id(0x99)), llama);
  EXPECT_EQ(d.flush(), "");
  // Text before the partial character comes out at once.
  EXPECT_EQ(d.push(id_of("\xE2\x96\x81the")), " the");
  EXPECT_EQ(d.push(byte_id(0xE2)), "");
  EXPECT_EQ(d.push(byte_id(0x9C)), "");
  EXPECT_EQ(d.push(byte_id(0x85)), "\xE2\x9C\x85");  // U+2705
}

TEST_F(StreamDecoderTest, InvalidBytesBecomeReplacementCharacter) {
  StreamDecoder d(*tok_);
  EXPECT_EQ(d.push(byte_id(0xFF)), kFFFD);           // never valid in UTF-8
  EXPECT_EQ(d.push(byte_id(0x80)), kFFFD);           // stray continuation byte
  EXPECT_EQ(d.push(byte_id(0xE2)), "");              // could still complete ...
  EXPECT_EQ(d.push(byte_id(0x82)), "");
  EXPECT_EQ(d.push(id_of("A")), kFFFD + "A");        // ... but does not: one U+FFFD, then "A"
  EXPECT_EQ(d.push(byte_id(0xED)), "");
  EXPECT_EQ(d.push(byte_id(0xA0)), kFFFD + kFFFD);   // surrogate U+D800..: ED then A0, each replaced
  EXPECT_EQ(d.push(byte_id(0xC0)), kFFFD);           // overlong lead byte
  EXPECT_EQ(d.push(byte_id(0xF0)), "");
  EXPECT_EQ(d.push(byte_id(0x9F)), "");
  EXPECT_EQ(d.flush(), kFFFD);                       // incomplete at the end
  EXPECT_EQ(d.flush(), "");
}

TEST_F(StreamDecoderTest, ControlTokensAreSilent) {
  StreamDecoder d(*tok_, /*strip_leading_space=*/true);
  EXPECT_EQ(d.push(1), "");  // BOS
  EXPECT_EQ(d.push(id_of("\xE2\x96\x81Hello")), "Hello");
  EXPECT_EQ(d.push(id_of("\xE2\x96\x81world")), " world");
  EXPECT_EQ(d.push(2), "");  // EOS
}

TEST_F(StreamDecoderTest, RandomStreamsStayValidUtf8) {
  std::mt19937 rng(1234);
  // Mostly byte tokens (the interesting case), plus any token of the vocabulary.
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(tok_->n_vocab()) - 1);
  std::uniform_int_distribution<int> byte(0, 255), coin(0, 3);
  for (int stream = 0; stream < 200; ++stream) {
    StreamDecoder d(*tok_, stream % 2 == 0);
    std::string all;
    for (int i = 0; i < 64; ++i) {
      const int32_t id = coin(rng) == 0 ? any(rng) : byte_id(static_cast<uint8_t>(byte(rng)));
      const std::string piece = d.push(id);
      ASSERT_TRUE(iconv_valid_utf8(piece)) << "stream " << stream << " token " << i;
      all += piece;
    }
    const std::string tail = d.flush();
    ASSERT_TRUE(iconv_valid_utf8(tail));
    all += tail;
    ASSERT_TRUE(iconv_valid_utf8(all));
    EXPECT_TRUE(utf8::is_valid(all));
  }
}

TEST_F(StreamDecoderTest, ValidTextPassesThroughUnchanged) {
  const std::string text = "Les na\xC3\xAF" "fs \xF0\x9F\xA6\x99 \xE6\x88\x91\xE6\x83\xB3 \xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE!";
  const auto ids = tok_->encode(text, true);
  const std::string joined = tok_->decode(ids);
  ASSERT_TRUE(iconv_valid_utf8(joined));
  StreamDecoder d(*tok_);
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string piece = d.push(id);
    ASSERT_TRUE(iconv_valid_utf8(piece));
    streamed += piece;
  }
  streamed += d.flush();
  EXPECT_EQ(streamed, joined);
  EXPECT_EQ(streamed, " " + text);
}

TEST(Utf8, AgreesWithIconv) {
  // Boundary cases of Unicode Table 3-7, each alone and inside text.
  const std::vector<std::string> cases = {
      "", "a", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
      "\x80", "\xC0\x80", "\xC1\xBF", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xED\x9F\xBF", "\xF0\x8F\xBF\xBF",
      "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xE2\x82", "\xF0\x9F\xA6"};
  for (const auto& c : cases) {
    EXPECT_EQ(utf8::is_valid(c), iconv_valid_utf8(c)) << ::testing::PrintToString(c);
    EXPECT_EQ(utf8::is_valid("x" + c + "y"), iconv_valid_utf8("x" + c + "y")) << ::testing::PrintToString(c);
    std::string sanitized;
    utf8::append_sanitized(sanitized, c);
    EXPECT_TRUE(iconv_valid_utf8(sanitized)) << ::testing::PrintToString(c);
  }
}

// llama2.c prints the prompt pieces after BOS and then every sampled piece, with the leading space
// of the first piece removed, followed by "\n". Its stdout for stories260K is the reference.
TEST(StreamDecoderStories, MatchesLlama2cStdout) {
  const std::string tok_path = data_path("models/stories260K/tok512.bin");
  CONTRAIL_REQUIRE_DATA(tok_path);
  CONTRAIL_REQUIRE_DATA(data_path("golden/stories260K/llama2c"));
  const Tokenizer tok(load_llama2c_vocab(tok_path, 512));
  size_t n = 0;
  for (const std::string& name : test::stories_cases()) {
    const std::string base = data_path("golden/stories260K/llama2c/" + name);
    CONTRAIL_REQUIRE_DATA(base + ".json");
    const nlohmann::json golden = test::read_json(base + ".json");
    std::vector<int32_t> ids = golden["prompt_ids_with_bos"].get<std::vector<int32_t>>();
    for (const int32_t id : golden["generated_ids"]) ids.push_back(id);
    StreamDecoder d(tok, /*strip_leading_space=*/true);
    std::string text;
    for (const int32_t id : ids) text += d.push(id);
    text += d.flush();
    EXPECT_EQ(text + "\n", test::read_text(base + ".stdout.txt")) << name;
    ++n;
  }
  test::require_cases(n, "stories260K llama2.c outputs");
}

}  // namespace
}  // namespace contrail
