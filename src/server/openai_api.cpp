#include "server/openai_api.h"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include "contrail/core/error.h"
#include "contrail/engine/stop_strings.h"

namespace contrail::server {
namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = "") {
  ApiError e;
  e.param = param;
  e.message = message;
  e.code = code;
  throw e;
}

const char* type_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

// Typed, range-checked optional fields: absent or null keeps `out` (the default).
class Fields {
 public:
  explicit Fields(const json& body) : body_(body) {}
  const json* get(const char* name) const {
    const auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }
  void number(const char* name, float& out, double lo, double hi, bool lo_open = false) const {
    const json* v = get(name);
    if (!v) return;
    if (!v->is_number()) bad(name, fmt::format("'{}' must be a number, got {}", name, type_of(*v)));
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
      bad(name, fmt::format("'{}' is {}, outside {}{}, {}]", name, v->dump(), lo_open ? "(" : "[", lo, hi));
    out = static_cast<float>(x);
  }
  template <typename Int>
  void integer(const char* name, Int& out, int64_t lo, int64_t hi) const {
    const json* v = get(name);
    if (!v) return;
    if (!v->is_number_integer()) bad(name, fmt::format("'{}' must be an integer, got {}", name, type_of(*v)));
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad(name, fmt::format("'{}' is {}, outside [{}, {}]", name, v->dump(), lo, hi));
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) bad(name, fmt::format("'{}' is {}, outside [{}, {}]", name, x, lo, hi));
    out = static_cast<Int>(x);
  }
  void boolean(const char* name, bool& out) const {
    const json* v = get(name);
    if (!v) return;
    if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean, got {}", name, type_of(*v)));
    out = v->get<bool>();
  }

 private:
  const json& body_;
};

std::vector<int32_t> token_array(const json& a, const char* name, int64_t n_vocab) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number_integer())
      bad(name, fmt::format("'{}[{}]' must be a token id (integer), got {}", name, i, type_of(a[i])));
    const int64_t t = a[i].get<int64_t>();
    if (t < 0 || t >= n_vocab) bad(name, fmt::format("'{}[{}]' is token id {}, outside [0, {})", name, i, t, n_vocab));
    ids.push_back(static_cast<int32_t>(t));
  }
  return ids;
}

// Request fields that would change the result but are not implemented: a 400 naming the field,
// never silently dropped (docs/SERVING.md lists them).
constexpr const char* kNotImplemented[] = {"tools", "tool_choice", "functions", "function_call", "response_format",
                                           "guided_json", "guided_regex", "guided_choice", "guided_grammar", "grammar",
                                           "json_schema", "modalities", "audio", "prediction", "reasoning_effort",
                                           "web_search_options", "logits_processors", "min_tokens", "use_beam_search",
                                           "length_penalty", "prompt_logprobs", "add_generation_prompt",
                                           "continue_final_message", "chat_template", "chat_template_kwargs",
                                           "documents"};

template <size_t N>
bool listed(const char* const (&list)[N], const std::string& k) {
  for (const char* x : list)
    if (k == x) return true;
  return false;
}

// Text beyond ModelContext::max_prompt_bytes cannot fit the context: refused before tokenizing.
void check_prompt_bytes(size_t bytes, const ModelContext& m, const char* param, const char* what) {
  if (bytes > m.max_prompt_bytes)
    bad(param,
        fmt::format("{} {} bytes; more than {} bytes cannot fit the context of {} tokens", what, bytes,
                    m.max_prompt_bytes, m.max_seq_len),
        "context_length_exceeded");
}

// Chat content beyond ModelContext::max_prompt_bytes cannot fit: refused before rendering and tokenizing.
void check_message_bytes(const json& body, const ModelContext& m) {
  const auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) return;
  size_t total = 0;
  for (const json& msg : *it) {
    if (!msg.is_object()) continue;
    const auto c = msg.find("content");
    if (c == msg.end()) continue;
    if (c->is_string()) total += c->get_ref<const std::string&>().size();
    if (c->is_array())
      for (const json& part : *c)
        if (part.is_object() && part.contains("text") && part["text"].is_string())
          total += part["text"].get_ref<const std::string&>().size();
  }
  check_prompt_bytes(total, m, "messages", "the messages hold");
}

