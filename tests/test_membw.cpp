// Read-bandwidth probe: every ISA's summation kernel against a plain loop (exact, integer sums),
// and sanity of the measurement (positive, finite). No timing thresholds: the machine is shared.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/core/thread_pool.h"
#include "contrail/kernels/membw.h"

namespace contrail {
namespace {

TEST(Membw, ReadSumKernelsEqualPlainSumForEveryIsa) {
  // Random words (splitmix64-style mixing) so wrap-around and every bit matter.
  std::vector<uint64_t> data(5000);  // (5000)
  uint64_t x = 0x12345678u;
  for (uint64_t& w : data) {
    x += 0x9E3779B97F4A7C15ull;
    w = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
  }
  for (Isa isa : supported_isas()) {
    const kernels::ReadSumFn sum = kernels::read_sum_kernel(isa);
    for (size_t offset : {0u, 1u, 3u})  // unaligned starts too
      for (size_t n : {0u, 1u, 7u, 8u, 31u, 32u, 63u, 64u, 65u, 127u, 129u, 1000u, 4099u}) {
        uint64_t want = 0;
        for (size_t i = 0; i < n; ++i) want += data[offset + i];
        EXPECT_EQ(sum(data.data() + offset, n), want) << isa_name(isa) << " n " << n << " offset " << offset;
      }
  }
}

TEST(Membw, MeasurementIsPositiveAndFinite) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    const double gbs = measure_read_bandwidth_gbs(pool, size_t{32} << 20, 2);
    EXPECT_GT(gbs, 0.0) << threads << " threads";
    EXPECT_TRUE(std::isfinite(gbs)) << threads << " threads";
  }
}

TEST(Membw, InvalidArgumentsThrow) {
  ThreadPool pool(2);
  EXPECT_THROW(measure_read_bandwidth_gbs(pool, size_t{1} << 20, 0), InvalidArgument);
  EXPECT_THROW(measure_read_bandwidth_gbs(pool, 64, 1), InvalidArgument);  // < one line per thread
}

}  // namespace
}  // namespace contrail
