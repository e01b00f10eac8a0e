// Run-time CPU feature detection and the ISA level kernels dispatch on.
// Contract: the library is built without -march flags; only *_avx2.cpp / *_avx512*.cpp files are
// compiled with ISA flags and they are called only when active_isa() allows it.
// CONTRAIL_ISA=scalar|avx2|avx512 (environment) caps the level, for testing; asking for a level the
// CPU lacks is an error naming the missing features.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace contrail {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
  std::string brand;  // e.g. "AMD EPYC 9R14 96-Core Processor"
};

const CpuFeatures& cpu_features();
// Levels: Avx2 = AVX2+FMA+F16C (+OS YMM state); Avx512 = Avx2 + F/BW/VL/DQ (+OS ZMM state).
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();  // ascending, always contains Scalar
Isa best_isa();
// The level kernels use now: best_isa(), capped by CONTRAIL_ISA at first use, or set_active_isa().
Isa active_isa();
void set_active_isa(Isa isa);  // throws InvalidArgument if !isa_supported(isa)
std::string_view isa_name(Isa isa);
Isa parse_isa(std::string_view name);  // throws InvalidArgument naming the accepted values

}  // namespace contrail
