// ops::matmul / ops::get_rows: validation (ops/check.h), kernel choice per weight dtype and
// active_isa(), and the split of output rows across the thread pool. The arithmetic lives in
// contrail/kernels/matmul.h.
#include "contrail/ops/matmul.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/matmul.h"
#include "contrail/kernels/quantize.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {
using namespace detail;

// Chunks of work are whole multiples of this many output rows (a multiple of every kernel's row
// tile and packed panel width).
constexpr int64_t kRowGrain = 64;
// Below this many multiply-adds per chunk, handing it to another thread costs more than it saves.
constexpr int64_t kMinMacsPerChunk = int64_t{1} << 16;
// Chunks per thread: a few, so that the others take over the share of a thread that starts late.
constexpr int64_t kChunksPerThread = 4;

// This thread's kernel scratch, at least `floats` long. Kept across calls (pool threads persist), so
// calls do not pay for allocating and faulting in fresh pages.
float* thread_scratch(int64_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(floats)) buf.resize(static_cast<size_t>(floats));
  return buf.data();
}

kernels::MatmulFn kernel_for(const kernels::MatmulKernels& ks, DType t) {
  switch (t) {
    case DType::F32: return ks.f32;
    case DType::F16: return ks.f16;
    case DType::BF16: return ks.bf16;
    case DType::Q8_0: return ks.q8_0;
    default: break;
  }
  throw InvalidArgument(
      fmt::format("matmul: weight dtype {} is not supported (expected f32, f16, bf16 or q8_0)", dtype_name(t)));
}

}  // namespace

void matmul(const Tensor& w, const Tensor& x, Tensor& y, ThreadPool& pool) {
  const char* op = "matmul";
  check_cpu(op, "weight w", w);
  check_rank(op, "weight w", w, 2, "(n_out, n_in)");
  check_data(op, "weight w", w);
  check_f32_cpu(op, "input x", x, 2, "(n_tokens, n_in)");
  check_f32_cpu(op, "output y", y, 2, "(n_tokens, n_out)");
  const kernels::MatmulKernels& ks = kernels::matmul_kernels(active_isa());
  const kernels::MatmulFn kernel = kernel_for(ks, w.dtype());
  const int64_t n_out = w.dim(0), n_in = w.dim(1), n_tokens = x.dim(0);
  if (x.dim(1) != n_in)
    throw InvalidArgument(fmt::format("matmul: input x {} has {} columns but weight w {} has n_in = {}", x.shape_str(),
                                      x.dim(1), w.shape_str(), n_in));
  if (y.dim(0) != n_tokens || y.dim(1) != n_out)
    throw InvalidArgument(fmt::format("matmul: output y is {} but x {} times w {}^T is ({}, {})", y.shape_str(),
                                      x.shape_str(), w.shape_str(), n_tokens, n_out));
  check_disjoint(op, "output y", y, "input x", x);
  check_disjoint(op, "output y", y, "weight w", w);
  if (n_out == 0 || n_tokens == 0) return;
  if (n_in == 0) {  // empty sums
    std::memset(y.data(), 0, y.nbytes());
    return;
  }

  kernels::MatmulArgs args;
  args.w = w.data();
  args.x = x.data_as<float>();
  args.y = y.data_as<float>();
  args.n_in = n_in;
  args.n_out = n_out;
  args.n_tokens = n_tokens;

  // q8_0 weights: the activations are quantized once per call (kernels/matmul.h, numerics).
  std::vector<int8_t> xq;  // (n_tokens, n_in)
  std::vector<float> xd;   // (n_tokens, n_in / 32)
  if (w.dtype() == DType::Q8_0) {
    const int64_t nb = n_in / kQ8_0Block;
    xq.resize(static_cast<size_t>(n_tokens * n_in));
    xd.resize(static_cast<size_t>(n_tokens * nb));
    for (int64_t t = 0; t < n_tokens; ++t)
      ks.quantize_act_q8_0(args.x + t * n_in, n_in, xq.data() + t * n_in, xd.data() + t * nb);
    args.xq = xq.data();
    args.xd = xd.data();
  }

  // Contiguous runs of whole row groups, claimed by the pool's threads.
  const int64_t groups = (n_out + kRowGrain - 1) / kRowGrain;
  const int64_t macs_per_group = kRowGrain * n_in * n_tokens;
  const int64_t min_groups = std::max<int64_t>(1, (kMinMacsPerChunk + macs_per_group - 1) / macs_per_group);
  const int64_t max_chunks = pool.size() == 1 ? 1 : kChunksPerThread * pool.size();
  const int64_t chunks = std::clamp<int64_t>(groups / min_groups, 1, max_chunks);

  // Several tokens: each chunk packs weight panels into its thread's scratch.
  if (n_tokens > 1) args.scratch_floats = kernels::matmul_scratch_floats(n_in);

  pool.for_chunks(chunks, [&](int64_t c) {
    kernels::MatmulArgs a = args;
    a.row_begin = std::min(n_out, groups * c / chunks * kRowGrain);
    a.row_end = std::min(n_out, groups * (c + 1) / chunks * kRowGrain);
    if (a.scratch_floats > 0) a.scratch = thread_scratch(a.scratch_floats);
    if (a.row_begin < a.row_end) kernel(a);
  });
}

void get_rows(const Tensor& table, const int32_t* ids, int64_t n_ids, Tensor& out) {
  const char* op = "get_rows";
  check_cpu(op, "table", table);
  check_rank(op, "table", table, 2, "(n_rows, n_cols)");
  check_data(op, "table", table);
  check_f32_cpu(op, "output", out, 2, "(n_ids, n_cols)");
  if (!kernels::can_dequantize(table.dtype()))
    throw InvalidArgument(fmt::format("get_rows: table dtype {} is not supported (expected f32, f16, bf16 or q8_0)",
                                      dtype_name(table.dtype())));
  const int64_t n_rows = table.dim(0), n_cols = table.dim(1);
  if (n_ids < 0) throw InvalidArgument(fmt::format("get_rows: n_ids is negative ({})", n_ids));
  if (out.dim(0) != n_ids || out.dim(1) != n_cols)
    throw InvalidArgument(fmt::format("get_rows: output is {} but {} ids of table {} give ({}, {})", out.shape_str(),
                                      n_ids, table.shape_str(), n_ids, n_cols));
  if (n_ids > 0 && ids == nullptr) throw InvalidArgument(fmt::format("get_rows: ids is null but n_ids = {}", n_ids));
  check_disjoint(op, "output", out, "table", table);
  // Every id is checked before anything is written.
  for (int64_t i = 0; i < n_ids; ++i)
    if (ids[i] < 0 || ids[i] >= n_rows)
      throw InvalidArgument(fmt::format("get_rows: id {} at index {} is out of range [0, {}) for table {}", ids[i], i,
                                        n_rows, table.shape_str()));
  const auto* base = static_cast<const char*>(table.data());
  const size_t row_bytes = table.row_bytes();
  for (int64_t i = 0; i < n_ids; ++i)
    kernels::dequantize_row(table.dtype(), base + static_cast<size_t>(ids[i]) * row_bytes, n_cols,
                            out.data_as<float>() + i * n_cols);
}

}  // namespace contrail::ops
