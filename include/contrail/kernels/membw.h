// Memory read-bandwidth probe (STREAM-style "read" kernel) for `contrail bench`: the roofline of
// token generation, which streams every weight once per token.
//
// measure_read_bandwidth_gbs: allocates `bytes` (rounded down to whole 64-byte lines per thread),
// has every pool thread first-touch its own contiguous slice (so the pages live near the thread
// that reads them) and then sum it with the best read_sum_u64 kernel of active_isa(); returns the
// best of `reps` timed passes in GB/s (1e9 bytes/s). Huge pages are requested where the OS
// offers them (fewer TLB misses, as with large weight buffers).
// Throws InvalidArgument if reps < 1 or the buffer gives a thread less than one 64-byte line, and
// Error if a pass's sum differs from the known contents (the sums are checked, which also keeps
// the reads from being optimised away).
//
// read_sum_kernel(isa): the wrapping (mod 2^64) sum of p[0, n) with wide loads and independent
// accumulators. Integer addition is associative, so every ISA returns exactly the same value.
// No alignment is required (aligned input reads fastest).
#pragma once
#include <cstddef>
#include <cstdint>

#include "contrail/core/cpu_features.h"

namespace contrail {

class ThreadPool;

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{1} << 30, int reps = 5);

namespace kernels {

using ReadSumFn = uint64_t (*)(const uint64_t* p, size_t n);

// The read_sum_u64 variant for `isa`. Throws InvalidArgument if !isa_supported(isa).
ReadSumFn read_sum_kernel(Isa isa);

}  // namespace kernels
}  // namespace contrail
