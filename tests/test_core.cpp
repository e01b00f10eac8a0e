// Core: thread pool semantics, tensor views and validation, dtype sizes, f16/bf16 conversion.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/dtype.h"
#include "contrail/core/error.h"
#include "contrail/core/half.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail {
namespace {

TEST(ThreadPool, EveryChunkRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 33, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep) pool.for_chunks(n, [&](int64_t c) { hits[static_cast<size_t>(c)]++; });
      for (int64_t c = 0; c < n; ++c) EXPECT_EQ(hits[static_cast<size_t>(c)].load(), 20) << threads << " " << n;
    }
  }
}

TEST(ThreadPool, ParallelForCoversTheRangeWithoutOverlap) {
  ThreadPool pool(3);
  for (int64_t n : {1, 5, 17, 4097}) {
    for (int64_t grain : {1, 4, 100}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        EXPECT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << " " << grain;
    }
  }
}

TEST(ThreadPool, RunGivesEveryShareOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(4);
  pool.run([&](int i, int n) {
    EXPECT_EQ(n, 4);
    hits[static_cast<size_t>(i)]++;
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, ExceptionsReachTheCallerAfterAllChunks) {
  ThreadPool pool(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.for_chunks(16,
                               [&](int64_t c) {
                                 ran++;
                                 if (c == 3) throw std::runtime_error("chunk 3");
                               }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 16);
  // The pool is still usable.
  std::atomic<int> again{0};
  pool.for_chunks(8, [&](int64_t) { again++; });
  EXPECT_EQ(again.load(), 8);
}

TEST(ThreadPool, NestedUseOfTheSamePoolIsAnError) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.for_chunks(4, [&](int64_t) { pool.for_chunks(2, [](int64_t) {}); }), Error);
}

TEST(ThreadPool, ManySmallJobsFromOneCaller) {
  ThreadPool pool(2);
  int64_t sum = 0;
  std::vector<int64_t> part(2);
  for (int rep = 0; rep < 20000; ++rep) {
    pool.run([&](int i, int) { part[static_cast<size_t>(i)] = i + 1; });
    sum += part[0] + part[1];
  }
  EXPECT_EQ(sum, 20000 * 3);
}

TEST(Tensor, ShapesViewsAndValidation) {
  Tensor t = Tensor::empty(DType::F32, {4, 6});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.rows(), 4);
  EXPECT_EQ(t.cols(), 6);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (int i = 0; i < 24; ++i) t.data_as<float>()[i] = static_cast<float>(i);
  Tensor s = t.slice_rows(1, 3);
  EXPECT_EQ(s.shape(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(s.data_as<float>()[0], 6.f);
  Tensor r = t.reshape({2, 3, 4});
  EXPECT_EQ(r.dim(-1), 4);
  EXPECT_EQ(r.shape_str(), "(2, 3, 4)");
  EXPECT_THROW(t.reshape({5, 5}), InvalidArgument);
  EXPECT_THROW(t.slice_rows(3, 5), InvalidArgument);
  EXPECT_THROW(Tensor(DType::Q8_0, {2, 33}, nullptr), InvalidArgument);  // not a multiple of 32
  EXPECT_THROW(Tensor(DType::F32, {1, 2, 3, 4, 5}, nullptr), InvalidArgument);
  EXPECT_THROW(Tensor(DType::F32, {-1}, nullptr), InvalidArgument);
  EXPECT_THROW(Tensor(DType::F32, {int64_t{1} << 62, int64_t{1} << 62}, nullptr), InvalidArgument);
  // A view keeps its storage alive.
  Tensor keep;
  {
    Tensor owner = Tensor::empty(DType::F32, {8});
    owner.data_as<float>()[7] = 42.f;
    keep = owner.slice_rows(4, 8);
  }
  EXPECT_EQ(keep.data_as<float>()[3], 42.f);
}

TEST(DType, GgmlSizes) {
  EXPECT_EQ(row_bytes(DType::F32, 7), 28u);
  EXPECT_EQ(row_bytes(DType::F16, 7), 14u);
  EXPECT_EQ(row_bytes(DType::BF16, 3), 6u);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::Q4_K, 256), 144u);
  EXPECT_EQ(row_bytes(DType::Q6_K, 512), 420u);
  EXPECT_THROW(row_bytes(DType::Q8_0, 33), InvalidArgument);
  EXPECT_EQ(dtype_traits_or_null(4), nullptr);  // removed GGML types are unknown
  EXPECT_EQ(dtype_traits_or_null(999), nullptr);
  EXPECT_EQ(dtype_name(DType::Q8_0), "q8_0");
}

// Independent definition of binary16: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024.
double f16_value(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 31) v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0) v = std::ldexp(m / 1024.0, -14);
  else v = std::ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}

TEST(Half, F16ToF32MatchesDefinitionForAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = f16_value(static_cast<uint16_t>(h));
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << h;
      ASSERT_EQ(std::signbit(got), (h >> 15) != 0) << h;
    }
  }
}

TEST(Half, F32ToF16RoundsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {  // exact values round-trip
    const uint16_t x = static_cast<uint16_t>(h);
    if (std::isnan(f16_value(x))) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(x)), x) << h;
  }
  // Ties between neighbours go to the even mantissa; above the tie goes up.
  const float one = 1.0f, ulp = 1.0f / 1024;
  EXPECT_EQ(f32_to_f16(one + ulp / 2), f32_to_f16(one));
  EXPECT_EQ(f32_to_f16(one + 1.5f * ulp), f32_to_f16(one + 2 * ulp));
  EXPECT_EQ(f32_to_f16(one + ulp / 2 + ulp / 64), f32_to_f16(one + ulp));
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);  // rounds to inf
  EXPECT_EQ(f32_to_f16(65519.f), 0x7bff);  // max finite
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0);            // tie at half the smallest subnormal -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 1);            // above it -> smallest subnormal
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(fp32_from_bits(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(fp32_from_bits(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(fp32_from_bits(0x3f808001)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(CpuFeatures, IsaLevels) {
  const auto isas = supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::Scalar);
  EXPECT_EQ(isas.back(), best_isa());
  EXPECT_EQ(parse_isa("avx2"), Isa::Avx2);
  EXPECT_THROW(parse_isa("sse9"), InvalidArgument);
  for (Isa i : isas) {
    set_active_isa(i);
    EXPECT_EQ(active_isa(), i);
  }
  set_active_isa(best_isa());
}

}  // namespace
}  // namespace contrail
