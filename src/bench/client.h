// HTTP side of the serving benchmark: any OpenAI-compatible server's POST /v1/completions with
// "stream": true (SSE "data: {json}" lines ending with "data: [DONE]"), token counting through
// POST /tokenize, and the load generator (Poisson arrivals, concurrency cap, warm-up).
//
// Contracts:
//  - Each request sends {"prompt", "max_tokens" = the request's output_len, "stream": true,
//    "stream_options": {"include_usage": true}, "ignore_eos", "temperature", "model" and "seed"
//    when set}. ignore_eos (default on) makes the server generate exactly max_tokens, so output
//    lengths follow the dataset as in vLLM's/JetStream's runs; servers that do not know the field
//    ignore it.
//  - Timing (vLLM's method): send time = just before the request is written (after any
//    concurrency wait); TTFT = first chunk with non-empty text; each further non-empty chunk adds
//    one ITL gap; latency = when the stream ends. Output tokens = usage.completion_tokens from the
//    final usage chunk when present, else the number of non-empty chunks.
//  - A request fails (success = false, error set) on a transport error, an HTTP status other
//    than 200, an {"error": ...} event, or a stream without any text; failures never throw.
//  - Arrivals: rate = +inf sends everything at once; otherwise inter-arrival gaps are drawn from
//    an exponential distribution with mean 1/rate (a Poisson process) from a seeded generator,
//    on a fixed schedule (no drift). max_concurrency > 0 caps requests in flight (later arrivals
//    wait, as vLLM's semaphore). One thread per request.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "bench/dataset.h"
#include "bench/metrics.h"

namespace contrail::bench {

struct Endpoint {
  std::string base_url = "http://127.0.0.1:8080";  // scheme://host[:port]
  std::string path = "/v1/completions";
  std::string model;    // sent as "model" when not empty
  std::string api_key;  // sent as "Authorization: Bearer ..." when not empty
  double temperature = 0;
  int64_t seed = -1;    // sent as "seed" when >= 0
  bool ignore_eos = true;
  double timeout_s = 600;  // per request, connect + each read
};

struct ServerInfo {
  bool reachable = false;
  int64_t max_model_len = 0;  // from GET /v1/models (vLLM and contrail report it); 0 = unknown
  std::string model_id;       // first listed model
};

// GET /v1/models. Throws Error naming the URL when nothing answers there (connection refused, bad
// URL); a server without /v1/models is reachable with unknown context.
ServerInfo probe_server(const Endpoint& ep);

// A TokenCounter calling POST {base_url}/tokenize {"prompt", "add_special_tokens"} and reading
// "count" (or the length of "tokens"); throws Error naming the status and body on failure.
TokenCounter server_token_counter(const Endpoint& ep);

// Sends one streaming request; send_s is absolute on the benchmark clock (now_s()).
RequestRecord send_request(const Endpoint& ep, const BenchRequest& req);

struct RunOptions {
  double request_rate = std::numeric_limits<double>::infinity();
  int64_t max_concurrency = 0;  // 0 = unlimited
  uint64_t seed = 0;
};

// (done, failed, total), called after each request completes, from worker threads (serialised).
using Progress = std::function<void(int64_t done, int64_t failed, int64_t total)>;

// Runs every request under the arrival process; records are in request order, send_s relative to
// the start of the run.
std::vector<RequestRecord> run_benchmark(const Endpoint& ep, const std::vector<BenchRequest>& reqs,
                                         const RunOptions& opt, const Progress& progress = {});

// Seconds on the steady clock (the benchmark clock).
double now_s();

}  // namespace contrail::bench
