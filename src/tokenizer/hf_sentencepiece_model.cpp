// SentencePiece ModelProto (tokenizer.model) -> VocabData, with a small protobuf wire-format
// reader. Every varint, length and offset is checked against the enclosing message before use.
// Schema (sentencepiece_model.proto, only the fields used here):
//   ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
//                    NormalizerSpec normalizer_spec = 3; }
//   SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
//                  Type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
//   TrainerSpec    { ModelType model_type = 3 [default UNIGRAM]; bool treat_whitespace_as_suffix = 24;
//                    bool byte_fallback = 35; int32 unk_id = 40 [0]; bos_id = 41 [1]; eos_id = 42 [2];
//                    pad_id = 43 [-1]; }   ModelType: UNIGRAM 1, BPE 2, WORD 3, CHAR 4
//   NormalizerSpec { bool add_dummy_prefix = 3 [default true]; }
#include <fmt/format.h>

#include <cstring>
#include <string>

#include "contrail/core/error.h"
#include "contrail/core/mapped_file.h"
#include "contrail/tokenizer/hf_tokenizer.h"
#include "tokenizer/hf_detail.h"

namespace contrail {

namespace detail {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a message: its number, wire type, and value (varint / fixed bits, or the byte
// range of a length-delimited payload).
struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t value = 0;             // varint, fixed32 or fixed64 bits
  const uint8_t* data = nullptr;  // (len) length-delimited payload
  size_t len = 0;
  size_t offset = 0;  // file offset of the field's key, for errors
};

// Sequential reader over one message [data, data + size) that starts at file offset `base`.
class WireReader {
 public:
  WireReader(const uint8_t* data, size_t size, size_t base, const std::string& source, const char* message)
      : data_(data), size_(size), base_(base), src_(source), msg_(message) {}

  bool done() const { return pos_ >= size_; }

  Field next() {
    Field f;
    f.offset = base_ + pos_;
    const uint64_t key = varint("field key");
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    if (f.number == 0 || key >> 32 != 0)
      throw FormatError(fmt::format("{}: {} field key {} at offset {} has an invalid field number", src_, msg_, key,
                                    f.offset));
    switch (f.wire) {
      case kVarint: f.value = varint("varint field"); break;
      case kFixed64: f.value = fixed(8); break;
      case kFixed32: f.value = fixed(4); break;
      case kLengthDelimited: {
        const size_t at = base_ + pos_;
        const uint64_t len = varint("length");
        if (len > size_ - pos_)
          throw FormatError(fmt::format("{}: {} field {} at offset {}: length {} (at offset {}) extends beyond the "
                                        "{} bytes left in the message",
                                        src_, msg_, f.number, f.offset, len, at, size_ - pos_));
        f.data = data_ + pos_;
        f.len = static_cast<size_t>(len);
        pos_ += f.len;
        break;
      }
      default:
        throw FormatError(fmt::format("{}: {} field {} at offset {} has unsupported wire type {}", src_, msg_,
                                      f.number, f.offset, f.wire));
    }
    return f;
  }

  // Checks that `f` has wire type `wire` (a known field with the wrong encoding is corrupt).
  void expect(const Field& f, uint32_t wire, const char* name) const {
    if (f.wire != wire)
      throw FormatError(fmt::format("{}: {}.{} (field {}) at offset {} has wire type {}, expected {}", src_, msg_,
                                    name, f.number, f.offset, f.wire, wire));
  }

 private:
  uint64_t varint(const char* what) {
    const size_t start = base_ + pos_;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= size_)
        throw FormatError(fmt::format("{}: {} {} at offset {} is truncated (message ends at offset {})", src_, msg_,
                                      what, start, base_ + size_));
      const uint8_t b = data_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw FormatError(fmt::format("{}: {} {} at offset {} is longer than 10 bytes", src_, msg_, what, start));
  }

  uint64_t fixed(size_t n) {
    if (n > size_ - pos_)
      throw FormatError(fmt::format("{}: {} fixed{} value at offset {} is truncated (message ends at offset {})", src_,
                                    msg_, n * 8, base_ + pos_, base_ + size_));
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }

