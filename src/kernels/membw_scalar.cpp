// Portable read_sum_u64 kernel (baseline ISA; the compiler may still use SSE2). Contract:
// contrail/kernels/membw.h.
#include "kernels/isa_kernels.h"

namespace contrail::kernels {

uint64_t read_sum_u64_scalar(const uint64_t* p, size_t n) {
  // Four independent accumulators so consecutive adds do not wait on each other.
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; ++i) a0 += p[i];
  return (a0 + a1) + (a2 + a3);
}

}  // namespace contrail::kernels
