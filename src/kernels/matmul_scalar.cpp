// Scalar reference matmul kernels (the oracles the SIMD variants are tested against), the
// activation quantizer they share the format of, and the per-ISA kernel tables.
// Numerics: contrail/kernels/matmul.h. These loops favour obviousness over speed: one output
// element at a time, weights converted on the fly, one sequential f32 sum.
#include <algorithm>
#include <cmath>

#include "contrail/core/dtype.h"
#include "contrail/core/half.h"
#include "contrail/kernels/matmul.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {
namespace {

// Target size of one weight panel: a quarter of a core's L2 on current AVX-512 parts (1-2 MiB),
// leaving room for the token rows streaming past it (tuned on Zen 4/5: 128 KiB panels were ~10%
// slower for the AVX-512 packed kernel).
constexpr int64_t kPanelBytes = 256 * 1024;
constexpr int64_t kMaxPanelRows = 64;

// y[t, o] = sum_k wrow(o)[k] * x[t, k] for o in [row_begin, row_end); to_f32 converts one weight.
template <typename T, typename ToF32>
void matmul_plain(const MatmulArgs& a, ToF32 to_f32) {
  const T* w = static_cast<const T*>(a.w);  // (n_out, n_in)
  for (int64_t o = a.row_begin; o < a.row_end; ++o) {
    const T* wr = w + o * a.n_in;  // (n_in)
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      const float* xr = a.x + t * a.n_in;  // (n_in)
      float acc = 0.0f;
      for (int64_t k = 0; k < a.n_in; ++k) acc += to_f32(wr[k]) * xr[k];
      a.y[t * a.n_out + o] = acc;
    }
  }
}

}  // namespace

void matmul_f32_scalar(const MatmulArgs& a) {
  matmul_plain<float>(a, [](float v) { return v; });
}

void matmul_f16_scalar(const MatmulArgs& a) {
  matmul_plain<uint16_t>(a, [](uint16_t v) { return f16_to_f32(v); });
}

void matmul_bf16_scalar(const MatmulArgs& a) {
  matmul_plain<uint16_t>(a, [](uint16_t v) { return bf16_to_f32(v); });
}

void matmul_q8_0_scalar(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb) blocks
  for (int64_t o = a.row_begin; o < a.row_end; ++o) {
    const BlockQ8_0* wr = w + o * nb;  // (nb)
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      const int8_t* xq = a.xq + t * a.n_in;  // (n_in)
      const float* xd = a.xd + t * nb;       // (nb)
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t sumi = 0;
        for (int64_t j = 0; j < kQ8_0Block; ++j) sumi += int32_t{wr[b].qs[j]} * int32_t{xq[b * kQ8_0Block + j]};
        acc += (f16_to_f32(wr[b].d) * xd[b]) * static_cast<float>(sumi);
      }
      a.y[t * a.n_out + o] = acc;
    }
  }
}

void quantize_act_q8_0_scalar(const float* x, int64_t n, int8_t* qs, float* d) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const float* xb = x + b * kQ8_0Block;  // (32)
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8_0Block; ++j) amax = std::max(amax, std::fabs(xb[j]));
    d[b] = f16_to_f32(f32_to_f16(amax / 127.0f));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t j = 0; j < kQ8_0Block; ++j) {
      // Round half to even (the default rounding mode), as _mm256_round_ps(_MM_ROUND_NEAREST).
      // |q| <= 127 for finite x; NaN (from non-finite x) becomes 0.
      const float q = std::nearbyint(xb[j] * id);
      qs[b * kQ8_0Block + j] = q == q ? static_cast<int8_t>(q) : 0;
    }
  }
}

int64_t matmul_panel_rows(int64_t row_bytes) {
  return std::clamp<int64_t>(kPanelBytes / std::max<int64_t>(1, row_bytes), 1, kMaxPanelRows);
}

int64_t matmul_scratch_floats(int64_t n_in) {
  const int64_t row = std::max<int64_t>(1, n_in);
  return std::max(kMatmulMinScratchFloats, matmul_panel_rows(row * static_cast<int64_t>(sizeof(float))) * row);
}

// ---- dispatch ------------------------------------------------------------------------------------

namespace {

constexpr MatmulKernels kScalar{matmul_f32_scalar, matmul_f16_scalar, matmul_bf16_scalar, matmul_q8_0_scalar,
                                quantize_act_q8_0_scalar};

}  // namespace

const MatmulKernels& matmul_kernels(Isa isa) {
  require_isa("matmul kernels", isa);
  switch (isa) {
    case Isa::Avx512:
      if (cpu_features().avx512vnni) {
        static const MatmulKernels vnni = [] {
          MatmulKernels k = kMatmulAvx512;
          k.q8_0 = matmul_q8_0_avx512vnni;
          return k;
        }();
        return vnni;
      }
      return kMatmulAvx512;
    case Isa::Avx2: return kMatmulAvx2;
    case Isa::Scalar: break;
  }
  return kScalar;
}

}  // namespace contrail::kernels
