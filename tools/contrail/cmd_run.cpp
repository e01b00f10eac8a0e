// `contrail run`: generate text from a prompt, streamed to stdout; speed report on stderr.
#include <fmt/format.h>

#include <cstdio>

#include "common.h"
#include "contrail/core/error.h"

namespace contrail::cli {
namespace {

struct RunArgs {
  ModelOptions model;
  SamplingParams sampling;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 256;
  bool no_echo = false;
  bool ignore_eos = false;
};

int run(const RunArgs& a) {
  const std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file, "prompt file");
  auto session = Session::load(resolve_model(a.model), session_options(a.model));
  const Tokenizer& tok = session->tokenizer();
  std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true);
  if (ids.empty()) throw InvalidArgument("the prompt encodes to no tokens and the model adds no BOS");

  GenerateOptions g;
  g.sampling = a.sampling;
  g.stop_at_eog = !a.ignore_eos;
  const int64_t room = session->n_ctx() - static_cast<int64_t>(ids.size());
  g.max_new_tokens = a.n_predict < 0 ? room : std::min(a.n_predict, room);

  if (!a.no_echo) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }
  // llama2.c convention: after BOS alone, the first piece's leading space is not printed.
  StreamDecoder dec(tok, /*strip_leading_space=*/prompt.empty());
  const GenerationStats st = session->generate(ids, g, [&](int32_t id) {
    const std::string text = dec.push(id);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  const std::string tail = dec.flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "\nprompt: %lld tokens in %.3f s, %.1f tokens/s | generation: %lld tokens in %.3f s, %.1f tokens/s\n",
               static_cast<long long>(st.n_prompt), st.prompt_seconds, st.prompt_tps(),
               static_cast<long long>(st.n_generated), st.gen_seconds, st.gen_tps());
  return 0;
}

}  // namespace

void register_run(CLI::App& app, int& status) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt (streams to stdout, speed to stderr)");
  add_model_options(*sub, args->model);
  auto* prompt = sub->add_option("-p,--prompt", args->prompt, "Prompt text (BOS is added as the model's vocabulary says)");
  sub->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")->check(CLI::ExistingFile)->excludes(prompt);
  sub->add_option("-n,--n-predict", args->n_predict, "Tokens to generate; -1 = until the context is full")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
  sub->add_flag("--no-echo", args->no_echo, "Do not print the prompt before the generated text");
  sub->add_flag("--ignore-eos", args->ignore_eos, "Keep generating past end-of-generation tokens");
  add_sampling_options(*sub, args->sampling);
  sub->callback([args, &status] { status = run(*args); });
}

}  // namespace contrail::cli
