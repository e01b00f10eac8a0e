// The one argument validator of the ops (private to src/ops). Every op's device-neutral entry
// (contrail/ops/*.h) checks its operands with these functions, then dispatches on the device and
// the ISA. Only CPU kernels exist, so an operand on another device is rejected here, naming it.
//
// Messages name the op, the operand, its shape and the limit, e.g.
//   "matmul: input x (2, 64) has dtype f16, expected f32"
//   "rope: x (2, 64) has 2 dims, expected 3 dims (n_tokens, n_heads, head_dim)"
// and every failure throws InvalidArgument.
#pragma once
#include <cstdint>

#include "contrail/core/tensor.h"

namespace contrail::ops::detail {

// Rank requirements besides an exact rank: any rank (0-d tensors are empty), or at least one dim.
inline constexpr int kAnyRank = -1;
inline constexpr int kAtLeast1Dim = -2;

// `t` (operand `name` of `op`) is on the CPU.
void check_cpu(const char* op, const char* name, const Tensor& t);
// `t` has `ndim` dims (or kAnyRank / kAtLeast1Dim); `dims` names them for the message ("(n, d)"), or "".
void check_rank(const char* op, const char* name, const Tensor& t, int ndim, const char* dims = "");
// `t` has dtype f32.
void check_f32(const char* op, const char* name, const Tensor& t);
// `t` has data when it has elements.
void check_data(const char* op, const char* name, const Tensor& t);

// The common case: an f32 activation on the CPU with data, of rank `ndim` (check_cpu, check_f32,
// check_rank, check_data, in that order).
void check_f32_cpu(const char* op, const char* name, const Tensor& t, int ndim = kAnyRank, const char* dims = "");

// True when the bytes of a and b intersect (empty tensors intersect nothing).
bool overlap(const Tensor& a, const Tensor& b);
// `t` has the shape of `ref`.
void check_same_shape(const char* op, const char* name, const Tensor& t, const char* ref_name, const Tensor& ref);
// `out` is `in` itself or disjoint from it: elementwise ops read and write element i together, so
// an output may be its input, but any other overlap would read already-written elements.
void check_same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                            const Tensor& in);
// `out` shares no byte with `in`.
void check_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& in);

}  // namespace contrail::ops::detail
