// Generation requests (/v1/completions, /v1/chat/completions) from a parsed body to the engine
// and back: the engine's updates become SSE events (stream) or one JSON body (aggregated), a
// client that goes away cancels its request, metrics observe TTFT / TPOT / end-to-end latency.
//
// Threads: start() runs on an HTTP worker; updates arrive on the engine thread (one at a time per
// request), disconnects on an I/O thread. A request's state is touched by its updates only; the
// disconnect path only reads an atomic flag and calls Engine::cancel (thread-safe).
#pragma once
#include <atomic>
#include <string>

#include "contrail/engine/engine.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace contrail::server {

class Generator {
 public:
  Generator(engine::Engine& engine, const ModelContext& ctx, Metrics& metrics, std::atomic<uint64_t>& next_id,
            const std::atomic<bool>& draining)
      : engine_(engine), ctx_(ctx), metrics_(metrics), next_id_(next_id), draining_(draining) {}

  // Validates, tokenizes and submits; the answer goes through `ex`. Throws ApiError when the
  // request is refused (bad request, queue full, shutting down): the caller answers it.
  void start(std::string body, bool chat, http::ExchangePtr ex);

 private:
  engine::Engine& engine_;
  const ModelContext& ctx_;
  Metrics& metrics_;
  std::atomic<uint64_t>& next_id_;
  const std::atomic<bool>& draining_;
};

}  // namespace contrail::server