// Fields that would change the result but are not implemented are refused; other unknown fields
// are ignored, as OpenAI's API does (they cannot be known to change anything).
void check_fields(const json& body) {
  for (const auto& [k, v] : body.items()) {
    if (!listed(kNotImplemented, k)) continue;
    bad(k, fmt::format("'{}' is not supported by this server (it would change the result, so it is not ignored)", k),
        "unsupported_parameter");
  }
}

// Chat messages -> the template's ChatMessage list. content: a string, or an array of
// {"type": "text", "text": ...} parts (joined); other members (tool_calls, name, ...) pass through.
std::vector<ChatMessage> parse_messages(const json& body) {
  const auto it = body.find("messages");
  if (it == body.end() || it->is_null()) bad("messages", "'messages' is required");
  if (!it->is_array()) bad("messages", fmt::format("'messages' must be an array, got {}", type_of(*it)));
  if (it->empty()) bad("messages", "'messages' is empty: at least one message is required");
  if (it->size() > 4096) bad("messages", fmt::format("'messages' has {} entries, the limit is 4096", it->size()));
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad(where, fmt::format("'{}' must be an object, got {}", where, type_of(m)));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) bad(where + ".role", fmt::format("'{}.role' must be a string", where));
    ChatMessage cm;
    cm.role = role->get<std::string>();
    const auto content = m.find("content");
    if (content != m.end() && !content->is_null()) {
      if (content->is_string()) {
        cm.content = content->get<std::string>();
      } else if (content->is_array()) {
        for (size_t k = 0; k < content->size(); ++k) {
          const json& part = (*content)[k];
          const std::string pw = fmt::format("{}.content[{}]", where, k);
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
            bad(pw, fmt::format("'{}' must be a {{\"type\": \"text\", \"text\": ...}} part (only text is supported)", pw));
          cm.content += part["text"].get<std::string>();
        }
      } else {
        bad(where + ".content", fmt::format("'{}.content' must be a string or an array of text parts, got {}", where,
                                            type_of(*content)));
      }
    }
    json extra = json::object();
    for (const auto& [k, v] : m.items())
      if (k != "role" && k != "content") extra[k] = v;
    if (!extra.empty()) cm.extra_json = extra.dump();
    out.push_back(std::move(cm));
  }
  return out;
}

}  // namespace

json ApiError::body() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiError api_error(int status, std::string message, std::string type, std::string code, std::string param) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  e.param = std::move(param);
  return e;
}

ApiError queue_full_error(const engine::Engine& engine) {
  return api_error(429,
                   fmt::format("the server is at capacity ({} requests waiting); retry later",
                               engine.config().scheduler.max_waiting),
                   "rate_limit_error", "queue_full");
}

ModelContext make_model_context(const engine::Engine& e, const ChatTemplate* tmpl, std::string name) {
  const Tokenizer& tok = e.tokenizer();
  ModelContext ctx;
  ctx.name = std::move(name);
  ctx.tokenizer = &tok;
  ctx.chat_template = tmpl;
  if (tok.bos_id() >= 0) ctx.bos_text = tok.token_to_bytes(tok.bos_id(), true);
  if (tok.eos_id() >= 0) ctx.eos_text = tok.token_to_bytes(tok.eos_id(), true);
  ctx.max_seq_len = e.max_seq_len();
  ctx.max_n = e.config().max_n;
  size_t longest = 4;  // an unknown character is one token of up to 4 bytes
  for (int32_t t = 0; t < tok.n_vocab(); ++t) longest = std::max(longest, tok.token_to_bytes(t, true).size());
  ctx.max_prompt_bytes = static_cast<size_t>(ctx.max_seq_len) * longest * 4;
  return ctx;
}

std::string preview(const json& v, size_t max) {
  std::string s = v.is_structured() ? std::string(v.is_array() ? "[...]" : "{...}") : dump(v);
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

json parse_json_body(std::string_view body) {
  // Nesting scan first: nlohmann's parser is iterative, but copying, dumping and destroying deep
  // values recurse, so a 100k-level body must never become a json value.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        bad("", fmt::format("the request body nests deeper than {} levels (at byte {})", kMaxJsonDepth, i));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    bad("", fmt::format("the request body is not valid JSON: {}", std::string(e.what()).substr(0, 200)));
  } catch (const json::exception& e) {  // out_of_range: 1e309 and friends
    bad("", fmt::format("the request body has a value JSON numbers cannot hold: {}",
                        std::string(e.what()).substr(0, 200)));
  }
}

