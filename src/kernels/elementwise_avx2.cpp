// AVX2 + FMA elementwise kernels (compiled with -mavx2 -mfma -mf16c; used only when
// isa_supported(Isa::Avx2)): the ISA-generic kernels of kernels/elementwise_simd.h on 8-float
// vectors. Formulas and tolerances: contrail/kernels/elementwise.h.
#include "kernels/simd_avx2.h"
// (the traits first: the generic kernels are written against them)
#include "kernels/elementwise_simd.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {

constinit const ElementwiseKernels kElementwiseAvx2 = elementwise_table<Avx2>();

}  // namespace contrail::kernels
