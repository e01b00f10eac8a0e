// `contrail logits`: evaluate token ids as one sequence, write every position's logits as
// little-endian float32 [n_tokens, n_vocab] (atomically: temp file + rename).
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <bit>
#include <cstring>

#include "common.h"
#include "contrail/core/error.h"

namespace contrail::cli {
namespace {

struct LogitsArgs {
  ModelOptions model;
  std::string tokens;
  std::string out;
};

void write_atomic(const std::string& path, const void* data, size_t n) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(fmt::format("cannot create '{}': {}", tmp, std::strerror(errno)));
  const bool ok = std::fwrite(data, 1, n, f) == n && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(e)));
  }
}

int logits(const LogitsArgs& a) {
  const std::vector<int32_t> ids = parse_id_list(a.tokens);
  if (ids.empty()) throw InvalidArgument("--tokens is empty: give at least one token id");
  SessionOptions so = session_options(a.model);
  if (so.n_ctx <= 0) so.n_ctx = static_cast<int64_t>(ids.size());
  auto session = Session::load(resolve_model(a.model), so);
  const std::vector<float> lg = session->evaluate_all(ids);  // (n_tokens, n_vocab)
  static_assert(std::endian::native == std::endian::little, "logits files are little-endian");
  write_atomic(a.out, lg.data(), lg.size() * sizeof(float));
  std::fprintf(stderr, "wrote %zu x %lld logits to %s\n", ids.size(), static_cast<long long>(session->config().n_vocab),
               a.out.c_str());
  return 0;
}

}  // namespace

void register_logits(CLI::App& app, int& status) {
  auto args = std::make_shared<LogitsArgs>();
  CLI::App* sub = app.add_subcommand(
      "logits", "Evaluate token ids as one sequence; write float32 LE logits [n_tokens, n_vocab]");
  add_model_options(*sub, args->model);
  sub->add_option("--tokens", args->tokens, "Comma-separated token ids, e.g. 1,450,4996 (no BOS is added)")
      ->required();
  sub->add_option("-o,--output", args->out, "Output file")->required();
  sub->callback([args, &status] { status = logits(*args); });
}

}  // namespace contrail::cli
