// AVX-512 (F/BW/VL/DQ) elementwise kernels (used only when isa_supported(Isa::Avx512)): the
// ISA-generic kernels of kernels/elementwise_simd.h on 16-float vectors, row tails through masked
// loads and stores, 2^n through vscalefps. Formulas and tolerances: contrail/kernels/elementwise.h.
#include "kernels/simd_avx512.h"
// (the traits first: the generic kernels are written against them)
#include "kernels/elementwise_simd.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {

constinit const ElementwiseKernels kElementwiseAvx512 = elementwise_table<Avx512>();

}  // namespace contrail::kernels
