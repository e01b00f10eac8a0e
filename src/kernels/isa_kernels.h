// The per-ISA kernel entries behind the dispatchers of contrail/kernels/*.h (private to the library
// and its tests): the scalar references, and each SIMD ISA's kernel set. The SIMD sets are defined
// in the *_avx2.cpp / *_avx512*.cpp translation units compiled with that ISA's flags; use one only
// when isa_supported() is true for its ISA (the AVX-512 VNNI q8_0 kernel also needs
// cpu_features().avx512vnni). Contracts and numerics: the public headers of each kernel family.
#pragma once
#include <cstddef>
#include <cstdint>

#include "contrail/kernels/attention.h"
#include "contrail/kernels/elementwise.h"
#include "contrail/kernels/matmul.h"
#include "contrail/kernels/membw.h"

namespace contrail::kernels {

// The dispatchers' check: throws InvalidArgument naming `what`, the ISA and the CPU's best ISA
// when !isa_supported(isa).
void require_isa(const char* what, Isa isa);

// ---- elementwise (contrail/kernels/elementwise.h) ----------------------------------------------------

void rmsnorm_row_scalar(const float* x, const float* w, int64_t n, float eps, float* y);
void softmax_row_scalar(float* x, int64_t n);
void exp_scalar(const float* x, float* y, int64_t n);
void swiglu_scalar(const float* gate, const float* up, float* out, int64_t n);
void add_inplace_scalar(float* y, const float* x, int64_t n);
void layernorm_row_scalar(const float* x, const float* w, const float* b, int64_t n, float eps, float* y);
void gelu_scalar(const float* x, float* y, int64_t n);
void geglu_scalar(const float* gate, const float* up, float* out, int64_t n);
void softcap_scalar(const float* x, float* y, int64_t n, float cap);
void scale_scalar(const float* x, float* y, int64_t n, float s);
void rope_rows_scalar(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);

extern const ElementwiseKernels kElementwiseAvx2;
extern const ElementwiseKernels kElementwiseAvx512;

// ---- attention (contrail/kernels/attention.h) ---------------------------------------------------------

struct AttentionKernels {
  AttendRowFn row;
  AttendRunsFn runs;
};

void attend_runs_scalar(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                        const KvRun* runs, int64_t n_runs, float scale, float softcap, float* scores, float* out);
void attend_row_scalar(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                       int64_t n_keys, float scale, float softcap, float* scores, float* out);

extern const AttentionKernels kAttentionAvx2;
extern const AttentionKernels kAttentionAvx512;

// ---- matmul (contrail/kernels/matmul.h) ---------------------------------------------------------------

void matmul_f32_scalar(const MatmulArgs& a);
void matmul_f16_scalar(const MatmulArgs& a);
void matmul_bf16_scalar(const MatmulArgs& a);
void matmul_q8_0_scalar(const MatmulArgs& a);
void quantize_act_q8_0_scalar(const float* x, int64_t n, int8_t* qs, float* d);

extern const MatmulKernels kMatmulAvx2;
extern const MatmulKernels kMatmulAvx512;  // q8_0: AVX-512BW, no VNNI
void matmul_q8_0_avx512vnni(const MatmulArgs& a);  // needs cpu_features().avx512vnni

// ---- memory bandwidth (contrail/kernels/membw.h) ------------------------------------------------------

uint64_t read_sum_u64_scalar(const uint64_t* p, size_t n);  // 4 accumulators
uint64_t read_sum_u64_avx2(const uint64_t* p, size_t n);    // 256-bit loads, 8 accumulators
uint64_t read_sum_u64_avx512(const uint64_t* p, size_t n);  // 512-bit loads, 8 accumulators

}  // namespace contrail::kernels
