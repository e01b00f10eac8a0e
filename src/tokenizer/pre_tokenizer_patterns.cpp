#include "tokenizer/pre_tokenizer_patterns.h"

#include <algorithm>

namespace contrail::detail {

// The regexes are llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe), which rewrite the
// tokenizer.json originals "(?i:'s|...)" as "(?:'[sS]|...)" (same strings, without the Unicode
// case folding that would also accept U+017F for 's') and spell \p{Lu}-style classes through
// lookaheads; running them with PCRE2 (UTF + UCP) gives llama.cpp's splits.

const std::string_view kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

namespace {

const std::string kLlama3Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kQwen2Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kQwen35Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "
    "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kTekkenPattern =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+("
    "(?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kGpt4oPattern =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'["
    "lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'["
    "vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const std::string kBloomPattern = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+";

struct Entry {
  // A vector, not an initializer_list: a list member's backing array would die with the
  // full-expression that builds the table, leaving the names dangling.
  std::vector<std::string_view> names;
  PreTokenizerSpec spec;
};

// Per name: regexes, ignore_merges, clean_up_spaces, add_bos default (llama.cpp's llama_vocab::load).
const std::vector<Entry>& table() {
  const std::string gpt2(kGpt2Pattern);
  static const std::vector<Entry> entries = {
      {{"default", ""},
       {{"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, true, false}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "mpt", "olmo", "jais", "exaone4"},
       {{gpt2}, false, true, false}},
      {{"trillion", "granite-docling"}, {{gpt2}, false, false, false}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       {{kLlama3Pattern}, true, true, true}},
      {{"dbrx", "smaug-bpe"}, {{kLlama3Pattern}, false, true, false}},
      {{"deepseek-llm"},
       {{
     "[\r\n]",
     "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
     "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
     "\\s+$",
     "[一-龥ࠀ-一가-퟿]+",
     "\\p{N}+"
        },
        false, false, false}},
      {{"deepseek-coder"},
       {{
     "[\r\n]",
     "\\s?\\p{L}+",
     "\\s?\\p{P}+",
     "[一-龥ࠀ-一가-퟿]+",
     "\\p{N}"
        },
        false, false, false}},
      {{"deepseek-v3"},
       {{
     "\\p{N}{1,3}",
     "[一-龥぀-ゟ゠-ヿ]+",
     "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
        },
        false, false, false}},
      {{"falcon"},
       {{"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2, "[0-9][0-9][0-9]"}, false, true, false}},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"}, {{"\\p{N}", gpt2}, false, true, false}},
      {{"command-r", "smollm"}, {{"\\p{N}", gpt2}, false, false, false}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"}, {{kQwen2Pattern}, false, false, false}},
      {{"stablelm2", "megrez"}, {{kQwen2Pattern}, false, true, false}},
      {{"qwen35"}, {{kQwen35Pattern}, false, false, false}},
      {{"tekken"}, {{kTekkenPattern}, true, false, true}},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {{kGpt4oPattern}, false, false, false}},
      {{"bloom", "gpt3-finnish"}, {{kBloomPattern}, false, true, false}},
      {{"poro-chat"}, {{kBloomPattern}, false, false, false}},
      {{"viking"}, {{kBloomPattern, "\\p{N}"}, false, false, false}},
  };
  return entries;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  for (const Entry& e : table())
    for (const std::string_view n : e.names)
      if (name == n) return &e.spec;
  return nullptr;
}

std::string known_pre_tokenizer_names() {
  std::vector<std::string> names;
  for (const Entry& e : table())
    for (const std::string_view n : e.names)
      if (!n.empty()) names.emplace_back(n);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace contrail::detail
