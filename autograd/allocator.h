// Storage for tensors: 64-byte aligned float blocks, counted (live and peak bytes, for leak tests
// and memory reports). Blocks of kLargeBlockBytes (1 MiB) and more are mapped directly (2 MiB
// aligned, transparent huge pages where offered) and kept in a cache after they are freed, so that
// the next training step reuses them instead of faulting in fresh pages; the cache never raises the
// peak (see allocator.cpp).
#pragma once

#include <cstdint>
#include <memory>

namespace pf {

// numel floats (at least one), 64-byte aligned, contents unspecified. Throws std::bad_alloc.
std::shared_ptr<float[]> allocate_floats(int64_t numel);

// Bytes currently held by all tensor storage in the process (for leak tests and memory reports).
int64_t live_tensor_bytes();
// Highest live_tensor_bytes() since the process started.
int64_t peak_live_tensor_bytes();
constexpr int64_t kLargeBlockBytes = int64_t{1} << 20;
// Bytes of freed large blocks (>= kLargeBlockBytes) kept for reuse by the allocator. Live plus cached
// bytes never exceed the peak of live bytes: the cache gives blocks back before mapping new ones.
// (A large request may be served by a cached block of up to twice its size; live bytes count the
// block's size.)
int64_t cached_tensor_bytes();
// Counters of the large-block cache since the process started: requests served from it, requests
// that mapped a new block, and bytes of cached blocks released to make room.
struct LargeBlockStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t released_bytes = 0;
  int64_t splits = 0;  // hits served by the front of a larger cached block (the rest stays cached)
};
LargeBlockStats large_block_stats();

}  // namespace pf
