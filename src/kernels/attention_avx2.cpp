// AVX2 + FMA attention kernel (compiled with the AVX2 flags; used only when
// isa_supported(Isa::Avx2)): kernels/attention_simd.h on 8-float vectors. Formulas:
// contrail/kernels/attention.h.
#include "kernels/simd_avx2.h"
// (the traits first: the generic kernels are written against them)
#include "kernels/attention_simd.h"

namespace contrail::kernels {

constinit const AttentionKernels kAttentionAvx2 = attention_table<Avx2>();

}  // namespace contrail::kernels
