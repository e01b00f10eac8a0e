// `contrail synth`: a GGUF model of a real architecture and size with seeded random weights and
// a real tokenizer, for speed work without downloads. Written through the same GGUF conversion as
// `contrail convert` (atomic write, llama.cpp's names, layouts and metadata keys).
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "common.h"
#include "contrail/core/error.h"
#include "contrail/model/gguf.h"
#include "contrail/model/synth.h"
#include "contrail/tokenizer/hf_tokenizer.h"

namespace contrail::cli {
namespace {

struct SynthArgs {
  std::string preset;
  std::string arch = "llama";
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_ctx = 0;
  double theta = 0;
  std::string vocab;  // GGUF file or Hugging Face directory
  std::string outtype = "f16";
  std::string output;
  uint64_t seed = 1;
  bool progress = false, no_progress = false;
};

VocabData load_vocab(const std::string& path, const std::string& arch) {
  if (std::filesystem::is_directory(path)) return load_hf_vocab_for_gguf(path, arch);
  // A tokenizer.json (with its directory's tokenizer_config.json & co. when it is named so).
  if (std::filesystem::path(path).extension() == ".json") {
    const auto dir = std::filesystem::path(path).parent_path();
    if (std::filesystem::path(path).filename() == "tokenizer.json" && !dir.empty())
      return load_hf_tokenizer(dir.string());
    return load_hf_tokenizer_json(path);
  }
  const auto g = GgufFile::open(path);
  return read_gguf_vocab(*g);
}

int synth(const SynthArgs& a) {
  ModelConfig c;
  if (!a.preset.empty()) {
    c = synth_preset(a.preset);
  } else {
    c.arch = a.arch;
    c.name = fmt::format("synth-{}", a.arch);
    c.n_ctx_train = 2048;
    c.rope.freq_base = 10000.f;
  }
  // Explicit shapes override the preset's.
  auto set = [](int64_t v, int64_t& field) {
    if (v > 0) field = v;
  };
  const bool mha = c.n_head_kv == c.n_head;  // the preset's attention has no KV sharing
  set(a.n_vocab, c.n_vocab), set(a.n_embd, c.n_embd), set(a.n_layer, c.n_layer), set(a.n_head, c.n_head);
  if (mha && a.n_head > 0 && a.n_head_kv <= 0) c.n_head_kv = c.n_head;  // keep it MHA
  set(a.n_head_kv, c.n_head_kv), set(a.head_dim, c.head_dim), set(a.n_ff, c.n_ff), set(a.n_ctx, c.n_ctx_train);
  if (a.theta > 0) c.rope.freq_base = static_cast<float>(a.theta);
  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  // A new n_embd or n_head without --head-dim means the usual n_embd / n_head.
  if (a.head_dim <= 0 && (a.n_embd > 0 || a.n_head > 0 || a.preset.empty()) && c.n_head > 0)
    c.head_dim = c.n_embd / c.n_head;
  c.rope.n_rot = c.head_dim;

  VocabData vocab;
  if (!a.vocab.empty()) {
    vocab = load_vocab(a.vocab, c.arch);
    if (a.n_vocab > 0 && a.n_vocab != static_cast<int64_t>(vocab.tokens.size()))
      throw InvalidArgument(fmt::format("--n-vocab {} but the tokenizer {} has {} tokens", a.n_vocab, a.vocab,
                                        vocab.tokens.size()));
    c.n_vocab = static_cast<int64_t>(vocab.tokens.size());
  } else {
    throw InvalidArgument(
        "synth: --vocab is required: a GGUF with tokenizer.* keys (e.g. a llama.cpp vocab file) or a Hugging Face "
        "tokenizer directory; the model gets that real tokenizer");
  }
  ConvertOptions opts;
  opts.outtype = parse_convert_type(a.outtype);
  opts.vocab = vocab;
  opts.name = c.name;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (a.progress || (tty && !a.no_progress)) opts.on_tensor = convert_progress_bar(tty);
  const ModelFile m = synth_model(c, std::move(vocab), a.seed);
  const ConvertSummary s = convert_to_gguf(m, a.output, opts);
  fmt::print("{}: {} {} (n_embd {}, n_layer {}, n_head {}/{}, head_dim {}, n_ff {}, n_vocab {}), {} tensors, {} "
             "parameters, {}\n",
             a.output, c.arch, convert_type_name(opts.outtype), c.n_embd, c.n_layer, c.n_head, c.n_head_kv,
             c.head_dim, c.n_ff, c.n_vocab, s.n_tensors, s.n_params, human_bytes(static_cast<double>(s.file_bytes)));
  return 0;
}

}  // namespace

void register_synth(CLI::App& app, int& status) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* sub = app.add_subcommand("synth", "Write a GGUF model of a real architecture and size with random weights");
  std::string presets;
  for (const auto& p : synth_preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  sub->footer(fmt::format(
      "Presets: {}. Explicit shape options override a preset's.\n"
      "Weights: seeded N(0, 0.02) matrices (q/k N(0, 0.8^2 / n_embd)), norm scales 1, biases 0.\n"
      "Example:  contrail synth --preset tinyllama-1.1b --vocab ggml-vocab-llama-spm.gguf -t q8_0 -o tinyllama-q8_0.gguf",
      presets));
  sub->add_option("--preset", a->preset, "Architecture and shapes of a published model");
  sub->add_option("--arch", a->arch,
                  "Architecture without a preset (llama, qwen2, gemma, gemma2, phi3, gpt2); an error with --preset")
      ->capture_default_str();
  sub->add_option("--vocab", a->vocab, "Tokenizer: a GGUF with tokenizer.* keys, a Hugging Face directory or a tokenizer.json")
      ->required()
      ->check(CLI::ExistingPath);
  sub->add_option("-o,--output", a->output, "Output GGUF (written atomically)")->required();
  sub->add_option("-t,--outtype", a->outtype, "f32, f16, bf16 or q8_0")->capture_default_str();
  sub->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  const auto pos = CLI::Range(int64_t{1}, int64_t{1} << 24);
  sub->add_option("--n-vocab", a->n_vocab, "Must equal the tokenizer's size when given")->check(pos);
  sub->add_option("--n-embd", a->n_embd, "Hidden size")->check(pos);
  sub->add_option("--n-layer", a->n_layer, "Layers")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--n-head", a->n_head, "Attention heads")->check(pos);
  sub->add_option("--n-head-kv", a->n_head_kv, "KV heads (GQA)")->check(pos);
  sub->add_option("--head-dim", a->head_dim, "Head size [default: n_embd / n_head]")->check(pos);
  sub->add_option("--n-ff", a->n_ff, "Feed-forward size")->check(pos);
  sub->add_option("--ctx", a->n_ctx, "Training context length")->check(pos);
  sub->add_option("--rope-theta", a->theta, "RoPE base frequency")->check(CLI::PositiveNumber);
  auto* on = sub->add_flag("--progress", a->progress, "Show progress even when stderr is not a terminal");
  sub->add_flag("--no-progress", a->no_progress, "Never show progress")->excludes(on);
  sub->callback([a, sub, &status] {
    if (!a->preset.empty() && sub->count("--arch") > 0)
      throw InvalidArgument(fmt::format("--arch {} with --preset {}: the preset fixes the architecture ({}); give one "
                                        "of them",
                                        a->arch, a->preset, synth_preset(a->preset).arch));
    status = synth(*a);
  });
}

}  // namespace contrail::cli
