// `contrail convert`: Hugging Face checkpoint directory (or any model contrail loads) -> GGUF file
// that llama.cpp loads, written atomically.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "common.h"
#include "contrail/core/error.h"
#include "contrail/model/convert.h"
#include "contrail/model/gguf.h"

namespace contrail::cli {
namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string outtype = "f16";
  std::string name;
  std::string vocab_from;
  bool progress = false;
  bool no_progress = false;
};

int convert(const ConvertArgs& a) {
  ConvertOptions opts;
  opts.outtype = parse_convert_type(a.outtype);
  opts.name = a.name;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (a.progress || (tty && !a.no_progress)) opts.on_tensor = convert_progress_bar(tty);

  const ModelFile m = load_model_file(a.input);
  if (!a.vocab_from.empty()) {
    const auto g = GgufFile::open(a.vocab_from);
    opts.vocab = read_gguf_vocab(*g);
    if (static_cast<int64_t>(opts.vocab.tokens.size()) != m.config.n_vocab)
      throw InvalidArgument(fmt::format("--vocab-from {}: {} tokens, but the model's n_vocab is {}", a.vocab_from,
                                        opts.vocab.tokens.size(), m.config.n_vocab));
  }
  const ConvertSummary s = convert_to_gguf(m, a.output, opts);
  for (const std::string& t : s.f16_fallbacks)
    fmt::print(stderr, "note: {}: rows are not a multiple of 32, stored as f16 instead of q8_0\n", t);
  fmt::print("{}: {} {}, {} tensors, {} parameters, {}\n", a.output, m.config.arch, convert_type_name(opts.outtype),
             s.n_tensors, s.n_params, human_bytes(static_cast<double>(s.file_bytes)));
  return 0;
}

}  // namespace

void register_convert(CLI::App& app, int& status) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a Hugging Face checkpoint directory to a GGUF file (loadable by llama.cpp)");
  sub->footer(
      "The output has the tensor names, layouts, storage types and metadata keys of llama.cpp's\n"
      "convert_hf_to_gguf.py: llama/mistral Q/K rows permuted to GGUF's rotary layout, norms, biases and\n"
      "1-D tensors kept f32, every other matrix (embeddings and output included) stored as --outtype;\n"
      "with q8_0, matrices whose rows are not a multiple of 32 fall back to f16.\n"
      "The file is written atomically: on any failure no partial file is left and an existing OUT is kept.\n"
      "Example:  contrail convert ./Llama-3.2-1B -o llama-3.2-1b-q8_0.gguf --outtype q8_0");
  sub->add_option("input", a->input,
                  "Hugging Face checkpoint directory (config.json + *.safetensors); a GGUF or llama2.c file\n"
                  "is re-encoded the same way")
      ->required();
  sub->add_option("-o,--output", a->output, "Output GGUF file (its directory must exist; replaced if present)")
      ->required();
  sub->add_option("-t,--outtype", a->outtype, "Storage type of the weight matrices: f32, f16, bf16 or q8_0")
      ->capture_default_str()
      ->check([](const std::string& s) {
        try {
          parse_convert_type(s);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      });
  sub->add_option("--name", a->name,
                  "general.name [default: the model's name, else the input folder name in title form]");
  sub->add_option("--vocab-from", a->vocab_from,
                  "Take the tokenizer (tokenizer.* keys) from this GGUF instead of the input; its token count\n"
                  "must equal the model's vocabulary size");
  auto* on = sub->add_flag("--progress", a->progress,
                           "Show per-tensor progress (bytes, rate, ETA) on stderr even when it is not a terminal");
  sub->add_flag("--no-progress", a->no_progress, "Never show progress")->excludes(on);
  sub->callback([a, &status] { status = convert(*a); });
}

}  // namespace contrail::cli
