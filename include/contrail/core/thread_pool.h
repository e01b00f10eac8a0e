// Fork-join thread pool for the compute kernels. Contract:
// - A job is split into chunks; the calling thread and the size()-1 workers claim chunks from a
//   shared counter until none are left. Every chunk runs exactly once. A worker that wakes late
//   (descheduled on a busy machine) finds nothing left and never delays the caller: the caller
//   waits only for chunks that were actually claimed.
// - run()/for_chunks()/parallel_for() return when every chunk has finished; the first exception
//   thrown by any chunk is rethrown in the caller after all chunks end.
// - Jobs are serialised: concurrent callers wait for each other. A chunk must not call back into
//   the same pool (detected; throws).
// - Idle workers spin briefly (decode steps are microseconds apart) and then sleep.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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

  // fn(chunk) for every chunk in [0, n_chunks), on whichever threads claim them.
  void for_chunks(int64_t n_chunks, const std::function<void(int64_t)>& fn);

  // fn(i, size()) for every i in [0, size()): one share per thread of the pool, though a share
  // may run on any thread (and two shares on the same one when a worker is late).
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous ranges of at least `grain` items (a few per thread, for load
  // balance) and calls fn(begin, end) for each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();

 private:
  struct Job;
  void worker_loop();
  static void work_on(Job& job);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;    // serialises callers
  std::mutex state_mutex_;  // guards current_ and the sleep condition
  std::condition_variable wake_;
  std::shared_ptr<Job> current_;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

}  // namespace contrail
