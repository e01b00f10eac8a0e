#include "bench_concurrency.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "contrail/core/error.h"
#include "contrail/engine/engine.h"
#include "contrail/tokenizer/tokenizer.h"

namespace contrail::cli {

std::vector<ConcurrencyResult> concurrency_sweep(std::shared_ptr<const ModelFile> model,
                                                 const std::vector<int64_t>& levels, int64_t n_prompt, int64_t n_gen,
                                                 int reps, int n_threads) {
  if (n_gen < 1) throw InvalidArgument(fmt::format("--concurrency needs -n/--n-gen >= 1 (got {})", n_gen));
  const Tokenizer tok(model->vocab);
  const int64_t c_max = *std::max_element(levels.begin(), levels.end());
  const int64_t n_vocab = model->config.n_vocab;
  const int64_t prompt_len = std::max<int64_t>(n_prompt, 1);
  engine::EngineConfig ec;
  ec.scheduler.max_running = c_max;
  ec.scheduler.max_waiting = c_max;
  ec.scheduler.max_batched_tokens = std::max<int64_t>(512, c_max);
  ec.scheduler.max_seq_len = prompt_len + n_gen + 1;
  ec.prefix_cache = false;  // distinct prompts anyway; measure the work itself
  ec.n_threads = n_threads;
  ec.block_size = 16;
  ec.n_blocks = c_max * ((prompt_len + n_gen + 15) / 16 + 1);
  auto eng = engine::Engine::create(model, tok, ec);

  std::vector<ConcurrencyResult> out;
  uint64_t next_id = 1;
  for (const int64_t c : levels) {
    std::vector<double> walls, decode_rates;
    for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up
      std::mutex mu;
      std::condition_variable cv;
      int64_t left = c, waiting_first = c;
      const auto t0 = std::chrono::steady_clock::now();
      auto t_all_first = t0;
      for (int64_t i = 0; i < c; ++i) {
        std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
        for (int64_t k = 0; k < prompt_len; ++k)
          prompt[static_cast<size_t>(k)] = static_cast<int32_t>((7919 * (k + 1) + 104729 * (i + 1) + r) % n_vocab);
        engine::RequestOptions o;
        o.max_tokens = n_gen;
        o.sampling.temperature = 0;
        o.ignore_eos = true;
        const auto st = eng->submit(next_id++, std::move(prompt), o,
                                    [&, first = true](const engine::RequestUpdate& u) mutable {
                                      std::lock_guard lk(mu);
                                      if (first && u.n_generated > 0) {
                                        first = false;
                                        if (--waiting_first == 0) t_all_first = std::chrono::steady_clock::now();
                                      }
                                      if (u.done && --left == 0) cv.notify_all();
                                    });
        if (st != engine::SubmitStatus::Ok) throw Error("bench: the engine refused a request");
      }
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return left == 0; });
      const auto t_end = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(t_end - t0).count();
      const double decode = std::chrono::duration<double>(t_end - t_all_first).count();
      if (r > 0) {
        walls.push_back(dt);
        if (n_gen > 1 && decode > 0) decode_rates.push_back(static_cast<double>(c * (n_gen - 1)) / decode);
      }
    }
    std::sort(decode_rates.begin(), decode_rates.end());
    std::sort(walls.begin(), walls.end());
    ConcurrencyResult res;
    res.concurrency = c;
    res.wall_s = walls[walls.size() / 2];
    res.tokens_per_s = static_cast<double>(c * n_gen) / res.wall_s;
    res.per_request_tps = res.tokens_per_s / static_cast<double>(c);
    res.decode_tokens_per_s = decode_rates.empty() ? 0 : decode_rates[decode_rates.size() / 2];
    out.push_back(res);
  }
  return out;
}

}  // namespace contrail::cli
