// `contrail serve`: the OpenAI-compatible HTTP server over the continuous-batching engine.
// SIGTERM / SIGINT drain gracefully (in-flight requests finish or are cancelled at the deadline)
// and the process exits 0.
#include <fmt/format.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common.h"
#include "contrail/chat/chat_template.h"
#include "contrail/core/error.h"
#include "contrail/engine/engine.h"
#include "contrail/server/server.h"

namespace contrail::cli {
namespace {

struct ServeArgs {
  ModelOptions model;
  server::ServerConfig server;
  engine::EngineConfig engine;
  std::string template_file;
  int64_t kv_mib = 256;
  std::string kv_dtype = "f16";
  double drain_s = 30;
  double header_s = 10, body_s = 30;
  int64_t body_mib = 8, upload_mib = 256;
};

std::string default_name(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
  if (p.filename().empty()) return "model";
  const std::string ext = p.extension().string();
  return ext == ".gguf" || ext == ".bin" ? p.stem().string() : p.filename().string();
}

int serve(ServeArgs& a) {
  // Signals go to the waiting thread only: block them before any other thread exists.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const std::string path = resolve_model(a.model);
  auto model = std::make_shared<const ModelFile>(load_model_file(path, session_options(a.model).load));
  const Tokenizer tok(model->vocab);
  std::unique_ptr<ChatTemplate> tmpl;
  const std::string source =
      a.template_file.empty() ? model->vocab.chat_template : read_text_file(a.template_file, "chat template file");
  if (!source.empty()) {
    try {
      tmpl = std::make_unique<ChatTemplate>(source);
    } catch (const Error& e) {
      // A template outside the supported subset: completions still work, chat answers 400.
      std::fprintf(stderr, "contrail serve: warning: the chat template cannot be used: %s\n", e.what());
    }
  }
  a.engine.kv_cache_bytes = static_cast<size_t>(a.kv_mib) << 20;
  if (a.kv_dtype == "f32") a.engine.kv_dtype = DType::F32;
  else if (a.kv_dtype == "f16") a.engine.kv_dtype = DType::F16;
  else if (a.kv_dtype == "q8_0" || a.kv_dtype == "int8") a.engine.kv_dtype = DType::Q8_0;
  else throw InvalidArgument(fmt::format("--kv-dtype '{}': expected f32, f16 or q8_0", a.kv_dtype));
  a.engine.n_threads = a.model.threads;
  if (a.model.ctx > 0) a.engine.scheduler.max_seq_len = a.model.ctx;
  auto eng = engine::Engine::create(model, tok, a.engine);
  if (a.server.model_name.empty()) a.server.model_name = default_name(path);
  if (a.server.api_key.empty())
    if (const char* k = std::getenv("CONTRAIL_API_KEY")) a.server.api_key = k;
  a.server.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.drain_s * 1000));
  a.server.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.header_s * 1000));
  a.server.body_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.body_s * 1000));
  a.server.max_body_bytes = static_cast<size_t>(a.body_mib) << 20;
  a.server.max_body_bytes_in_flight = static_cast<size_t>(a.upload_mib) << 20;
  if (a.upload_mib < a.body_mib)
    throw InvalidArgument(fmt::format("--max-upload-mib {} is below --max-body-mib {}: no body of the allowed size "
                                      "could be received",
                                      a.upload_mib, a.body_mib));
  server::Server srv(*eng, tmpl.get(), a.server);
  const int port = srv.bind();
  std::fprintf(stderr,
               "contrail serve: '%s' (%s) on http://%s:%d | context %lld, KV %lld blocks x %lld tokens %s, "
               "max_batched_tokens %lld, max_running %lld, max_waiting %lld%s%s\n",
               a.server.model_name.c_str(), path.c_str(), a.server.host.c_str(), port,
               static_cast<long long>(eng->max_seq_len()), static_cast<long long>(eng->config().n_blocks),
               static_cast<long long>(a.engine.block_size), a.kv_dtype.c_str(),
               static_cast<long long>(a.engine.scheduler.max_batched_tokens),
               static_cast<long long>(a.engine.scheduler.max_running),
               static_cast<long long>(a.engine.scheduler.max_waiting), tmpl ? ", chat template" : ", no chat template",
               a.server.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == 0) return;
    std::fprintf(stderr, "contrail serve: %s: draining (up to %.0f s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 a.drain_s);
    std::fflush(stderr);
    srv.shutdown();
  });
  srv.serve();
  // serve() returned: either shutdown() ran in the waiter, or the listener failed.
  srv.shutdown();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes sigwait if no signal came
  waiter.join();
  const engine::EngineStats end = eng->stats();
  std::fprintf(stderr, "contrail serve: stopped after %lld requests (%lld prompt / %lld generated tokens)\n",
               static_cast<long long>(end.requests_finished), static_cast<long long>(end.prompt_tokens),
               static_cast<long long>(end.generation_tokens));
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, int& status) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  sub->footer(
      "Endpoints: POST /v1/completions, POST /v1/chat/completions (\"stream\": true for SSE), GET /v1/models,\n"
      "GET /health, GET /metrics (Prometheus), POST /tokenize, POST /detokenize.\n"
      "SIGTERM/SIGINT drain: new requests get 503, in-flight ones finish (or are cancelled at --drain-timeout).\n"
      "Example:  contrail serve -m ./Qwen2-0.5B-Instruct --port 8080 --api-key secret");
  add_model_options(*sub, a->model);
  sub->add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", a->server.port, "Port (0 = any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  sub->add_option("--api-key", a->server.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize [default: $CONTRAIL_API_KEY]");
  sub->add_option("--model-name", a->server.model_name, "Model id clients use [default: the model's file or folder name]");
  sub->add_option("--chat-template", a->template_file, "Jinja chat template file instead of the model's own")
      ->check(CLI::ExistingFile);
  sub->add_option("--max-batched-tokens", a->engine.scheduler.max_batched_tokens, "Tokens per engine step, all sequences")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--max-running", a->engine.scheduler.max_running, "Sequences decoded together")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub->add_option("--max-waiting", a->engine.scheduler.max_waiting, "Queued requests before answering 429")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  sub->add_option("--kv-cache-mib", a->kv_mib, "KV cache memory (MiB)")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--kv-dtype", a->kv_dtype,
                  "KV cache storage: f16, f32 (exact), or q8_0 = int8 with a scale per 32 values (head_dim % 32 == 0)")
      ->capture_default_str();
  sub->add_option("--block-size", a->engine.block_size, "Tokens per KV block")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_flag("!--no-prefix-cache", a->engine.prefix_cache, "Disable prefix caching");
  sub->add_option("--max-n", a->engine.max_n, "Largest 'n' (choices per request)")->capture_default_str()->check(CLI::Range(1, 128));
  sub->add_option("--http-threads", a->server.http_threads,
                  "Worker threads parsing requests (JSON, tokenization); connections need no threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_option("--io-threads", a->server.io_threads, "Threads serving every socket")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--max-connections", a->server.max_connections, "Open connections at most (beyond: 503, closed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  sub->add_option("--max-body-mib", a->body_mib, "Largest request body (MiB, also for chunked bodies)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--max-upload-mib", a->upload_mib,
                  "Request bodies being received or waiting, all connections together (MiB; beyond: 503)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  sub->add_option("--header-timeout", a->header_s,
                  "Seconds a client has to send a request's whole header (and a keep-alive connection may idle)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--body-timeout", a->body_s, "Seconds a client has to send a request's body")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--drain-timeout", a->drain_s, "Seconds in-flight requests may take to finish on SIGTERM")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  sub->callback([a, &status] { status = serve(*a); });
}

}  // namespace contrail::cli
