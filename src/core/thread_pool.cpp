#include "contrail/core/thread_pool.h"

#include <algorithm>

#include "contrail/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CONTRAIL_PAUSE() _mm_pause()
#else
#define CONTRAIL_PAUSE() std::this_thread::yield()
#endif

namespace contrail {
namespace {
constexpr int kSpinIterations = 1 << 16;  // ~ tens of microseconds before sleeping
thread_local const ThreadPool* active = nullptr;  // the pool whose job this thread is running
}

int ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads <= 0 ? default_threads() : n_threads) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(sleep_mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_share(int tid) {
  try {
    (*job_)(tid, n_threads_);
  } catch (...) {
    std::lock_guard<std::mutex> lk(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::worker_loop(int tid) {
  active = this;
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kSpinIterations; ++i) {
      CONTRAIL_PAUSE();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lk(sleep_mutex_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    run_share(tid);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (active == this) throw Error("ThreadPool::run called from inside a job of the same pool");
  std::lock_guard<std::mutex> job_lock(job_mutex_);
  struct Mark {
    const ThreadPool*& slot;
    ~Mark() { slot = nullptr; }
  } mark{active};
  active = this;
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  error_ = nullptr;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(sleep_mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  run_share(0);
  while (pending_.load(std::memory_order_acquire) != 0) CONTRAIL_PAUSE();
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int chunks = static_cast<int>(std::min<int64_t>(max_chunks, n_threads_));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  run([&](int tid, int) {
    if (tid >= chunks) return;
    const int64_t begin = n * tid / chunks;
    const int64_t end = n * (tid + 1) / chunks;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace contrail
