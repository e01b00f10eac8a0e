// AVX-512 (F/BW/VL/DQ) attention kernel (used only when isa_supported(Isa::Avx512)):
// kernels/attention_simd.h on 16-float vectors. Formulas: contrail/kernels/attention.h.
#include "kernels/simd_avx512.h"
// (the traits first: the generic kernels are written against them)
#include "kernels/attention_simd.h"

namespace contrail::kernels {

constinit const AttentionKernels kAttentionAvx512 = attention_table<Avx512>();

}  // namespace contrail::kernels
