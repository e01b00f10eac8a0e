// Chat templates: the Jinja2 programs shipped with instruct models (tokenizer_config.json
// "chat_template", GGUF key tokenizer.chat_template) that turn a conversation into prompt text.
//
// Contract: ChatTemplate::apply renders exactly what Hugging Face transformers'
// apply_chat_template renders (jinja2 ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False, the loopcontrols extension, HF's tojson
// (ensure_ascii=False, no HTML escaping) and the globals raise_exception and strftime_now),
// for the Jinja subset real chat templates use: text, {{ }}, {# #}, whitespace control -/+,
// if/elif/else, for/else with loop filters, loop.*, break/continue, set (incl. block set and
// namespace attributes), macros, generation blocks, filters, tests, the usual string/dict
// methods, slicing and Python operator semantics. Jinja2's default Undefined semantics apply:
// printing or iterating an undefined value yields nothing, any other use is an error.
// Anything outside the subset is an error, never silently different output: unsupported syntax,
// tags, filters and tests are FormatError at construction ("line L:C: ..."), unsupported
// operations at render time are Error naming the template line:column.
// Known gaps: integers are 64-bit (overflow is an error where Python would use a bignum);
// dictionary keys are strings; select/reject/map/unique/reverse give lists where jinja2 gives
// generators (printing one directly, or taking its |length, differs from jinja2); a macro
// defined inside a loop sees the loop's variables as they were at its definition.
// Data nested deeper than 1000 levels (jinja2's recursion limit) fails when printed, serialised
// or compared.
//
// Hostile templates are bounded: nesting depth, macro recursion depth, total loop iterations and
// the size of every string/list produced (and of the output) have limits; exceeding one throws
// Error naming the limit. A ChatTemplate is immutable after construction; apply is const and
// thread-safe.
//
// Prompt injection: the renderer tracks which bytes of the output came from the caller's data
// (taint tracking, see src/chat/jinja_value.h): the messages (contents, every member of
// extra_json, roles other than the API's own system/user/assistant/tool/function/developer/
// ipython) and extra_context_json (tools, documents, ...) are untrusted, and so is any text a
// template derives from them; template literals, the standard role names and
// ChatTemplateOptions::bos_token/eos_token are trusted. apply_segments returns the render split accordingly, for Tokenizer::encode_segments,
// which parses control-token text only in trusted segments: message content is always plain
// text, as if tokenized without special tokens, and cannot forge turns or end the sequence.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/core/prompt_segment.h"

namespace contrail {

// One conversation turn. Tool calls (assistant) and tool results will be added as fields here;
// until then `extra_json` carries them: a JSON object whose members are added to the message
// dict the template sees (e.g. {"tool_calls": [...]} or {"tool_call_id": "abc123def"}).
struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool", ...
  std::string content;
  std::string extra_json;  // "" or a JSON object merged into the message
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;  // end with the header of the assistant's turn
  std::string bos_token;              // text of the special tokens, as HF passes them
  std::string eos_token;
  // "" or a JSON object of further variables (e.g. {"tools": [...], "date_string": "..."}).
  // As in HF, `tools` and `documents` are none unless given here. Its strings and keys are
  // caller data: untrusted (see apply_segments).
  std::string extra_context_json;
};

struct ChatTemplateLimits {
  int max_depth = 200;                       // parser nesting, macro recursion
  int64_t max_loop_iterations = 1'000'000;   // all loops of one render together
  size_t max_output_bytes = size_t(16) << 20;  // the output, and any one string or list built
};

// raise_exception("...") in a template: what() is "chat template: <message>", the template's own
// words are message().
class TemplateException : public Error {
 public:
  explicit TemplateException(std::string message);
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

namespace jinja {
struct Program;
struct Rendered;
}

class ChatTemplate {
 public:
  // Parses once; throws FormatError ("chat template line L:C: ...") for syntax outside the subset.
  explicit ChatTemplate(std::string source, ChatTemplateLimits limits = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders the conversation. Throws TemplateException when the template raises, InvalidArgument
  // for malformed extra JSON, Error for a failing template operation or an exceeded limit.
  std::string apply(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts = {}) const;
  // The same render as maximal runs of trusted / untrusted text (adjacent segments differ in
  // `untrusted`; no empty segment unless the whole render is empty, then one trusted ""):
  // join_segments(apply_segments(m, o)) == apply(m, o). Same errors as apply.
  std::vector<PromptSegment> apply_segments(const std::vector<ChatMessage>& messages,
                                            const ChatTemplateOptions& opts = {}) const;

  const std::string& source() const { return source_; }

 private:
  jinja::Rendered render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const;

  std::string source_;
  ChatTemplateLimits limits_;
  std::unique_ptr<const jinja::Program> program_;
};

}  // namespace contrail
