// `contrail info`: architecture, shapes, dtypes, tokenizer and metadata of a model file.
#include <fmt/format.h>

#include <map>

#include "common.h"
#include "contrail/model/arch.h"
#include "contrail/core/cpu_features.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail::cli {
namespace {

struct InfoArgs {
  ModelOptions model;
  bool tensors = false;
  bool all_metadata = false;
};

int info(const InfoArgs& a) {
  const std::string path = resolve_model(a.model);
  const ModelFile mf = load_model_file(path, session_options(a.model).load);
  const ModelConfig& c = mf.config;
  const char* format = mf.format == ModelFormat::Gguf          ? "GGUF"
                       : mf.format == ModelFormat::HuggingFace ? "Hugging Face safetensors"
                                                               : "llama2.c";
  fmt::print("file:          {} ({})\n", mf.path, format);
  fmt::print("architecture:  {}{}\n", c.arch, c.name.empty() ? "" : fmt::format(" ({})", c.name));
  fmt::print("n_vocab {}  n_embd {}  n_layer {}  n_head {}  n_head_kv {}  head_dim {}  n_ff {}\n", c.n_vocab, c.n_embd,
             c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff);
  const std::string positions =
      arch_traits(c.arch).rope ? fmt::format("rope: n_rot {} base {:g} scale {:g}{}", c.rope.n_rot, c.rope.freq_base,
                                             c.rope.freq_scale, c.rope_freq_factors ? " (frequency factors)" : "")
                               : std::string("learned absolute positions");
  fmt::print("n_ctx_train {}  norm_eps {:g}  {}  tied embeddings: {}\n", c.n_ctx_train, c.norm_eps, positions,
             c.tied_embeddings ? "yes" : "no");
  if (!mf.vocab.chat_template.empty())
    fmt::print("chat template: {} bytes\n", mf.vocab.chat_template.size());

  std::map<std::string, std::pair<int, size_t>> by_dtype;  // dtype -> (count, bytes)
  int64_t params = 0;
  size_t bytes = 0;
  for (const auto& [name, t] : mf.tensors) {
    auto& e = by_dtype[std::string(dtype_name(t.dtype()))];
    ++e.first;
    e.second += t.nbytes();
    params += t.numel();
    bytes += t.nbytes();
  }
  fmt::print("weights:       {} tensors, {:.3f} M parameters, {:.2f} MiB\n", mf.tensors.size(), params / 1e6,
             bytes / 1048576.0);
  for (const auto& [dt, e] : by_dtype) fmt::print("  {:<6} {:>5} tensors {:>10.2f} MiB\n", dt, e.first, e.second / 1048576.0);
  if (a.tensors)
    for (const auto& [name, t] : mf.tensors)
      fmt::print("  {:<32} {:<6} {}\n", name, dtype_name(t.dtype()), t.shape_str());

  const VocabData& v = mf.vocab;
  fmt::print("tokenizer:     {} ({}), {} tokens, bos {} eos {} unk {}, add_bos {}, add_space_prefix {}{}\n",
             v.model.empty() ? "llama" : v.model, v.kind == VocabKind::SentencePiece ? "SentencePiece BPE" : "byte-level BPE",
             v.tokens.size(), v.bos_id, v.eos_id, v.unk_id, v.add_bos, v.add_space_prefix,
             v.chat_template.empty() ? "" : ", chat template present");
  fmt::print("metadata:      {} keys\n", mf.metadata.size());
  for (const auto& [k, val] : mf.metadata) {
    if (!a.all_metadata && val.size() > 120) {
      fmt::print("  {} = {}...\n", k, val.substr(0, 117));
    } else {
      fmt::print("  {} = {}\n", k, val);
    }
  }
  fmt::print("cpu:           {} (kernels: {})\n", cpu_features().brand, isa_name(active_isa()));
  return 0;
}

}  // namespace

void register_info(CLI::App& app, int& status) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand("info", "Print architecture, shapes, dtypes, tokenizer and metadata of a model");
  // Reads the file without running it: no -t/-c/--isa, which would have nothing to act on.
  add_model_file_options(*sub, args->model);
  sub->add_option("model_path", args->model.model, "Model file or directory (same as -m)")
      ->excludes(sub->get_option("--model"));
  sub->add_flag("--tensors", args->tensors, "List every tensor with dtype and shape");
  sub->add_flag("--full", args->all_metadata, "Print long metadata values in full");
  sub->callback([args, &status] { status = info(*args); });
}

}  // namespace contrail::cli
