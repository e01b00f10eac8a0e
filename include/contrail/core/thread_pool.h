// Fork-join thread pool for the compute kernels. Contract:
// - size() threads take part in every job: the calling thread is thread 0, plus size()-1 workers.
// - run()/parallel_for() return only when every thread has finished its share; the first exception
//   thrown by any share is rethrown in the caller after all shares end.
// - Jobs are serialised: concurrent callers wait for each other. A job must not call back into
//   the same pool (that would deadlock; it is detected and throws).
// - Idle workers spin briefly (decode steps are microseconds apart) and then sleep.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace contrail {

class ThreadPool {
 public:
  // n_threads <= 0: one per hardware thread (std::thread::hardware_concurrency).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(thread_id, n_threads) on every thread.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items, at most one per thread, and
  // calls fn(begin, end) for each non-empty chunk.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();

 private:
  void worker_loop(int tid);
  void run_share(int tid);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;  // serialises callers
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace contrail