json tokenize(const json& body, const ModelContext& m) {
  if (!body.is_object() || !body.contains("prompt") || !body["prompt"].is_string()) bad("prompt", "'prompt' must be a string");
  bool add_special = true;
  if (body.contains("add_special_tokens")) {
    if (!body["add_special_tokens"].is_boolean())
      bad("add_special_tokens", "'add_special_tokens' must be a boolean");
    add_special = body["add_special_tokens"].get<bool>();
  }
  const std::string& text = body["prompt"].get_ref<const std::string&>();
  check_prompt_bytes(text.size(), m, "prompt", "'prompt' is");
  const auto ids = m.tokenizer->encode(text, add_special);
  return {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", m.max_seq_len}};
}

json detokenize(const json& body, const ModelContext& m) {
  if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
    bad("tokens", "'tokens' must be an array of token ids");
  const auto ids = token_array(body["tokens"], "tokens", m.tokenizer->n_vocab());
  return {{"prompt", m.tokenizer->decode(ids)}};
}

const char* api_finish_reason(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::Stop: return "stop";
    case engine::FinishReason::Length: return "length";
    case engine::FinishReason::Cancelled: return "abort";
    case engine::FinishReason::Error: return "error";
    case engine::FinishReason::None: break;
  }
  return nullptr;
}