  const uint8_t* data_;
  size_t size_;
  size_t base_;
  size_t pos_ = 0;
  const std::string& src_;
  const char* msg_;
};

float as_float(uint64_t bits) {
  const auto u = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// A proto int32 (negative values are 10-byte sign-extended varints).
int32_t as_int32(const Field& f, const std::string& source, const char* name) {
  const auto v = static_cast<int64_t>(f.value);
  if (v < INT32_MIN || v > INT32_MAX)
    throw FormatError(fmt::format("{}: trainer_spec.{} = {} at offset {} is not an int32", source, name, v, f.offset));
  return static_cast<int32_t>(v);
}

TokenType piece_type(const Field& f, const std::string& source, size_t index) {
  switch (f.value) {
    case 1: return TokenType::Normal;
    case 2: return TokenType::Unknown;
    case 3: return TokenType::Control;
    case 4: return TokenType::Normal;  // USER_DEFINED: llama.cpp's converter writes NORMAL
    case 5: return TokenType::Unused;
    case 6: return TokenType::Byte;
    default:
      throw FormatError(fmt::format("{}: piece {} type = {} at offset {} is not a SentencePiece type (1..6)", source,
                                    index, f.value, f.offset));
  }
}

struct TrainerSpec {
  uint64_t model_type = 1;  // UNIGRAM
  bool byte_fallback = false;
  bool whitespace_as_suffix = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
};

TrainerSpec read_trainer_spec(const Field& msg, const std::string& src) {
  TrainerSpec t;
  WireReader r(msg.data, msg.len, msg.offset, src, "trainer_spec");
  while (!r.done()) {
    const Field f = r.next();
    switch (f.number) {
      case 3: r.expect(f, kVarint, "model_type"); t.model_type = f.value; break;
      case 24: r.expect(f, kVarint, "treat_whitespace_as_suffix"); t.whitespace_as_suffix = f.value != 0; break;
      case 35: r.expect(f, kVarint, "byte_fallback"); t.byte_fallback = f.value != 0; break;
      case 40: r.expect(f, kVarint, "unk_id"); t.unk_id = as_int32(f, src, "unk_id"); break;
      case 41: r.expect(f, kVarint, "bos_id"); t.bos_id = as_int32(f, src, "bos_id"); break;
      case 42: r.expect(f, kVarint, "eos_id"); t.eos_id = as_int32(f, src, "eos_id"); break;
      case 43: r.expect(f, kVarint, "pad_id"); t.pad_id = as_int32(f, src, "pad_id"); break;
      default: break;  // training parameters that do not affect encoding
    }
  }
  return t;
}

bool read_add_dummy_prefix(const Field& msg, const std::string& src) {
  bool add = true;
  WireReader r(msg.data, msg.len, msg.offset, src, "normalizer_spec");
  while (!r.done()) {
    const Field f = r.next();
    if (f.number == 3) {
      r.expect(f, kVarint, "add_dummy_prefix");
      add = f.value != 0;
    }
  }
  return add;
}

// The payload of a length-delimited field starts after its key and length varints.
size_t payload_offset(const Field& f, const uint8_t* base) { return static_cast<size_t>(f.data - base); }

}  // namespace

VocabData parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& src) {
  VocabData v;
  v.kind = VocabKind::SentencePiece;
  v.model = "llama";
  v.pre = "default";
  TrainerSpec trainer;
  bool add_dummy_prefix = true;

  WireReader top(data, size, 0, src, "ModelProto");
  while (!top.done()) {
    Field f = top.next();
    if (f.number < 1 || f.number > 3) continue;  // self_test_data, denormalizer_spec, extensions
    top.expect(f, kLengthDelimited, f.number == 1 ? "pieces" : f.number == 2 ? "trainer_spec" : "normalizer_spec");
    f.offset = payload_offset(f, data);  // sub-messages report file offsets of their own fields
    if (f.number == 2) {
      trainer = read_trainer_spec(f, src);
      continue;
    }
    if (f.number == 3) {
      add_dummy_prefix = read_add_dummy_prefix(f, src);
      continue;
    }
    const size_t index = v.tokens.size();
    if (index >= kMaxHfVocab)
      throw FormatError(fmt::format("{}: more than {} pieces (piece at offset {})", src, kMaxHfVocab, f.offset));
    WireReader r(f.data, f.len, f.offset, src, "pieces");
    std::string piece;
    float score = 0.0f;
    TokenType type = TokenType::Normal;
    bool has_piece = false;
    while (!r.done()) {
      const Field pf = r.next();
      switch (pf.number) {
        case 1:
          r.expect(pf, kLengthDelimited, "piece");
          piece.assign(reinterpret_cast<const char*>(pf.data), pf.len);
          has_piece = true;
          break;
        case 2: r.expect(pf, kFixed32, "score"); score = as_float(pf.value); break;
        case 3: r.expect(pf, kVarint, "type"); type = piece_type(pf, src, index); break;
        default: break;
      }
    }
    if (!has_piece || piece.empty())
      throw FormatError(fmt::format("{}: piece {} at offset {} has no text", src, index, f.offset));
    if (type == TokenType::Byte && !is_byte_piece(piece))
      throw FormatError(fmt::format("{}: piece {} '{}' at offset {} has type BYTE but is not of the form <0xHH>", src,
                                    index, piece, f.offset));
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  }

  if (v.tokens.empty()) throw FormatError(fmt::format("{}: no pieces (not a SentencePiece model?)", src));
  switch (trainer.model_type) {
    case 2: break;
    case 1:
      throw FormatError(fmt::format("{}: trainer_spec.model_type is UNIGRAM; only BPE SentencePiece models are "
                                    "supported",
                                    src));
    default:
      throw FormatError(fmt::format("{}: trainer_spec.model_type = {} is not supported (only BPE = 2)", src,
                                    trainer.model_type));
  }
  if (trainer.whitespace_as_suffix)
    throw FormatError(fmt::format("{}: trainer_spec.treat_whitespace_as_suffix is not supported", src));
  v.byte_fallback = trainer.byte_fallback;
  v.unk_id = trainer.unk_id;
  v.bos_id = trainer.bos_id;
  v.eos_id = trainer.eos_id;
  v.pad_id = trainer.pad_id;
  for (int32_t* id : {&v.unk_id, &v.bos_id, &v.eos_id, &v.pad_id})
    if (*id < -1) *id = -1;  // sentencepiece treats every negative id as "none"
  v.add_bos = v.bos_id >= 0;
  v.add_eos = false;
  v.add_space_prefix = add_dummy_prefix;
  v.validate(src);
  return v;
}

}  // namespace detail

VocabData load_sentencepiece_model(const std::string& path) {
  const auto file = MappedFile::open(path);
  return detail::parse_sentencepiece_model(file->data(), file->size(), path);
}

}  // namespace contrail
