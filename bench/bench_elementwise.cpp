// Micro-benchmarks of the elementwise and attention ops at decode-step sizes of a 7B-class model,
// one thread, per ISA (the first argument: 0 scalar, 1 avx2, 2 avx512; unsupported ones are skipped).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/ops/activation.h"
#include "contrail/ops/attention.h"
#include "contrail/ops/norm.h"
#include "contrail/ops/rope.h"
#include "contrail/ops/softmax.h"

namespace {

using contrail::DType;
using contrail::Isa;
using contrail::Tensor;
using contrail::ThreadPool;

// Selects the benchmark's ISA for its duration (restoring the previous one), or skips it.
class IsaScope {
 public:
  explicit IsaScope(benchmark::State& state) : saved_(contrail::active_isa()) {
    const Isa isa = static_cast<Isa>(state.range(0));
    ok_ = contrail::isa_supported(isa);
    if (!ok_) {
      state.SkipWithError("ISA not supported by this CPU");
      return;
    }
    contrail::set_active_isa(isa);
    state.SetLabel(std::string(contrail::isa_name(isa)));
  }
  ~IsaScope() { contrail::set_active_isa(saved_); }
  bool ok() const { return ok_; }

 private:
  Isa saved_;
  bool ok_ = false;
};

Tensor random_tensor(std::vector<int64_t> shape, float lo, float hi, uint32_t seed) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

void BM_RmsNorm(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 2048;
  const Tensor x = random_tensor({1, n}, -2, 2, 1), w = random_tensor({n}, 0.9f, 1.1f, 2);
  Tensor y = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    contrail::ops::rmsnorm(x, w, 1e-5f, y, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RmsNorm)->DenseRange(0, 2);

void BM_Softmax(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  const int64_t n = 32000;
  Tensor x = random_tensor({1, n}, -10, 10, 3);  // in place: later iterations see probabilities, same cost
  for (auto _ : state) {
    contrail::ops::softmax_rows(x);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Softmax)->DenseRange(0, 2);

// GPT-2 style LayerNorm of one 2048-wide row (weight and bias).
void BM_LayerNorm(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 2048;
  const Tensor x = random_tensor({1, n}, -2, 2, 10), w = random_tensor({n}, 0.9f, 1.1f, 11);
  const Tensor b = random_tensor({n}, -0.1f, 0.1f, 12);
  Tensor y = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    contrail::ops::layernorm(x, w, b, 1e-5f, y, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_LayerNorm)->DenseRange(0, 2);

// Second argument: 0 = Normal (adjacent pairs), 1 = Neox (halves).
void BM_Rope(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  Tensor x = random_tensor({1, 32, 64}, -1, 1, 4);  // (n_tokens, n_heads, head_dim); rotation keeps it bounded
  const int32_t pos = 777;
  contrail::ops::RopeParams p;
  p.n_rot = 64;
  p.mode = state.range(1) ? contrail::ops::RopeMode::Neox : contrail::ops::RopeMode::Normal;
  for (auto _ : state) {
    contrail::ops::rope(x, &pos, p, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * x.numel());
}
BENCHMARK(BM_Rope)->ArgsProduct({{0, 1, 2}, {0, 1}});

void BM_Swiglu(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 5632;
  const Tensor gate = random_tensor({1, n}, -6, 6, 5), up = random_tensor({1, n}, -1, 1, 6);
  Tensor out = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    contrail::ops::swiglu(gate, up, out, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Swiglu)->DenseRange(0, 2);

// Gemma's GeGLU at a 2B-class FFN width.
void BM_Geglu(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 16384;
  const Tensor gate = random_tensor({1, n}, -6, 6, 13), up = random_tensor({1, n}, -1, 1, 14);
  Tensor out = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    contrail::ops::geglu(gate, up, out, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Geglu)->DenseRange(0, 2);

// GPT-2's in-place GELU at its FFN width (4 * 768); the input is refreshed from a copy each step.
void BM_Gelu(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 3072;
  const Tensor src = random_tensor({1, n}, -6, 6, 15);
  Tensor x = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    std::copy_n(src.data_as<float>(), n, x.data_as<float>());
    contrail::ops::gelu_inplace(x, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Gelu)->DenseRange(0, 2);

// Gemma 2's final logit soft-capping (cap 30) over a 32000-entry vocabulary, then Gemma's in-place
// embedding scale on the same row; the input is refreshed from a copy each step.
void BM_SoftcapScale(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n = 32000;
  const Tensor src = random_tensor({1, n}, -60, 60, 16);
  Tensor x = Tensor::empty(DType::F32, {1, n});
  for (auto _ : state) {
    std::copy_n(src.data_as<float>(), n, x.data_as<float>());
    if (state.range(1) == 0)
      contrail::ops::softcap_inplace(x, 30.0f, pool);
    else
      contrail::ops::scale_inplace(x, 45.25f, pool);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
// Second argument: 0 = softcap_inplace, 1 = scale_inplace.
BENCHMARK(BM_SoftcapScale)->ArgsProduct({{0, 1, 2}, {0, 1}});

// One decode step: 1 query token, 32 heads (MHA), 512 cached positions, head_dim 64.
void BM_AttentionDecode(benchmark::State& state) {
  IsaScope isa(state);
  if (!isa.ok()) return;
  ThreadPool pool(1);
  const int64_t n_head = 32, n_kv = 512, head_dim = 64;
  const Tensor q = random_tensor({1, n_head, head_dim}, -1, 1, 7);
  const Tensor k = random_tensor({n_kv, n_head, head_dim}, -1, 1, 8);
  const Tensor v = random_tensor({n_kv, n_head, head_dim}, -1, 1, 9);
  Tensor out = Tensor::empty(DType::F32, {1, n_head, head_dim});
  const int32_t pos = static_cast<int32_t>(n_kv - 1);
  contrail::ops::AttentionParams p;
  p.scale = 0.125f;
  for (auto _ : state) {
    contrail::ops::attention(q, k, v, &pos, p, out, pool);
    benchmark::ClobberMemory();
  }
  // K and V streamed once per step.
  state.SetBytesProcessed(state.iterations() * 2 * k.numel() * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_AttentionDecode)->DenseRange(0, 2);

}  // namespace
