// Shared pieces of the contrail CLI subcommands: default-model lookup, option groups, output helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "contrail/model/convert.h"
#include "contrail/runtime/session.h"

namespace contrail::cli {

// Options every model-using subcommand shares.
struct ModelOptions {
  std::string model;      // empty: the default model
  std::string tokenizer;  // llama2.c only (rejected for GGUF / Hugging Face models)
  int threads = 0;
  int64_t ctx = 0;
  std::string isa;        // overrides CONTRAIL_ISA
};

// -m/--model and --tokenizer: for commands that read a model without running it (info, tokenize).
void add_model_file_options(CLI::App& app, ModelOptions& o, bool model_required = false);
// add_model_file_options plus -t/--threads, -c/--ctx-size and --isa: for commands that run it.
void add_model_options(CLI::App& app, ModelOptions& o, bool model_required = false);
// Applies --isa and resolves the default model; returns the model path.
std::string resolve_model(const ModelOptions& o);
SessionOptions session_options(const ModelOptions& o);

void add_sampling_options(CLI::App& app, SamplingParams& s);

// Parses "1,2,3" (spaces allowed) into ids; throws InvalidArgument naming the bad item.
std::vector<int32_t> parse_id_list(const std::string& s);

// The whole file; throws Error "cannot read WHAT 'PATH'" when it cannot be opened.
std::string read_text_file(const std::string& path, const char* what);

// "1.5 MiB" / "2.10 GiB".
std::string human_bytes(double bytes);
// Per-tensor progress of a GGUF write on stderr (bar, rate, ETA): redrawn in place on a terminal,
// one line per tensor otherwise (logs).
std::function<void(const ConvertProgress&)> convert_progress_bar(bool tty);

// Subcommand registration: each adds itself to `app` and returns the callback's exit status via
// the `status` reference.
void register_run(CLI::App& app, int& status);
void register_info(CLI::App& app, int& status);
void register_tokenize(CLI::App& app, int& status);
void register_logits(CLI::App& app, int& status);
void register_bench(CLI::App& app, int& status);
// `contrail bench serve` (the serving benchmark), nested under `bench`; returns the subcommand.
CLI::App* register_bench_serve(CLI::App& bench, int& status);
void register_pull(CLI::App& app, int& status);
void register_convert(CLI::App& app, int& status);
void register_chat(CLI::App& app, int& status);
void register_serve(CLI::App& app, int& status);
void register_synth(CLI::App& app, int& status);

}  // namespace contrail::cli
