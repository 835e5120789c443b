// The tensor storage allocator: 64-byte aligned blocks, a cache of large blocks that never raises
// the peak, and the live/peak byte counters (autograd/allocator.h).
#include "autograd/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <malloc.h>
#include <map>
#include <mutex>
#include <new>
#include <sys/mman.h>

namespace pf {

namespace {

std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_live_bytes{0};

// Tensor blocks of 1 MiB and more never reach malloc (below). For the rest of the process (small
// tensors, oneDNN's scratch buffers, per-thread temporaries): keep freed memory on the heap and do
// not trim it, so that a step's buffers are reused instead of mapped and faulted in again. Runs
// once, before the first tensor exists.
const bool g_malloc_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();

// Blocks of 1 MiB and more are mapped here and, once freed, kept in a cache and handed out again:
// the next step's allocations then touch no new pages. (They used to start at 32 MiB, glibc's
// largest mmap threshold, with smaller ones on the heap; but a heap that serves blocks of many
// sizes fragments: at B2, sequence 16384, the process held 895 MB for 520 MB of live tensors. With
// the threshold at 1 MiB it holds 534 MB, at the same speed.)
// A request takes the smallest cached block of at least its size: whole if that block exceeds it by
// less than kLargeBlock (a block keeps its own size while in use, and live bytes count it), else its
// front, the rest staying cached. Freed blocks merge with cached neighbours. Then a step
// that repeats the previous one's allocations is served from pages already faulted in, instead of
// releasing blocks of the wrong sizes and clearing fresh pages (which took 12% of a bf16 B1 step).
//
// The cache must not raise peak memory. With F = live + cached bytes and P the peak of live
// bytes so far: a free leaves F unchanged, a hit leaves it unchanged, and on a miss cached blocks
// are released (the smallest single block that is enough, else the largest ones first) until the
// new block fits under max(P, live after the allocation). So F never exceeds the peak of live
// tensor bytes, and the process's large-block footprint is what the computation itself needed
// at its peak; blocks are released only when keeping them would break that bound.
constexpr size_t kLargeBlock = static_cast<size_t>(kLargeBlockBytes);
constexpr size_t kLargeCacheBytes = size_t{4} << 30;
constexpr size_t kPage = 4096;

// Large blocks are mapped directly, 2 MiB-aligned and marked for transparent huge pages where the
// kernel offers them (madvise mode): a block the cache could not supply then costs one fault per
// 2 MiB instead of one per 4 KiB.
constexpr size_t kHugePage = size_t{2} << 20;

void* map_large(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugePage - 1) / kHugePage * kHugePage;
  if (start > base) munmap(raw, start - base);
  const uintptr_t end = base + span, used_end = start + (bytes + 4095) / 4096 * 4096;
  if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
  void* p = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

void unmap_large(void* p, size_t bytes) { munmap(p, bytes); }

// Cached blocks by size (to find the best fit) and by address (to merge neighbours). A freed block
// that touches a cached one (the two halves of a split block, or two mappings the kernel placed
// side by side) is merged with it, so that splitting does not leave the cache in pieces too small
// for the next large request.
struct LargeBlockCache {
  std::mutex mutex;
  std::multimap<size_t, char*> blocks;
  std::map<char*, size_t> by_addr;
  size_t bytes = 0;
  LargeBlockStats stats;
  ~LargeBlockCache() {
    for (auto& [size, p] : blocks) unmap_large(p, size);
  }
};

LargeBlockCache& large_cache() {
  static LargeBlockCache* cache = new LargeBlockCache();  // never destroyed: tensors may outlive statics
  return *cache;
}

// Takes the block `it` out of the cache (the bytes stay mapped); returns its address.
char* take(LargeBlockCache& c, std::multimap<size_t, char*>::iterator it) {
  char* p = it->second;
  c.bytes -= it->first;
  c.by_addr.erase(p);
  c.blocks.erase(it);
  return p;
}

void drop_by_addr(LargeBlockCache& c, std::map<char*, size_t>::iterator a) {
  auto range = c.blocks.equal_range(a->second);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == a->first) {
      take(c, it);
      return;
    }
}

// Puts a block into the cache, merged with the cached blocks that end where it starts or start where it ends.
void put(LargeBlockCache& c, char* p, size_t size) {
  auto next = c.by_addr.find(p + size);
  if (next != c.by_addr.end()) {
    size += next->second;
    drop_by_addr(c, next);
  }
  auto after = c.by_addr.lower_bound(p);
  if (after != c.by_addr.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == p) {
      p = prev->first;
      size += prev->second;
      drop_by_addr(c, prev);
    }
  }
  c.blocks.emplace(size, p);
  c.by_addr.emplace(p, size);
  c.bytes += size;
}

