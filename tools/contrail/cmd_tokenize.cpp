// `contrail tokenize`: print the token ids (and pieces) of a text.
#include <fmt/format.h>


#include "common.h"
#include "contrail/core/error.h"
#include "contrail/core/utf8.h"

namespace contrail::cli {
namespace {

struct TokenizeArgs {
  ModelOptions model;
  std::string text;
  std::string file;
  bool ids_only = false;
  bool no_bos = false;
  bool parse_special = false;
};

// Control characters escaped; a piece that is not complete UTF-8 (a byte-fallback token) shows its
// bytes as \xNN instead of a replacement character.
std::string printable(const std::string& bytes) {
  const bool valid = utf8::is_valid(bytes);
  std::string out;
  for (unsigned char ch : bytes) {
    if (!valid && ch >= 0x80) out += fmt::format("\\x{:02x}", ch);
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch < 0x20 || ch == 0x7f) out += fmt::format("\\x{:02x}", ch);
    else out += static_cast<char>(ch);
  }
  return out;
}

int tokenize(const TokenizeArgs& a) {
  const std::string text = a.file.empty() ? a.text : read_text_file(a.file, "text file");
  // The vocabulary only: a vocab-only GGUF (llama.cpp's ggml-vocab-*.gguf) or a tokenizer-only
  // Hugging Face directory works too.
  const Tokenizer tok(load_model_vocab(resolve_model(a.model), session_options(a.model).load));
  const std::vector<int32_t> ids = tok.encode(text, !a.no_bos, a.parse_special);
  if (a.ids_only) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) line += fmt::format("{}{}", i ? ", " : "", ids[i]);
    fmt::print("{}]\n", line);
  } else {
    for (int32_t id : ids) fmt::print("{:>8} -> '{}'\n", id, printable(tok.token_to_bytes(id, true)));
    fmt::print("{} tokens\n", ids.size());
  }
  return 0;
}

}  // namespace

void register_tokenize(CLI::App& app, int& status) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids and pieces of a text");
  // Only the tokenizer is used: no -t/-c/--isa, which would have nothing to act on.
  add_model_file_options(*sub, args->model);
  sub->get_option("--model")->description(
      "Model or vocabulary: a GGUF file (a vocab-only GGUF such as llama.cpp's ggml-vocab-*.gguf will do),\n"
      "a Hugging Face directory (its tokenizer files suffice) or a llama2.c .bin (tokenizer .bin beside it, or\n"
      "--tokenizer) [default: models/stories260K.gguf]");
  auto* text = sub->add_option("text", args->text, "Text to tokenize");
  sub->add_option("--file", args->file, "Read the text from a file")->check(CLI::ExistingFile)->excludes(text);
  sub->add_flag("--ids", args->ids_only, "Print only the ids, as [1, 2, 3]");
  sub->add_flag("--no-bos", args->no_bos, "Do not add BOS/EOS even if the vocabulary asks for it");
  sub->add_flag("--parse-special", args->parse_special, "Recognise special-token text such as <s> in the input");
  sub->callback([args, &status] { status = tokenize(*args); });
}

}  // namespace contrail::cli
