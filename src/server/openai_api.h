// The OpenAI-compatible protocol, separate from HTTP: request JSON -> engine request (validated),
// engine updates -> response / stream-chunk JSON. Pure functions, unit-testable without a socket.
//
// Validation contract: every problem is an ApiError with HTTP status 400 (or the status named)
// and an OpenAI error body {"error": {"message", "type", "param", "code"}} whose message names
// the parameter, the offending value (abbreviated, never echoed whole) and the accepted range.
// Known fields with the wrong JSON type are errors; fields that would change the result but are
// not implemented (tools, response_format, ...) are errors naming the field (docs/SERVING.md lists
// them); other unknown fields (user, metadata, ...) are ignored, as OpenAI's API does.
// JSON bodies nest at most kMaxJsonDepth levels: checked before anything recurses over them.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "contrail/chat/chat_template.h"
#include "contrail/engine/engine.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail::server {

using nlohmann::json;

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" = null
  std::string code;   // "" = null
  json body() const;
};

// What the protocol layer needs to know about the served model.
struct ModelContext {
  std::string name;                  // the model id clients must use (or omit)
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat_template = nullptr;  // null: /v1/chat/completions answers 400
  std::string bos_text, eos_text;    // special token text passed to the template
  int64_t max_seq_len = 0;           // prompt + max_tokens limit
  int max_n = 16;
  // Prompt text longer than this cannot fit max_seq_len tokens (each token covers at most the
  // longest vocabulary piece, x4 for normalisation): refused before tokenizing it.
  size_t max_prompt_bytes = SIZE_MAX;
};

ModelContext make_model_context(const engine::Engine& engine, const ChatTemplate* tmpl, std::string name);

ApiError api_error(int status, std::string message, std::string type = "invalid_request_error",
                   std::string code = "", std::string param = "");
// 429 naming the queue limit.
ApiError queue_full_error(const engine::Engine& engine);

constexpr int kMaxJsonDepth = 64;
// Parses a request body: ApiError 400 for invalid JSON, numbers out of range (1e309) or nesting
// deeper than kMaxJsonDepth (checked by a scan before parsing, so nothing recurses deeper).
json parse_json_body(std::string_view body);
// At most `max` bytes of a value's JSON text, for error messages.
std::string preview(const json& v, size_t max = 40);

// /tokenize {"prompt", "add_special_tokens"} and /detokenize {"tokens"} answers.
json tokenize(const json& body, const ModelContext& m);
json detokenize(const json& body, const ModelContext& m);

struct ParsedRequest {
  bool chat = false;
  std::vector<int32_t> prompt;       // token ids given to the engine
  std::string prompt_text;           // for echo
  engine::RequestOptions opts;
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  bool echo = false;                 // completions: prepend the prompt text
  bool logprobs = false;             // chat: logprobs requested
};

// /v1/completions and /v1/chat/completions bodies. A seed is drawn at random when the client gives
// none, so unseeded sampling differs between requests (as OpenAI's).
ParsedRequest parse_completion_request(const json& body, const ModelContext& m, bool chat);

// The JSON of a whole (non-streamed) response. `choices` are the accumulated per-choice results.
struct ChoiceResult {
  std::vector<int32_t> tokens;
  std::string text;
  std::vector<engine::TokenLogprob> logprobs;
  engine::FinishReason finish = engine::FinishReason::None;
};
// OpenAI finish_reason: "stop", "length", "abort" (cancelled: server shutdown), "error".
const char* api_finish_reason(engine::FinishReason r);

json completion_response(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                         const std::vector<ChoiceResult>& choices, int64_t n_prompt, int64_t n_generated);
// One streamed chunk for one choice's delta (the role delta of a chat stream's first chunk when
// first_chat_chunk).
// text_offset: bytes of this choice's text streamed before this chunk (the prompt's too with echo),
// for completions logprobs.
json stream_chunk(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                  const engine::ChoiceDelta& d, bool first_chat_chunk, size_t text_offset);
// The usage-only final chunk (stream_options.include_usage).
json usage_chunk(const std::string& id, int64_t created, const ModelContext& m, const ParsedRequest& req,
                 int64_t n_prompt, int64_t n_generated);

// Any JSON value as text: invalid UTF-8 in strings becomes U+FFFD instead of throwing.
std::string dump(const json& j);

}  // namespace contrail::server
