// `contrail chat`: an interactive terminal conversation rendered with the model's chat template.
//
// Each turn renders the whole conversation with the template (as transformers'
// apply_chat_template does), tokenizes it with the template's special tokens parsed (message text
// is always plain text: typing "</s>" or "[INST]" cannot forge a turn), and generates the
// assistant's reply; the KV rows of the unchanged prefix (earlier turns) are reused, so a turn
// costs only its new tokens. Lines come from stdin: a trailing '\' continues a message on the
// next line; /reset starts over, /exit (or end of input) quits.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common.h"
#include "contrail/chat/chat_template.h"
#include "contrail/core/error.h"

namespace contrail::cli {
namespace {

struct ChatArgs {
  ModelOptions model;
  SamplingParams sampling;
  std::string system;
  std::string template_file;
  int64_t n_predict = -1;
  bool show_prompt = false;
  bool stats = false;
};

// Reads one message; false at end of input. A line ending in '\' continues on the next one.
bool read_message(std::string& out, bool interactive) {
  out.clear();
  if (interactive) std::fputs("\n> ", stdout), std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      out += line + "\n";
      if (interactive) std::fputs(". ", stdout), std::fflush(stdout);
      continue;
    }
    out += line;
    return true;
  }
  return !out.empty();
}

int chat(const ChatArgs& a) {
  auto session = Session::load(resolve_model(a.model), session_options(a.model));
  const Tokenizer& tok = session->tokenizer();
  const VocabData& v = tok.vocab();
  std::string source =
      a.template_file.empty() ? v.chat_template : read_text_file(a.template_file, "chat template file");
  if (source.empty())
    throw Error(fmt::format("{}: the model has no chat template (GGUF tokenizer.chat_template, or chat_template in "
                            "tokenizer_config.json); pass one with --chat-template FILE",
                            session->model_file().path));
  const ChatTemplate tmpl(std::move(source));
  ChatTemplateOptions topts;
  topts.add_generation_prompt = true;
  if (v.bos_id >= 0) topts.bos_token = tok.token_to_bytes(v.bos_id, /*render_special=*/true);
  if (v.eos_id >= 0) topts.eos_token = tok.token_to_bytes(v.eos_id, /*render_special=*/true);

  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive)
    std::fprintf(stderr, "contrail chat: %s (%lld-token context). Enter a message; end a line with \\ to continue it; "
                         "/reset starts over, /exit quits.\n",
                 session->model_file().path.c_str(), static_cast<long long>(session->n_ctx()));
  std::vector<ChatMessage> messages;
  if (!a.system.empty()) messages.push_back({"system", a.system, ""});
  std::string input;
  while (read_message(input, interactive)) {
    if (input == "/exit" || input == "/quit") break;
    if (input == "/reset") {
      messages.resize(a.system.empty() ? 0 : 1);
      std::fputs("(conversation cleared)\n", stdout);
      continue;
    }
    if (input.empty()) continue;
    messages.push_back({"user", input, ""});
    const std::vector<PromptSegment> segments = tmpl.apply_segments(messages, topts);
    if (a.show_prompt)
      std::fprintf(stderr, "--- prompt ---\n%s\n--- end of prompt ---\n", join_segments(segments).c_str());
    // The template writes BOS itself when it uses bos_token; otherwise add it as the vocab says.
    const bool has_bos = starts_with_trusted(segments, topts.bos_token);
    std::vector<int32_t> ids = tok.encode_segments(segments, /*add_special=*/!has_bos);
    if (ids.empty() || static_cast<int64_t>(ids.size()) >= session->n_ctx()) {
      std::fprintf(stderr, "contrail chat: the conversation is %zu tokens, the context holds %lld; the message was "
                           "dropped (use /reset, or a larger --ctx)\n",
                   ids.size(), static_cast<long long>(session->n_ctx()));
      messages.pop_back();
      continue;
    }
    GenerateOptions g;
    g.sampling = a.sampling;
    g.reuse_cache = true;
    const int64_t room = session->n_ctx() - static_cast<int64_t>(ids.size());
    g.max_new_tokens = a.n_predict < 0 ? room : std::min(a.n_predict, room);
    std::vector<int32_t> reply;  // generated ids, end-of-generation token excluded
    // SentencePiece replies start with the dummy-prefix space; like HF's decode, drop it.
    const bool strip = v.kind == VocabKind::SentencePiece && v.add_space_prefix;
    StreamDecoder dec(tok, strip);
    const GenerationStats st = session->generate(ids, g, [&](int32_t id) {
      reply.push_back(id);
      const std::string text = dec.push(id);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    const std::string tail = dec.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::string content = tok.decode(reply);
    if (strip && !content.empty() && content[0] == ' ') content.erase(0, 1);
    messages.push_back({"assistant", std::move(content), ""});
    if (a.stats)
      std::fprintf(stderr, "[prompt %lld tokens (%lld reused) %.1f tokens/s | reply %lld tokens %.1f tokens/s]\n",
                   static_cast<long long>(st.n_prompt), static_cast<long long>(st.n_prompt_cached), st.prompt_tps(),
                   static_cast<long long>(st.n_generated), st.gen_tps());
  }
  return 0;
}

}  // namespace

void register_chat(CLI::App& app, int& status) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* sub = app.add_subcommand("chat", "Interactive chat in the terminal, using the model's chat template");
  sub->footer(
      "Reads messages from stdin (a trailing \\ continues a message on the next line).\n"
      "Commands: /reset clears the conversation, /exit quits (so does end of input).");
  add_model_options(*sub, args->model);
  sub->add_option("--system", args->system, "System message that starts the conversation");
  sub->add_option("--chat-template", args->template_file,
                  "Jinja chat template file to use instead of the model's own")
      ->check(CLI::ExistingFile);
  sub->add_option("-n,--n-predict", args->n_predict, "Most tokens per reply; -1 = until the context is full")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
  sub->add_flag("--show-prompt", args->show_prompt, "Print each rendered prompt to stderr");
  sub->add_flag("--stats", args->stats, "Print token counts and speed after each reply (stderr)");
  add_sampling_options(*sub, args->sampling);
  sub->callback([args, &status] { status = chat(*args); });
}

}  // namespace contrail::cli