ParsedRequest parse_completion_request(const json& body, const ModelContext& m, bool chat) {
  if (!body.is_object()) bad("", fmt::format("the request body must be a JSON object, got {}", type_of(body)));
  check_fields(body);
  if (chat && body.contains("echo")) bad("echo", "'echo' is not supported for chat completions", "unsupported_parameter");
  if (chat) check_message_bytes(body, m);
  const Fields f(body);
  ParsedRequest r;
  r.chat = chat;
  if (const json* model = f.get("model")) {
    if (!model->is_string()) bad("model", fmt::format("'model' must be a string, got {}", type_of(*model)));
    if (model->get<std::string>() != m.name)
      bad("model", fmt::format("model '{}' does not exist; this server serves '{}'", model->get<std::string>(), m.name),
          "model_not_found");
  }
  const int64_t n_vocab = m.tokenizer->n_vocab();
  if (chat) {
    if (!m.chat_template)
      bad("messages", fmt::format("model '{}' has no chat template (tokenizer.chat_template / tokenizer_config.json); use "
                                  "/v1/completions, or start the server with --chat-template FILE",
                                  m.name));
    ChatTemplateOptions to;
    to.add_generation_prompt = true;
    to.bos_token = m.bos_text;
    to.eos_token = m.eos_text;
    if (const json* tools = f.get("tools")) to.extra_context_json = json{{"tools", *tools}}.dump();
    std::vector<PromptSegment> segments;  // the render; message content is untrusted, never control tokens
    try {
      segments = m.chat_template->apply_segments(parse_messages(body), to);
    } catch (const TemplateException& e) {
      bad("messages", fmt::format("the chat template rejected the conversation: {}", e.message()));
    } catch (const Error& e) {
      bad("messages", fmt::format("the chat template failed: {}", e.what()));
    }
    r.prompt_text = join_segments(segments);
    const bool has_bos = starts_with_trusted(segments, m.bos_text);  // BOS written by the template itself
    r.prompt = m.tokenizer->encode_segments(segments, /*add_special=*/!has_bos);
  } else {
    const json* p = f.get("prompt");
    if (!p) bad("prompt", "'prompt' is required");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (p->is_string()) {
      r.prompt_text = p->get<std::string>();
      if (r.prompt_text.empty()) bad("prompt", "'prompt' is empty");
      check_prompt_bytes(r.prompt_text.size(), m, "prompt", "'prompt' is");
      r.prompt = m.tokenizer->encode(r.prompt_text, /*add_special=*/true);
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
      r.prompt = token_array(*p, "prompt", n_vocab);
      r.prompt_text = m.tokenizer->decode(r.prompt);
    } else if (p->is_array() && p->empty()) {
      bad("prompt", "'prompt' is empty");
    } else if (p->is_array() && (*p)[0].is_string()) {
      bad("prompt", fmt::format("'prompt' has {} strings; send one prompt per request", p->size()));
    } else {
      bad("prompt", fmt::format("'prompt' must be a string or an array of token ids, got {}", type_of(*p)));
    }
  }
  const auto n_prompt = static_cast<int64_t>(r.prompt.size());
  if (n_prompt == 0) bad(chat ? "messages" : "prompt", "the prompt encodes to no tokens");
  if (n_prompt >= m.max_seq_len)
    bad(chat ? "messages" : "prompt",
        fmt::format("the prompt is {} tokens; the model's context is {} tokens, so at most {} prompt tokens fit",
                    n_prompt, m.max_seq_len, m.max_seq_len - 1),
        "context_length_exceeded");

  engine::RequestOptions& o = r.opts;
  // OpenAI defaults: temperature 1, nucleus and top-k off; completions generate 16 tokens by default,
  // chat until the context is full.
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.min_p = 0.0f;
  o.max_tokens = chat ? m.max_seq_len - n_prompt : 16;
  // max_completion_tokens (chat) replaces the deprecated max_tokens when it is given (not null).
  const char* max_name = chat && f.get("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  f.integer(max_name, o.max_tokens, 1, INT64_MAX);
  if (o.max_tokens > m.max_seq_len - n_prompt)  // (never n_prompt + max_tokens: it can overflow)
    bad(max_name,
        fmt::format("'{}' is {}, but the prompt has {} tokens and the context is {} tokens: at most {}", max_name,
                    o.max_tokens, n_prompt, m.max_seq_len, m.max_seq_len - n_prompt),
        "context_length_exceeded");
  f.number("temperature", o.sampling.temperature, 0.0, 2.0);
  f.number("top_p", o.sampling.top_p, 0.0, 1.0, /*lo_open=*/true);
  f.integer("top_k", o.sampling.top_k, -1, n_vocab);
  if (o.sampling.top_k < 0) o.sampling.top_k = 0;  // -1 = off (vLLM)
  f.number("min_p", o.sampling.min_p, 0.0, 1.0);
  f.number("presence_penalty", o.sampling.presence_penalty, -2.0, 2.0);
  f.number("frequency_penalty", o.sampling.frequency_penalty, -2.0, 2.0);
  f.number("repetition_penalty", o.sampling.repeat_penalty, 0.0, 10.0, /*lo_open=*/true);
  o.sampling.penalty_last_n = -1;  // OpenAI penalties count every generated token
  if (f.get("seed")) {
    int64_t seed = 0;
    f.integer("seed", seed, INT64_MIN, INT64_MAX);
    o.sampling.seed = static_cast<uint64_t>(seed);
  } else {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    o.sampling.seed = rng();
  }
  f.integer("n", o.n, 1, m.max_n);
  if (f.get("best_of")) {
    int best_of = 0;
    f.integer("best_of", best_of, 1, m.max_n);
    if (best_of != o.n) bad("best_of", fmt::format("'best_of' {} != n {} is not supported", best_of, o.n));
  }
  if (const json* s = f.get("stop")) {
    if (s->is_string()) {
      o.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      for (size_t i = 0; i < s->size(); ++i) {
        if (!(*s)[i].is_string()) bad("stop", fmt::format("'stop[{}]' must be a string, got {}", i, type_of((*s)[i])));
        o.stop.push_back((*s)[i].get<std::string>());
      }
    } else {
      bad("stop", fmt::format("'stop' must be a string or an array of strings, got {}", type_of(*s)));
    }
    if (o.stop.size() > engine::StopMatcher::kMaxStops)
      bad("stop", fmt::format("'stop' has {} strings, the limit is {}", o.stop.size(), engine::StopMatcher::kMaxStops));
    for (const std::string& x : o.stop)
      if (x.size() > engine::StopMatcher::kMaxStopBytes)
        bad("stop", fmt::format("a stop string is {} bytes, the limit is {}", x.size(), engine::StopMatcher::kMaxStopBytes));
  }
  if (const json* s = f.get("stop_token_ids")) {
    if (!s->is_array()) bad("stop_token_ids", fmt::format("'stop_token_ids' must be an array, got {}", type_of(*s)));
    if (s->size() > 1024) bad("stop_token_ids", fmt::format("'stop_token_ids' has {} ids, the limit is 1024", s->size()));
    o.stop_token_ids = token_array(*s, "stop_token_ids", n_vocab);
  }
  f.boolean("ignore_eos", o.ignore_eos);
  f.boolean("stream", r.stream);
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object()) bad("stream_options", fmt::format("'stream_options' must be an object, got {}", type_of(*so)));
    for (const auto& [k, v] : so->items())
      if (k != "include_usage")
        bad("stream_options." + k.substr(0, 64), fmt::format("unknown parameter 'stream_options.{}'", k.substr(0, 64)),
            "unknown_parameter");
    if (const auto iu = so->find("include_usage"); iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean())
        bad("stream_options.include_usage",
            fmt::format("'stream_options.include_usage' must be a boolean, got {}", type_of(*iu)));
      r.include_usage = iu->get<bool>();
    }
  }
  if (chat) {
    f.boolean("logprobs", r.logprobs);
    int top = 0;
    f.integer("top_logprobs", top, 0, 20);
    if (f.get("top_logprobs") && !r.logprobs) bad("top_logprobs", "'top_logprobs' requires 'logprobs': true");
    o.top_logprobs = r.logprobs ? top : -1;
  } else {
    f.integer("logprobs", o.top_logprobs, 0, 20);
    r.logprobs = o.top_logprobs >= 0;
    f.boolean("echo", r.echo);
    if (const json* sfx = f.get("suffix"))
      if (!sfx->is_string() || !sfx->get<std::string>().empty()) bad("suffix", "'suffix' is not supported");
  }
  if (const json* lb = f.get("logit_bias")) {
    if (!lb->is_object()) bad("logit_bias", fmt::format("'logit_bias' must be an object, got {}", type_of(*lb)));
    if (!lb->empty()) bad("logit_bias", "'logit_bias' is not supported yet");
  }
  if (const json* u = f.get("user"))
    if (!u->is_string()) bad("user", fmt::format("'user' must be a string, got {}", type_of(*u)));
  return r;
}

