// Read-bandwidth probe: buffer allocation with first touch by the reading threads, kernel
// dispatch and timing. Contract: contrail/kernels/membw.h.
#include "contrail/kernels/membw.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include "contrail/core/error.h"
#include "contrail/core/thread_pool.h"
#include "kernels/isa_kernels.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace contrail {
namespace kernels {

ReadSumFn read_sum_kernel(Isa isa) {
  require_isa("read_sum_kernel", isa);
  switch (isa) {
    case Isa::Avx512: return read_sum_u64_avx512;
    case Isa::Avx2: return read_sum_u64_avx2;
    case Isa::Scalar: break;
  }
  return read_sum_u64_scalar;
}

}  // namespace kernels

namespace {

constexpr size_t kLineBytes = 64;
constexpr size_t kWordsPerLine = kLineBytes / sizeof(uint64_t);
constexpr size_t kHugePage = size_t{2} << 20;  // allocation alignment, so THP can back the buffer

struct FreeDeleter {
  void operator()(uint64_t* p) const { std::free(p); }
};

// sum of 0, 1, ..., n-1 modulo 2^64 (the buffer holds word i = i).
uint64_t sum_of_indices(uint64_t n) { return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2); }

}  // namespace

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes, int reps) {
  if (reps < 1) throw InvalidArgument(fmt::format("measure_read_bandwidth_gbs: reps = {} must be >= 1", reps));
  const auto n_threads = static_cast<size_t>(pool.size());
  const size_t lines_per_thread = bytes / kLineBytes / n_threads;
  if (lines_per_thread == 0)
    throw InvalidArgument(fmt::format(
        "measure_read_bandwidth_gbs: {} bytes give each of the {} threads less than one {}-byte line", bytes, n_threads,
        kLineBytes));
  const size_t words_per_thread = lines_per_thread * kWordsPerLine;
  const size_t n_words = words_per_thread * n_threads;
  const size_t n_bytes = n_words * sizeof(uint64_t);

  const size_t alloc_bytes = (n_bytes + kHugePage - 1) / kHugePage * kHugePage;  // aligned_alloc needs a multiple
  std::unique_ptr<uint64_t, FreeDeleter> buffer(static_cast<uint64_t*>(std::aligned_alloc(kHugePage, alloc_bytes)));
  if (!buffer) throw Error(fmt::format("measure_read_bandwidth_gbs: cannot allocate {} bytes", alloc_bytes));
  uint64_t* const data = buffer.get();  // (n_threads, words_per_thread), thread t reads row t
#if defined(__linux__)
  madvise(data, alloc_bytes, MADV_HUGEPAGE);  // advisory only: without THP the probe still works
#endif

  // First touch: each thread writes the slice it will read, so its pages are placed for it.
  pool.run([&](int t, int) {
    uint64_t* slice = data + static_cast<size_t>(t) * words_per_thread;
    const uint64_t base = static_cast<uint64_t>(t) * words_per_thread;
    for (size_t i = 0; i < words_per_thread; ++i) slice[i] = base + i;
  });

  const kernels::ReadSumFn kernel = kernels::read_sum_kernel(active_isa());
  const uint64_t expected = sum_of_indices(n_words);
  std::vector<uint64_t> sums(n_threads * kWordsPerLine);  // (n_threads, 8): one cache line per thread's result
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t, int) {
      const size_t row = static_cast<size_t>(t);
      sums[row * kWordsPerLine] = kernel(data + row * words_per_thread, words_per_thread);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (size_t t = 0; t < n_threads; ++t) total += sums[t * kWordsPerLine];
    if (total != expected)
      throw Error(fmt::format("measure_read_bandwidth_gbs: pass {} summed {} over {} words, expected {}", r, total,
                              n_words, expected));
    if (seconds > 0) best = std::max(best, static_cast<double>(n_bytes) / seconds / 1e9);
  }
  return best;
}

}  // namespace contrail
