// Matrix products with weights in storage dtypes. Device-neutral entry: validates shapes, dtypes and
// devices, then dispatches on the weight dtype and active_isa().
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// y = x @ W^T.
//   w: (n_out, n_in), dtype f32 | f16 | bf16 | q8_0 (rows of n_in; q8_0 needs n_in % 32 == 0)
//   x: (n_tokens, n_in) f32, contiguous
//   y: (n_tokens, n_out) f32, contiguous, preallocated; must not alias x
// Weights are streamed once per call whatever n_tokens is (prompt processing is a matrix-matrix
// product). For quantized weights the activations may be quantized internally (as ggml does), so
// results match the f32 reference within quantization error, not bit-exactly.
// Throws InvalidArgument naming the tensors and shapes on any mismatch.
void matmul(const Tensor& w, const Tensor& x, Tensor& y, ThreadPool& pool);

// out[i, :] = dequantized row ids[i] of `table` (an embedding lookup).
//   table: (n_rows, n_cols) any supported dtype; out: (n_ids, n_cols) f32.
// Throws InvalidArgument naming the id and n_rows when an id is out of range.
void get_rows(const Tensor& table, const int32_t* ids, int64_t n_ids, Tensor& out);

}  // namespace contrail::ops
