// ChatTemplate: source normalisation as jinja2 does it, parse once, render with the variables
// transformers' apply_chat_template passes.
#include "contrail/chat/chat_template.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "chat/jinja_ast.h"
#include "chat/jinja_eval.h"

namespace contrail {
namespace {

using Json = nlohmann::ordered_json;  // keeps object member order, as Python dicts do

// Caller data: every string, and every object's keys, untrusted.
jinja::Value from_json(const Json& j, const char* what, int depth = 0) {
  if (depth > jinja::kMaxValueDepth)
    throw InvalidArgument(fmt::format("chat template {}: JSON nested deeper than the limit of {} levels", what, jinja::kMaxValueDepth));
  switch (j.type()) {
    case Json::value_t::null: return jinja::Value::none();
    case Json::value_t::boolean: return jinja::Value(j.get<bool>());
    case Json::value_t::number_integer: return jinja::Value(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      return u <= static_cast<uint64_t>(INT64_MAX) ? jinja::Value(static_cast<int64_t>(u)) : jinja::Value(static_cast<double>(u));
    }
    case Json::value_t::number_float: return jinja::Value(j.get<double>());
    case Json::value_t::string: return jinja::Value::untrusted(j.get<std::string>());
    case Json::value_t::array: {
      jinja::List items;
      for (const Json& x : j) items.push_back(from_json(x, what, depth + 1));
      return jinja::Value(std::move(items));
    }
    case Json::value_t::object: {
      auto d = std::make_shared<jinja::Dict>();
      d->untrusted_keys = true;
      for (const auto& [k, v] : j.items()) d->set(k, from_json(v, what, depth + 1));
      return jinja::Value(std::move(d));
    }
    default: break;
  }
  return jinja::Value::none();
}

// Parses `text` as a JSON object ("" = none) and adds its members (caller data: untrusted) to `into`.
void merge_json_object(const std::string& text, jinja::Dict& into, const char* what) {
  if (text.empty()) return;
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    throw InvalidArgument(fmt::format("chat template {}: invalid JSON: {}", what, e.what()));
  }
  if (!j.is_object()) throw InvalidArgument(fmt::format("chat template {}: expected a JSON object, got {}", what, j.type_name()));
  if (!j.empty()) into.untrusted_keys = true;  // the caller named these members
  for (const auto& [k, v] : j.items()) into.set(k, from_json(v, what, 1));
}

// The roles of the chat APIs: an enumeration, not free text, so trusted. Templates build control
// tokens from them ('<|' + role + '|>' -> "<|user|>"); any other role string is untrusted (it
// could spell "endoftext" into such a token).
bool is_standard_role(const std::string& role) {
  static const char* const kRoles[] = {"system", "user", "assistant", "tool", "function", "developer", "ipython"};
  for (const char* r : kRoles)
    if (role == r) return true;
  return false;
}

// jinja2's source handling: \r\n and \r become \n; one trailing newline is dropped
// (keep_trailing_newline=False).
std::string normalize_newlines(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TemplateException::TemplateException(std::string message)
    : Error("chat template: " + message), message_(std::move(message)) {}

ChatTemplate::ChatTemplate(std::string source, ChatTemplateLimits limits)
    : source_(std::move(source)), limits_(limits) {
  if (limits_.max_depth <= 0 || limits_.max_loop_iterations <= 0 || limits_.max_output_bytes == 0)
    throw InvalidArgument("chat template limits must be positive");
  const std::vector<jinja::Token> tokens = jinja::lex(normalize_newlines(source_));
  program_ = std::make_unique<const jinja::Program>(jinja::parse(tokens, limits_.max_depth));
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const {
  return render(messages, opts).text;
}

std::vector<PromptSegment> ChatTemplate::apply_segments(const std::vector<ChatMessage>& messages,
                                                        const ChatTemplateOptions& opts) const {
  jinja::Rendered r = render(messages, opts);
  std::vector<PromptSegment> out;
  size_t at = 0;
  for (const jinja::ByteRange& u : r.untrusted) {
    if (u.begin > at) out.push_back({r.text.substr(at, u.begin - at), false});
    out.push_back({r.text.substr(u.begin, u.end - u.begin), true});
    at = u.end;
  }
  if (at < r.text.size() || out.empty()) out.push_back({r.text.substr(at), false});
  return out;
}

jinja::Rendered ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const {
  jinja::List msgs;
  for (size_t i = 0; i < messages.size(); ++i) {
    auto m = std::make_shared<jinja::Dict>();
    m->set("role", is_standard_role(messages[i].role) ? jinja::Value(messages[i].role) : jinja::Value::untrusted(messages[i].role));
    m->set("content", jinja::Value::untrusted(messages[i].content));
    merge_json_object(messages[i].extra_json, *m, fmt::format("message {} extra_json", i).c_str());
    msgs.emplace_back(std::move(m));
  }
  auto ctx = std::make_shared<jinja::Dict>();
  ctx->set("messages", jinja::Value(std::move(msgs)));
  ctx->set("tools", jinja::Value::none());
  ctx->set("documents", jinja::Value::none());
  ctx->set("add_generation_prompt", jinja::Value(opts.add_generation_prompt));
  ctx->set("bos_token", jinja::Value(opts.bos_token));
  ctx->set("eos_token", jinja::Value(opts.eos_token));
  merge_json_object(opts.extra_context_json, *ctx, "extra_context_json");
  return jinja::render(*program_, jinja::Value(std::move(ctx)), limits_);
}

}  // namespace contrail