void release(LargeBlockCache& c, std::multimap<size_t, char*>::iterator it) {
  const size_t size = it->first;
  c.stats.released_bytes += static_cast<int64_t>(size);
  unmap_large(take(c, it), size);
}

// Releases cached blocks totalling at least `bytes` (or all of them). Caller holds the mutex.
void evict_for(LargeBlockCache& c, size_t bytes) {
  auto fit = c.blocks.lower_bound(bytes);
  if (fit != c.blocks.end()) {
    release(c, fit);
    return;
  }
  size_t freed = 0;
  while (freed < bytes && !c.blocks.empty()) {
    auto last = std::prev(c.blocks.end());
    freed += last->first;
    release(c, last);
  }
}

// Returns a block of at least `bytes` and sets `capacity` to its size (large blocks: whole pages, so
// that the rest of a split block starts on a page).
void* take_block(size_t bytes, size_t& capacity) {
  capacity = bytes;
  if (bytes < kLargeBlock) return std::aligned_alloc(64, bytes);
  bytes = (bytes + kPage - 1) / kPage * kPage;
  capacity = bytes;
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.blocks.lower_bound(bytes);
  if (it != c.blocks.end()) {
    ++c.stats.hits;
    const size_t size = it->first;
    char* p = take(c, it);
    if (size - bytes < kLargeBlock) {
      capacity = size;
    } else {  // its front serves the request, the rest stays cached (its pages stay mapped)
      ++c.stats.splits;
      put(c, p + bytes, size - bytes);
    }
    return p;
  }
  ++c.stats.misses;
  const size_t live = static_cast<size_t>(g_live_bytes.load());
  const size_t bound = std::max(static_cast<size_t>(g_peak_live_bytes.load()), live + bytes);
  if (live + c.bytes + bytes > bound) evict_for(c, live + c.bytes + bytes - bound);
  return map_large(bytes);
}

void give_block(void* p, size_t bytes) {
  if (bytes < kLargeBlock) {
    std::free(p);
    return;
  }
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.bytes + bytes <= kLargeCacheBytes) {
    put(c, static_cast<char*>(p), bytes);
    return;
  }
  unmap_large(p, bytes);
}

}  // namespace

std::shared_ptr<float[]> allocate_floats(int64_t numel) {
  // Round up to a whole number of 64-byte lines; aligned_alloc requires it.
  size_t bytes = static_cast<size_t>(std::max<int64_t>(numel, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  size_t capacity = 0;
  void* p = take_block(bytes, capacity);
  if (!p) throw std::bad_alloc();
  const int64_t live = g_live_bytes += static_cast<int64_t>(capacity);
  int64_t peak = g_peak_live_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_live_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  return std::shared_ptr<float[]>(static_cast<float*>(p), [capacity](float* q) {
    g_live_bytes -= static_cast<int64_t>(capacity);
    give_block(q, capacity);
  });
}

int64_t live_tensor_bytes() { return g_live_bytes.load(); }
int64_t peak_live_tensor_bytes() { return g_peak_live_bytes.load(); }

int64_t cached_tensor_bytes() {
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return static_cast<int64_t>(c.bytes);
}

LargeBlockStats large_block_stats() {
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace pf
