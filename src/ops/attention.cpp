// ops::attention: validation (ops/check.h), then the attend_row kernel of the active ISA for every
// (token, query head) pair, the pairs split over the thread pool. Masking is done by choosing the
// run of admitted KV rows: [max(0, pos - window + 1), pos] (or [0, pos] without a window), which
// is what llama.cpp's -inf mask admits.
#include "contrail/ops/attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/core/half.h"
#include "contrail/kernels/attention.h"
#include "contrail/kernels/quantize.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {
using namespace detail;

constexpr int64_t kGrainWork = 32768;  // multiply-adds per thread chunk below which splitting does not pay

constexpr const char* kQkvDims = "(n_tokens, n_head, head_dim)";
constexpr const char* kPoolDims = "(n_blocks * block_size, n_head_kv, head_dim)";

void check_params(const char* op, const AttentionParams& p) {
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale))
    throw InvalidArgument(
        fmt::format("{}: scale {} must be finite and > 0 (usually 1/sqrt(head_dim))", op, p.scale));
  if (p.window < 0) throw InvalidArgument(fmt::format("{}: window {} is negative", op, p.window));
  if (!(p.softcap >= 0.0f) || !std::isfinite(p.softcap))
    throw InvalidArgument(fmt::format("{}: softcap {} must be finite and >= 0", op, p.softcap));
}

// q/out shapes, head_dim and the GQA ratio against a K tensor (a cache or a pool); out disjoint
// from the inputs.
void check_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out) {
  const int64_t n_head = q.dim(1), head_dim = q.dim(2), n_head_kv = k.dim(1);
  if (k.dim(2) != head_dim)
    throw InvalidArgument(fmt::format("{}: k has shape {} but q has shape {}: head_dim {} != {}", op, k.shape_str(),
                                      q.shape_str(), k.dim(2), head_dim));
  check_same_shape(op, "v", v, "k", k);
  check_same_shape(op, "out", out, "q", q);
  if (n_head_kv < 1 || n_head % n_head_kv != 0)
    throw InvalidArgument(fmt::format("{}: n_head {} (q {}) is not a multiple of n_head_kv {} (k {})", op, n_head,
                                      q.shape_str(), n_head_kv, k.shape_str()));
  check_disjoint(op, "out", out, "q", q);
  check_disjoint(op, "out", out, "k", k);
  check_disjoint(op, "out", out, "v", v);
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const int32_t* pos, const AttentionParams& p,
               Tensor& out, ThreadPool& pool) {
  const char* opname = "attention";
  check_f32_cpu(opname, "q", q, 3, kQkvDims);
  check_f32_cpu(opname, "k", k, 3, "(n_kv, n_head_kv, head_dim)");
  check_f32_cpu(opname, "v", v, 3, "(n_kv, n_head_kv, head_dim)");
  check_f32_cpu(opname, "out", out, 3, kQkvDims);
  const int64_t n_tokens = q.dim(0), n_head = q.dim(1), head_dim = q.dim(2);
  const int64_t n_kv = k.dim(0), n_head_kv = k.dim(1);
  check_shapes(opname, q, k, v, out);
  check_params(opname, p);
  if (out.numel() == 0) return;
  if (pos == nullptr) throw InvalidArgument(fmt::format("attention: pos is null for {} tokens", n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (pos[t] < 0) throw InvalidArgument(fmt::format("attention: pos[{}] = {} is negative", t, pos[t]));
    if (pos[t] >= n_kv)
      throw InvalidArgument(fmt::format("attention: pos[{}] = {} is beyond the KV history: it must be < n_kv {}", t,
                                        pos[t], n_kv));
  }

  const kernels::AttendRowFn attend = kernels::attend_row_kernel(active_isa());
  const int64_t group = n_head / n_head_kv;      // query heads per kv head
  const int64_t kv_stride = n_head_kv * head_dim;  // floats between consecutive positions of k, v
  const float* qp = q.data_as<float>();          // (n_tokens, n_head, head_dim)
  const float* kp = k.data_as<float>();          // (n_kv, n_head_kv, head_dim)
  const float* vp = v.data_as<float>();          // (n_kv, n_head_kv, head_dim)
  float* op = out.data_as<float>();              // (n_tokens, n_head, head_dim)
  // Pair i = t * n_head + h: heads sharing a kv head are adjacent, so a chunk reuses its K/V rows.
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (n_kv * head_dim));
  pool.parallel_for(n_tokens * n_head, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(n_kv));  // (n_kv) scratch of one row
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / n_head, h = i % n_head;
      const int64_t hi = pos[t];
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, hi - p.window + 1) : 0;
      const int64_t kv_off = lo * kv_stride + (h / group) * head_dim;
      attend(qp + i * head_dim, kp + kv_off, vp + kv_off, kv_stride, head_dim, hi - lo + 1, p.scale, p.softcap,
             scores.data(), op + i * head_dim);
    }
  });
}

