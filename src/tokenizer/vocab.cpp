#include "contrail/tokenizer/vocab.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "contrail/core/error.h"

namespace contrail {

namespace {

// A special id is either unset (-1) or a valid index into the vocabulary.
void check_special_id(const std::string& source, const char* field, int32_t id, size_t n_vocab) {
  if (id == -1) return;
  if (id < 0 || static_cast<size_t>(id) >= n_vocab)
    throw FormatError(fmt::format("{}: {} = {} is out of range for a vocabulary of {} tokens (valid: 0..{}, or unset)",
                                  source, field, id, n_vocab, n_vocab - 1));
}

}  // namespace

void VocabData::validate(const std::string& source) const {
  const size_t n = tokens.size();
  if (n == 0) throw FormatError(fmt::format("{}: vocabulary has no tokens", source));
  if (n > static_cast<size_t>(INT32_MAX))
    throw FormatError(fmt::format("{}: vocabulary has {} tokens, more than the {} that int32 ids can address", source,
                                  n, INT32_MAX));
  if (!scores.empty() && scores.size() != n)
    throw FormatError(fmt::format("{}: tokenizer scores has {} entries but tokens has {}", source, scores.size(), n));
  if (types.size() != n)
    throw FormatError(
        fmt::format("{}: tokenizer token_type has {} entries but tokens has {}", source, types.size(), n));
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int32_t>(types[i]);
    if (t < static_cast<int32_t>(TokenType::Undefined) || t > static_cast<int32_t>(TokenType::Byte))
      throw FormatError(fmt::format("{}: token_type[{}] = {} is not a known token type (0..6)", source, i, t));
  }
  for (size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i]))  // NaN would break the "highest score first" merge order
      throw FormatError(fmt::format("{}: tokenizer score of token {} is NaN", source, i));
  // Byte tokens must spell their byte as "<0xHH>".
  for (size_t i = 0; i < n; ++i) {
    if (types[i] != TokenType::Byte) continue;
    const std::string& t = tokens[i];
    const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>' || !hex(t[3]) || !hex(t[4]))
      throw FormatError(
          fmt::format("{}: token {} has type Byte but its text '{}' is not of the form <0xHH>", source, i, t));
  }
  // Text -> id must be unambiguous (empty pieces can never match text and are ignored).
  std::unordered_map<std::string_view, size_t> first_id;
  first_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i].empty()) continue;
    const auto [it, inserted] = first_id.emplace(tokens[i], i);
    if (!inserted)
      throw FormatError(
          fmt::format("{}: duplicate token text '{}' at ids {} and {}", source, tokens[i], it->second, i));
  }
  if (kind == VocabKind::BytePair && merges.empty())
    throw FormatError(fmt::format("{}: byte-pair vocabulary (model '{}') has no merges", source, model));

  check_special_id(source, "bos_token_id", bos_id, n);
  check_special_id(source, "eos_token_id", eos_id, n);
  check_special_id(source, "unknown_token_id", unk_id, n);
  check_special_id(source, "padding_token_id", pad_id, n);
  check_special_id(source, "eot_token_id", eot_id, n);
  for (const int32_t id : lstrip_ids)
    if (id < 0 || static_cast<size_t>(id) >= n)
      throw FormatError(fmt::format("{}: lstrip token id {} is out of range [0, {})", source, id, n));
  for (const int32_t id : rstrip_ids)
    if (id < 0 || static_cast<size_t>(id) >= n)
      throw FormatError(fmt::format("{}: rstrip token id {} is out of range [0, {})", source, id, n));
  if (add_bos && bos_id < 0)
    throw FormatError(fmt::format("{}: add_bos_token is true but bos_token_id is not set", source));
  if (add_eos && eos_id < 0)
    throw FormatError(fmt::format("{}: add_eos_token is true but eos_token_id is not set", source));
}

}  // namespace contrail
