// ops::add_bias_rows against hand-computed values and a double-precision reference loop, over
// thread counts and widths that split rows unevenly, plus argument validation.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/ops/bias.h"
#include "test_util.h"

namespace contrail {
namespace {

TEST(AddBiasRows, HandComputed) {
  ThreadPool pool(1);
  std::vector<float> y = {1, 2, 3, 10, 20, 30};  // (2, 3)
  std::vector<float> b = {0.5f, -1, 4};           // (3)
  Tensor ty(DType::F32, {2, 3}, y.data());
  const Tensor tb(DType::F32, {3}, b.data());
  ops::add_bias_rows(ty, tb, pool);
  EXPECT_EQ(y, (std::vector<float>{1.5f, 1, 7, 10.5f, 19, 34}));
  EXPECT_EQ(b, (std::vector<float>{0.5f, -1, 4}));  // the bias is read only
}

TEST(AddBiasRows, MatchesReferenceAcrossShapesAndThreads) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (const auto& [n, d] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 7}, {33, 64}, {2, 20000}, {700, 33}}) {
      std::vector<float> y(static_cast<size_t>(n * d)), b(static_cast<size_t>(d));  // (n, d), (d)
      for (float& v : y) v = dist(rng);
      for (float& v : b) v = dist(rng);
      std::vector<float> want(y.size());  // (n, d)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < d; ++j)
          want[static_cast<size_t>(i * d + j)] =
              static_cast<float>(static_cast<double>(y[static_cast<size_t>(i * d + j)]) + b[static_cast<size_t>(j)]);
      Tensor ty(DType::F32, {n, d}, y.data());
      const Tensor tb(DType::F32, {d}, b.data());
      ops::add_bias_rows(ty, tb, pool);
      ASSERT_EQ(y, want) << "n " << n << ", d " << d << ", threads " << threads;
    }
  }
}

void expect_invalid(Tensor& y, const Tensor& b, const std::string& part) {
  ThreadPool pool(1);
  try {
    ops::add_bias_rows(y, b, pool);
    FAIL() << "expected InvalidArgument containing '" << part << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(AddBiasRows, RejectsBadArguments) {
  std::vector<float> y(12), b(8);
  std::vector<uint16_t> h(4);
  Tensor y2(DType::F32, {3, 4}, y.data());
  expect_invalid(y2, Tensor(DType::F32, {3}, b.data()), "b has shape (3), expected (4) to match the width of y (3, 4)");
  expect_invalid(y2, Tensor(DType::F32, {1, 4}, b.data()), "b has shape (1, 4), expected (4)");
  expect_invalid(y2, Tensor(DType::F16, {4}, h.data()), "b (4) has dtype f16, expected f32");
  Tensor y3(DType::F32, {3, 2, 2}, y.data());
  expect_invalid(y3, Tensor(DType::F32, {2}, b.data()), "y (3, 2, 2) has 3 dims, expected 2");
  expect_invalid(y2, Tensor(DType::F32, {4}, y.data() + 4), "b (4) overlaps y (3, 4)");
  Tensor yh(DType::F16, {1, 4}, h.data());
  expect_invalid(yh, Tensor(DType::F32, {4}, b.data()), "y (1, 4) has dtype f16, expected f32");
}

}  // namespace
}  // namespace contrail