void store_kv_row(const float* x, int64_t n, DType dtype, void* dst) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::Q8_0:
      if (n % kQ8_0Block != 0)
        throw InvalidArgument(fmt::format("store_kv_row: q8_0 needs a multiple of {} values, got {}", kQ8_0Block, n));
      kernels::quantize_row_q8_0(x, n, static_cast<BlockQ8_0*>(dst));
      return;
    default:
      throw InvalidArgument(fmt::format("store_kv_row: KV dtype {} is not supported (f32, f16 or q8_0)",
                                        dtype_name(dtype)));
  }
}

void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, int64_t block_size,
                     std::span<const PagedSequence> seqs, const int32_t* seq_of, const int32_t* pos,
                     const AttentionParams& p, Tensor& out, ThreadPool& pool) {
  const char* opname = "paged_attention";
  check_f32_cpu(opname, "q", q, 3, kQkvDims);
  check_f32_cpu(opname, "out", out, 3, kQkvDims);
  check_cpu(opname, "k_pool", k_pool);
  check_cpu(opname, "v_pool", v_pool);
  check_rank(opname, "k_pool", k_pool, 3, kPoolDims);
  check_rank(opname, "v_pool", v_pool, 3, kPoolDims);
  check_data(opname, "k_pool", k_pool);
  check_data(opname, "v_pool", v_pool);
  const DType kv_dtype = k_pool.dtype();
  if (kv_dtype != DType::F32 && kv_dtype != DType::F16 && kv_dtype != DType::Q8_0)
    throw InvalidArgument(fmt::format("paged_attention: k_pool has dtype {}; expected f32, f16 or q8_0",
                                      dtype_name(kv_dtype)));
  if (v_pool.dtype() != kv_dtype)
    throw InvalidArgument(fmt::format("paged_attention: v_pool has dtype {} but k_pool {}", dtype_name(v_pool.dtype()),
                                      dtype_name(kv_dtype)));
  if (kv_dtype == DType::Q8_0 && q.dim(2) % kQ8_0Block != 0)
    throw InvalidArgument(fmt::format("paged_attention: a q8_0 KV pool needs head_dim % {} == 0, head_dim is {}",
                                      kQ8_0Block, q.dim(2)));
  check_shapes(opname, q, k_pool, v_pool, out);
  check_params(opname, p);
  const int64_t n_tokens = q.dim(0), n_head = q.dim(1), head_dim = q.dim(2);
  const int64_t n_head_kv = k_pool.dim(1), pool_rows = k_pool.dim(0);
  if (block_size < 1 || pool_rows % block_size != 0)
    throw InvalidArgument(fmt::format("paged_attention: block_size {} must be >= 1 and divide the {} pool rows of k {}",
                                      block_size, pool_rows, k_pool.shape_str()));
  const int64_t n_blocks = pool_rows / block_size;
  int64_t max_kv = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const PagedSequence& sq = seqs[s];
    const int64_t need = (sq.n_kv + block_size - 1) / block_size;
    if (sq.n_kv < 0 || static_cast<int64_t>(sq.block_table.size()) < need)
      throw InvalidArgument(fmt::format("paged_attention: sequence {} has n_kv {} but {} blocks of {} (needs {})", s,
                                        sq.n_kv, sq.block_table.size(), block_size, need));
    for (int64_t b = 0; b < need; ++b)
      if (sq.block_table[b] < 0 || sq.block_table[b] >= n_blocks)
        throw InvalidArgument(fmt::format("paged_attention: sequence {} block {} is {}, outside [0, {})", s, b,
                                          sq.block_table[b], n_blocks));
    max_kv = std::max(max_kv, sq.n_kv);
  }
  if (out.numel() == 0) return;
  if (seq_of == nullptr || pos == nullptr)
    throw InvalidArgument(fmt::format("paged_attention: seq_of or pos is null for {} tokens", n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (seq_of[t] < 0 || static_cast<size_t>(seq_of[t]) >= seqs.size())
      throw InvalidArgument(fmt::format("paged_attention: seq_of[{}] = {} outside [0, {})", t, seq_of[t], seqs.size()));
    if (pos[t] < 0 || pos[t] >= seqs[static_cast<size_t>(seq_of[t])].n_kv)
      throw InvalidArgument(fmt::format("paged_attention: pos[{}] = {} outside [0, n_kv {}) of sequence {}", t, pos[t],
                                        seqs[static_cast<size_t>(seq_of[t])].n_kv, seq_of[t]));
  }

  const int64_t group = n_head / n_head_kv;
  if (kv_dtype != DType::F32) {
    // Decode the admitted positions of one (token, kv head) into f32 scratch, then attend to it as
    // a contiguous history; query heads sharing the kv head (adjacent pairs) reuse the decode.
    const kernels::AttendRowFn attend_row = kernels::attend_row_kernel(active_isa());
    const size_t pool_row = row_bytes(kv_dtype, n_head_kv * head_dim);  // bytes of one position
    const size_t head_bytes = row_bytes(kv_dtype, head_dim);           // bytes of one kv head
    const auto* kb = static_cast<const char*>(k_pool.data());
    const auto* vb = static_cast<const char*>(v_pool.data());
    const float* qp = q.data_as<float>();
    float* op = out.data_as<float>();
    const int64_t grain = std::max<int64_t>(group, kGrainWork / (std::max<int64_t>(max_kv, 1) * head_dim));
    pool.parallel_for(n_tokens * n_head, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> k(static_cast<size_t>(max_kv * head_dim)), v(k.size());  // (n_keys, head_dim)
      std::vector<float> scores(static_cast<size_t>(max_kv));
      int64_t have_t = -1, have_kvh = -1, lo = 0, hi = 0;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t t = i / n_head, h = i % n_head, kvh = h / group;
        if (t != have_t || kvh != have_kvh) {
          const PagedSequence& sq = seqs[static_cast<size_t>(seq_of[t])];
          hi = pos[t];
          lo = p.window > 0 ? std::max<int64_t>(0, hi - p.window + 1) : 0;
          for (int64_t at = lo; at <= hi; ++at) {
            const int64_t row = static_cast<int64_t>(sq.block_table[at / block_size]) * block_size + at % block_size;
            const size_t off = static_cast<size_t>(row) * pool_row + static_cast<size_t>(kvh) * head_bytes;
            kernels::dequantize_row(kv_dtype, kb + off, head_dim, &k[static_cast<size_t>((at - lo) * head_dim)]);
            kernels::dequantize_row(kv_dtype, vb + off, head_dim, &v[static_cast<size_t>((at - lo) * head_dim)]);
          }
          have_t = t, have_kvh = kvh;
        }
        attend_row(qp + i * head_dim, k.data(), v.data(), head_dim, head_dim, hi - lo + 1, p.scale, p.softcap,
                   scores.data(), op + i * head_dim);
      }
    });
    return;
  }
  const kernels::AttendRunsFn attend = kernels::attend_runs_kernel(active_isa());
  const int64_t kv_stride = n_head_kv * head_dim;  // floats between consecutive pool rows
  const float* qp = q.data_as<float>();            // (n_tokens, n_head, head_dim)
  const float* kp = k_pool.data_as<float>();       // (n_blocks * block_size, n_head_kv, head_dim)
  const float* vp = v_pool.data_as<float>();
  float* op = out.data_as<float>();                // (n_tokens, n_head, head_dim)
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (std::max<int64_t>(max_kv, 1) * head_dim));
  pool.parallel_for(n_tokens * n_head, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(max_kv));  // (max_kv) scratch of one row
    std::vector<kernels::KvRun> runs;                        // one per block the row reads
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / n_head, h = i % n_head;
      const PagedSequence& sq = seqs[static_cast<size_t>(seq_of[t])];
      const int64_t hi = pos[t];
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, hi - p.window + 1) : 0;
      const int64_t head_off = (h / group) * head_dim;
      runs.clear();
      for (int64_t at = lo; at <= hi;) {
        const int64_t row = at % block_size;
        const int64_t n = std::min(block_size - row, hi - at + 1);
        const int64_t pool_row = static_cast<int64_t>(sq.block_table[at / block_size]) * block_size + row;
        runs.push_back({pool_row * kv_stride + head_off, n});
        at += n;
      }
      attend(qp + i * head_dim, kp, vp, kv_stride, head_dim, runs.data(), static_cast<int64_t>(runs.size()), p.scale,
             p.softcap, scores.data(), op + i * head_dim);
    }
  });
}

}  // namespace contrail::ops
