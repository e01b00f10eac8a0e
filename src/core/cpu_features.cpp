#include "contrail/core/cpu_features.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "contrail/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace contrail {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  __get_cpuid(1, &a, &b, &c, &d);
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  const bool avx = c & (1u << 28);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    f.avx2 = avx && avx2 && ymm_os;
    f.fma = fma && ymm_os;
    f.f16c = f16c && ymm_os;
    f.avx512f = (b & (1u << 16)) && zmm_os;
    f.avx512dq = (b & (1u << 17)) && zmm_os;
    f.avx512bw = (b & (1u << 30)) && zmm_os;
    f.avx512vl = (b & (1u << 31)) && zmm_os;
    f.avx512vnni = (c & (1u << 11)) && zmm_os;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = (a & (1u << 5)) && zmm_os;
  }
  unsigned brand[12] = {};
  __get_cpuid(0x80000000, &a, &b, &c, &d);
  if (a >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    char s[49] = {};
    std::memcpy(s, brand, 48);
    f.brand = s;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

std::atomic<int> g_active{-1};
std::once_flag g_env_once;

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512: return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(i)) v.push_back(i);
  return v;
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(std::string_view name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  throw InvalidArgument(fmt::format("unknown ISA '{}': expected scalar, avx2 or avx512", name));
}

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw InvalidArgument(fmt::format("ISA {} is not supported by this CPU (best available: {})", isa_name(isa),
                                      isa_name(best_isa())));
  g_active.store(static_cast<int>(isa));
}

Isa active_isa() {
  std::call_once(g_env_once, [] {
    if (g_active.load() >= 0) return;  // set explicitly before first use
    Isa isa = best_isa();
    if (const char* env = std::getenv("CONTRAIL_ISA"); env && *env) {
      const Isa want = parse_isa(env);
      if (!isa_supported(want))
        throw InvalidArgument(fmt::format("CONTRAIL_ISA={} but this CPU supports at most {}", env, isa_name(best_isa())));
      isa = want;
    }
    g_active.store(static_cast<int>(isa));
  });
  return static_cast<Isa>(g_active.load());
}

}  // namespace contrail
