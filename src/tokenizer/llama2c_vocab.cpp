// llama2.c tokenizer.bin reader. Layout (little-endian):
//   int32 max_token_length
//   n_vocab x { float32 score, int32 len, len bytes of piece text }
// The exporter wrote SentencePiece pieces with U+2581 replaced by ' ', and BOS/EOS as "\n<s>\n" /
// "\n</s>\n". We undo both so the result equals the GGUF vocabulary of the same model.
#include <fmt/format.h>

#include <string>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/tokenizer/vocab.h"

namespace contrail {

namespace {

constexpr int32_t kUnkId = 0, kBosId = 1, kEosId = 2;

bool is_byte_piece(const std::string& p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

// Restores the SentencePiece space marker U+2581 that the exporter turned into ' '.
std::string escape_spaces(const std::string& piece) {
  std::string out;
  out.reserve(piece.size());
  for (const char c : piece) {
    if (c == ' ')
      out += "\xE2\x96\x81";
    else
      out += c;
  }
  return out;
}

}  // namespace

VocabData load_llama2c_vocab(const std::string& path, int64_t n_vocab) {
  const auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);

  // Each entry takes at least 8 bytes, which bounds n_vocab before anything is allocated.
  const size_t max_entries = file->size() < 4 ? 0 : (file->size() - 4) / 8;
  if (n_vocab < 3 || static_cast<uint64_t>(n_vocab) > max_entries)
    throw FormatError(fmt::format("{}: vocab_size {} from the model header does not fit this tokenizer.bin "
                                  "(needs 3 <= vocab_size <= {} for a file of {} bytes)",
                                  path, n_vocab, max_entries, file->size()));

  const int32_t max_token_length = r.i32("max_token_length");
  if (max_token_length <= 0)
    throw FormatError(fmt::format("{}: max_token_length = {} at offset 0 must be positive", path, max_token_length));

  VocabData v;
  v.kind = VocabKind::SentencePiece;
  v.model = "llama";
  v.bos_id = kBosId;
  v.eos_id = kEosId;
  v.unk_id = kUnkId;
  v.add_bos = true;
  v.add_eos = false;
  v.add_space_prefix = true;
  v.tokens.reserve(static_cast<size_t>(n_vocab));
  v.scores.reserve(static_cast<size_t>(n_vocab));
  v.types.reserve(static_cast<size_t>(n_vocab));

  for (int64_t i = 0; i < n_vocab; ++i) {
    // Bounds are checked here so that the error names the token (ByteReader re-checks them).
    const auto need = [&](size_t bytes, const char* field) {
      if (r.remaining() < bytes)
        throw FormatError(fmt::format("{}: truncated while reading token {} {} ({} bytes needed at offset {}, "
                                      "file size {})",
                                      path, i, field, bytes, r.offset(), file->size()));
    };
    need(8, "score");
    const float score = r.f32("token score");
    const size_t len_offset = r.offset();
    const int32_t len = r.i32("token length");
    if (len < 0 || len > max_token_length)
      throw FormatError(fmt::format("{}: token {} length = {} at offset {} is outside [0, max_token_length {}]", path,
                                    i, len, len_offset, max_token_length));
    need(static_cast<size_t>(len), "text");
    const uint8_t* p = r.bytes(static_cast<size_t>(len), "token text");
    std::string piece(reinterpret_cast<const char*>(p), static_cast<size_t>(len));

    TokenType type = TokenType::Normal;
    if (i == kUnkId) {
      type = TokenType::Unknown;
    } else if (i == kBosId || i == kEosId) {
      type = TokenType::Control;
      if (piece == "\n<s>\n") piece = "<s>";
      if (piece == "\n</s>\n") piece = "</s>";
    } else if (is_byte_piece(piece)) {
      type = TokenType::Byte;
    } else {
      piece = escape_spaces(piece);
    }
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  if (r.remaining() != 0)
    throw FormatError(fmt::format("{}: {} trailing bytes after the {} tokens (offset {} of {}): the tokenizer does "
                                  "not match the model's vocab_size",
                                  path, r.remaining(), n_vocab, r.offset(), file->size()));
  v.validate(path);
  return v;
}

}  // namespace contrail
