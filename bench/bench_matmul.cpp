// Micro-benchmarks of ops::matmul for each weight dtype at TinyLlama-ish shapes (2048x2048 attention,
// 5632x2048 feed-forward) and at 4096x4096, with 1, 32 and 128 tokens, on 1 and 2 threads.
// bytes_per_second counts the weight bytes (generation is bandwidth bound: compare it with the
// machine's memory bandwidth); FLOP/s counts 2 * n_out * n_in * n_tokens per call. Calls cycle
// through copies of the weights totalling >= kColdBytes, so weights come from DRAM as in a real
// model (one matrix alone may fit the last-level cache and overstate the bandwidth).
// Run: contrail_microbench --benchmark_filter=matmul/  (CONTRAIL_ISA=avx2|scalar to compare ISAs)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/dtype.h"
#include "contrail/core/half.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/kernels/quantize.h"
#include "contrail/ops/matmul.h"

namespace contrail {
namespace {

// Deterministic values in [-1, 1) (the content does not affect speed; no subnormals).
std::vector<float> pseudo_random(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = seed;
  for (float& f : v) {
    s = s * 1664525u + 1013904223u;
    f = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  return v;
}

constexpr size_t kColdBytes = size_t{256} << 20;

// A (n_out, n_in) weight tensor of dtype dt that owns its storage.
Tensor make_weights(DType dt, int64_t n_out, int64_t n_in) {
  const std::vector<float> v = pseudo_random(n_out * n_in, 7);
  Tensor w = Tensor::empty(dt, {n_out, n_in});
  switch (dt) {
    case DType::F32: std::copy(v.begin(), v.end(), w.data_as<float>()); break;
    case DType::F16:
      for (size_t i = 0; i < v.size(); ++i) w.data_as<uint16_t>()[i] = f32_to_f16(v[i]);
      break;
    case DType::BF16:
      for (size_t i = 0; i < v.size(); ++i) w.data_as<uint16_t>()[i] = f32_to_bf16(v[i]);
      break;
    default: kernels::quantize_row_q8_0(v.data(), n_out * n_in, w.data_as<BlockQ8_0>()); break;
  }
  return w;
}

void bm_matmul(benchmark::State& state, DType dt, int64_t n_out, int64_t n_in, int64_t n_tokens, int threads) {
  std::vector<Tensor> ws{make_weights(dt, n_out, n_in)};
  while (ws.size() * ws[0].nbytes() < kColdBytes) {
    ws.push_back(Tensor::empty(dt, {n_out, n_in}));
    std::memcpy(ws.back().data(), ws[0].data(), ws[0].nbytes());
  }
  const std::vector<float> xv = pseudo_random(n_tokens * n_in, 11);
  const Tensor x(DType::F32, {n_tokens, n_in}, const_cast<float*>(xv.data()));  // (n_tokens, n_in)
  Tensor y = Tensor::empty(DType::F32, {n_tokens, n_out});                      // (n_tokens, n_out)
  ThreadPool pool(threads);
  size_t next = 0;
  for (auto _ : state) {
    ops::matmul(ws[next], x, y, pool);
    next = next + 1 == ws.size() ? 0 : next + 1;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(ws[0].nbytes()));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_out * n_in * n_tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(isa_name(active_isa())));
}

const bool kRegistered = [] {
  struct Shape {
    int64_t n_out, n_in;
  };
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0})
    for (Shape s : {Shape{2048, 2048}, Shape{5632, 2048}, Shape{4096, 4096}})
      for (int64_t n_tokens : {1, 32, 128})
        for (int threads : {1, 2}) {
          const std::string name = "matmul/" + std::string(dtype_name(dt)) + "/" + std::to_string(s.n_out) + "x" +
                                   std::to_string(s.n_in) + "/tokens:" + std::to_string(n_tokens) +
                                   "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), bm_matmul, dt, s.n_out, s.n_in, n_tokens, threads)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
  return true;
}();

}  // namespace
}  // namespace contrail
