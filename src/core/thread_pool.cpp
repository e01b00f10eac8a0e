#include "contrail/core/thread_pool.h"

#include <algorithm>
#include <exception>

#include "contrail/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CONTRAIL_PAUSE() _mm_pause()
#else
#define CONTRAIL_PAUSE() std::this_thread::yield()
#endif

namespace contrail {

// One job's shared state. Workers hold it by shared_ptr, so a late worker can still look at the
// counters after the caller returned; it touches `fn` only for a chunk it claimed, and the caller
// waits for every claimed chunk, so `fn` (on the caller's stack) is never used after return.
struct ThreadPool::Job {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t n_chunks = 0;
  std::atomic<int64_t> next{0};  // next chunk to claim
  std::atomic<int64_t> done{0};  // chunks finished
  std::mutex error_mutex;
  std::exception_ptr error;
};

namespace {
constexpr int kWorkerSpins = 1 << 15;  // ~ tens of microseconds before a worker sleeps
constexpr int kCallerSpins = 1 << 12;  // then the waiting caller yields its core
thread_local const void* t_active_pool = nullptr;  // pool whose chunk this thread is running
}  // namespace

int ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads <= 0 ? default_threads() : n_threads) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(state_mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work_on(Job& job) {
  for (;;) {
    const int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.n_chunks) return;
    try {
      (*job.fn)(c);
    } catch (...) {
      std::lock_guard<std::mutex> lk(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  t_active_pool = this;
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kWorkerSpins; ++i) {
      CONTRAIL_PAUSE();
      gen = generation_.load(std::memory_order_acquire);
    }
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(state_mutex_);
      if (gen == seen) wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      job = current_;
    }
    if (job) work_on(*job);
  }
}

void ThreadPool::for_chunks(int64_t n_chunks, const std::function<void(int64_t)>& fn) {
  if (t_active_pool == this) throw Error("ThreadPool: a chunk called back into its own pool");
  if (n_chunks <= 0) return;
  std::lock_guard<std::mutex> job_lock(job_mutex_);
  if (n_threads_ == 1 || n_chunks == 1) {
    for (int64_t c = 0; c < n_chunks; ++c) fn(c);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n_chunks = n_chunks;
  {
    std::lock_guard<std::mutex> lk(state_mutex_);
    current_ = job;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  const void* outer = t_active_pool;
  t_active_pool = this;
  work_on(*job);
  t_active_pool = outer;
  for (int i = 0; job->done.load(std::memory_order_acquire) != n_chunks; ++i) {
    if (i < kCallerSpins) {
      CONTRAIL_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
  {
    std::lock_guard<std::mutex> lk(state_mutex_);
    current_.reset();
  }
  if (job->error) std::rethrow_exception(job->error);
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  const int n = n_threads_;
  for_chunks(n, [&](int64_t c) { fn(static_cast<int>(c), n); });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  // A few ranges per thread so a late or slow thread's share can be taken by the others.
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int64_t chunks = std::min<int64_t>(max_chunks, n_threads_ == 1 ? 1 : 4 * n_threads_);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  for_chunks(chunks, [&](int64_t c) {
    const int64_t begin = n * c / chunks;
    const int64_t end = n * (c + 1) / chunks;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace contrail
