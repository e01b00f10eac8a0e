// Deterministic exp for the sampler: built only from IEEE-754 +, *, floor and exact power-of-two
// scaling, so the value is bit-identical on every machine and libm (std::exp is not guaranteed
// to be correctly rounded, and its last bit differs between libraries).
// Accuracy: relative error < 1e-15 for results >= DBL_MIN; results below DBL_MIN (x < -708.39)
// flush to 0 and x > 709.78 gives +inf. NaN in, NaN out.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF  // keep a*b+c as two roundings (GCC does not contract in ISO mode)
#endif

namespace contrail::sampling_detail {

inline double det_exp(double x) {
  if (x != x) return x;
  if (x < -708.39) return 0.0;          // exp(x) < DBL_MIN
  if (x > 709.78) return HUGE_VAL;      // exp(x) > DBL_MAX
  // x = k*ln2 + r with |r| <= ln2/2. ln2 is split Cody-Waite style: kLn2Hi has its low 21 bits
  // zero, so k*kLn2Hi is exact for |k| <= 1024 and r is accurate to ~1 ulp.
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const double k = std::floor(x * kLog2e + 0.5);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  // exp(r) by its Taylor series to r^13 (truncation error < 1e-17 for |r| <= 0.347), Horner form.
  double p = 1.0 / 6227020800.0;  // 1/13!
  constexpr double kInvFactorial[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                        1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,     1.0 / 120.0,
                                        1.0 / 24.0,        1.0 / 6.0,        1.0 / 2.0,       1.0,
                                        1.0};  // 1/12! .. 1/0!
  for (double c : kInvFactorial) p = p * r + c;
  // p * 2^k, with 2^k built from its bit pattern (k in [-1022, 1024] here; 1024 is handled by
  // splitting so the exponent field stays valid).
  const int64_t ki = static_cast<int64_t>(k);
  auto pow2 = [](int64_t e) {
    const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  };
  if (ki > 1023) return p * pow2(ki - 1) * 2.0;
  if (ki < -1022) return p * pow2(ki + 1) * 0.5;
  return p * pow2(ki);
}

}  // namespace contrail::sampling_detail