namespace {

std::string piece(const ModelContext& m, int32_t t) { return m.tokenizer->token_to_bytes(t); }

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(c);
  return b;
}

json completion_logprobs(const ModelContext& m, const std::vector<engine::TokenLogprob>& lps, size_t text_offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& lp : lps) {
    const std::string p = piece(m, lp.token);
    tokens.push_back(p);
    token_lps.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [t, l] : lp.top) top[piece(m, t)] = l;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += p.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_logprobs(const ModelContext& m, const std::vector<engine::TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& lp : lps) {
    const std::string p = piece(m, lp.token);
    json top = json::array();
    for (const auto& [t, l] : lp.top) {
      const std::string tp = piece(m, t);
      top.push_back({{"token", tp}, {"logprob", l}, {"bytes", bytes_of(tp)}});
    }
    content.push_back({{"token", p}, {"logprob", lp.logprob}, {"bytes", bytes_of(p)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json finish_json(engine::FinishReason r) {
  const char* s = api_finish_reason(r);
  return s ? json(s) : json(nullptr);
}

json usage(int64_t n_prompt, int64_t n_generated) {
  return {{"prompt_tokens", n_prompt}, {"completion_tokens", n_generated}, {"total_tokens", n_prompt + n_generated}};
}

}  // namespace

json completion_response(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                         const std::vector<ChoiceResult>& choices, int64_t n_prompt, int64_t n_generated) {
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json j = {{"index", i}, {"finish_reason", finish_json(c.finish)}};
    if (req.chat) {
      j["message"] = {{"role", "assistant"}, {"content", c.text}};
      j["logprobs"] = req.logprobs ? chat_logprobs(m, c.logprobs) : json(nullptr);
    } else {
      const std::string prefix = req.echo ? req.prompt_text : std::string();
      j["text"] = prefix + c.text;
      j["logprobs"] = req.logprobs ? completion_logprobs(m, c.logprobs, prefix.size()) : json(nullptr);
    }
    cs.push_back(std::move(j));
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", m.name},
          {"choices", cs},
          {"usage", usage(n_prompt, n_generated)}};
}

json stream_chunk(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                  const engine::ChoiceDelta& d, bool first_chat_chunk, size_t text_offset) {
  json c = {{"index", d.index}, {"finish_reason", finish_json(d.finish)}};
  if (req.chat) {
    json delta = json::object();
    if (first_chat_chunk) delta["role"] = "assistant";
    if (!d.text.empty() || first_chat_chunk) delta["content"] = d.text;
    c["delta"] = delta;
    c["logprobs"] = req.logprobs ? chat_logprobs(m, d.logprobs) : json(nullptr);
  } else {
    c["text"] = d.text;
    c["logprobs"] = req.logprobs ? completion_logprobs(m, d.logprobs, text_offset) : json(nullptr);
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", m.name},
          {"choices", json::array({c})}};
}

json usage_chunk(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                 int64_t n_prompt, int64_t n_generated) {
  return {{"id", id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", m.name},
          {"choices", json::array()},
          {"usage", usage(n_prompt, n_generated)}};
}

}  // namespace contrail::server
