#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/random.h"
#include "autograd/tensor.h"
#include "test_util.h"

using namespace pf;

TEST(Tensor, CreationAndShape) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dim(), 2);
  EXPECT_EQ(z.size(-1), 3);
  for (float v : z.to_vector()) EXPECT_EQ(v, 0.0f);
  for (float v : Tensor::ones({4}).to_vector()) EXPECT_EQ(v, 1.0f);
  for (float v : Tensor::full({2, 2}, 3.5f).to_vector()) EXPECT_EQ(v, 3.5f);
  Tensor a = Tensor::arange(5);
  test::expect_values(a, {0, 1, 2, 3, 4});
  test::expect_values(Tensor::arange(1.0f, 2.0f, 0.25f), {1.0f, 1.25f, 1.5f, 1.75f});
  Tensor v = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(v.at({1, 2}), 6.0f);
  EXPECT_EQ(Tensor::scalar(2.0f).item(), 2.0f);
  EXPECT_EQ(Tensor::scalar(2.0f).dim(), 0);
}

TEST(Tensor, ErrorsNameTheShapes) {
  try {
    Tensor::from_vector({1, 2, 3}, {2, 2});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 2)"), std::string::npos) << e.what();
  }
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL();
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("reshape"), std::string::npos);
    EXPECT_NE(m.find("(2, 3)"), std::string::npos);
    EXPECT_NE(m.find("(4, 2)"), std::string::npos);
  }
  EXPECT_THROW(t.item(), std::invalid_argument);
  EXPECT_THROW(t.at({2, 0}), std::out_of_range);
  EXPECT_THROW(t.size(2), std::invalid_argument);
}

TEST(Tensor, SharedStorageAndClone) {
  Tensor a = Tensor::zeros({3});
  Tensor b = a;  // handle copy: same storage
  b.data()[1] = 7.0f;
  EXPECT_EQ(a.data()[1], 7.0f);
  EXPECT_TRUE(a.shares_storage_with(b));
  Tensor c = a.clone();
  c.data()[1] = 1.0f;
  EXPECT_EQ(a.data()[1], 7.0f);
  EXPECT_FALSE(c.shares_storage_with(a));
  Tensor r = a.reshape({1, 3});
  EXPECT_TRUE(r.shares_storage_with(a));
  EXPECT_EQ(a.reshape({-1, 1}).shape(), (Shape{3, 1}));
}

TEST(Tensor, AlignedForAvx512) {
  for (int n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::zeros({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  }
}

TEST(Tensor, MatrixViews) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  auto m = t.matrix();
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(m.cols(), 3);
  EXPECT_EQ(m(1, 0), 4.0f);  // row-major
  Tensor t3 = Tensor::zeros({2, 2, 3});
  EXPECT_EQ(t3.matrix().rows(), 4);
  t3.matrix(4, 3)(3, 2) = 9.0f;
  EXPECT_EQ(t3.at({1, 1, 2}), 9.0f);
}

TEST(Tensor, RandomThroughGenerator) {
  Generator g1(42), g2(42);
  Tensor a = Tensor::randn({1000}, g1), b = Tensor::randn({1000}, g2);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  // Sample mean and variance of 1000 N(0,1) draws: 5 sigma bounds (sd of mean 0.032; of variance ~0.045).
  double s = 0, s2 = 0;
  for (float v : a.to_vector()) {
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / 1000, 0.0, 5 * 0.0317);
  EXPECT_NEAR(s2 / 1000, 1.0, 5 * 0.0448);
  Tensor u = Tensor::rand({1000}, g1, 2.0f, 3.0f);
  for (float v : u.to_vector()) {
    EXPECT_GE(v, 2.0f);
    EXPECT_LT(v, 3.0f);
  }
}

// The allocator keeps freed blocks of kLargeBlockBytes (1 MiB) and more for reuse. That cache must never raise the
// process's footprint above what live tensors needed at their peak: live + cached <= peak live,
// (peak since the process started) after every allocation and free, in a sequence mixing hits, misses of other sizes, and frees.
TEST(Tensor, LargeBlockCacheNeverExceedsThePeakOfLiveBytes) {
  constexpr int64_t kMiB = (int64_t{1} << 20) / 4;  // floats per MiB
  auto check = [](const char* where) {
    EXPECT_LE(live_tensor_bytes() + cached_tensor_bytes(), peak_live_tensor_bytes()) << where;
  };
  {
    std::vector<Tensor> held;
    held.push_back(Tensor::empty({40 * kMiB}));
    held.push_back(Tensor::empty({48 * kMiB}));
    check("two live");
    held.clear();  // both cached
    check("both freed");
    EXPECT_GE(cached_tensor_bytes(), int64_t{88} << 20);
    Tensor hit = Tensor::empty({40 * kMiB});  // exact size: taken from the cache
    check("hit");
    const int64_t cached_before = cached_tensor_bytes();
    Tensor reuse = Tensor::empty({36 * kMiB});  // served by a cached block of less than twice its size
    check("reuse of a larger block");
    EXPECT_LE(cached_tensor_bytes(), cached_before - (int64_t{36} << 20));
    Tensor big = Tensor::empty({100 * kMiB});  // nothing cached
    check("miss with nothing cached");
  }
  check("all freed");
  for (int round = 0; round < 3; ++round) {  // a step-like pattern with growing sizes
    std::vector<Tensor> held;
    for (int i = 0; i < 4; ++i) held.push_back(Tensor::empty({(33 + 7 * i + round) * kMiB}));
    check("step allocations");
    held.erase(held.begin() + 1);
    Tensor extra = Tensor::empty({(60 + round) * kMiB});
    check("allocation after a partial free");
  }
  check("end");
}

// What the cache is for: a training step repeats the same allocations every step, and from the
// second repetition on they must all be served from the cache, without mapping new blocks, even
// when the sizes freed and requested within a step differ (a request smaller than a freed block).
// A cache that only matched exact sizes and released a block on every miss would map new blocks
// at every repetition of this pattern.
TEST(Tensor, RepeatedStepPatternIsServedFromTheCache) {
  constexpr int64_t kMiB = (int64_t{1} << 20) / 4;  // floats per MiB
  auto step = [] {
    Tensor a = Tensor::empty({40 * kMiB});
    Tensor b = Tensor::empty({56 * kMiB});
    a = Tensor();
    Tensor c = Tensor::empty({36 * kMiB});
    b = Tensor();
    Tensor d = Tensor::empty({48 * kMiB});
    EXPECT_LE(live_tensor_bytes() + cached_tensor_bytes(), peak_live_tensor_bytes());
  };
  step();
  step();
  const LargeBlockStats before = large_block_stats();
  for (int i = 0; i < 3; ++i) step();
  const LargeBlockStats after = large_block_stats();
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(after.released_bytes, before.released_bytes);
  EXPECT_EQ(after.hits - before.hits, 3 * 4);
}

// A cached block larger than a request serves it with its front and keeps the rest cached, so that no
// fresh pages are mapped (and cleared by the kernel) for a request a cached block can hold; the pieces
// merge back when freed, so the next request for the whole size is served too. The pieces must not
// overlap.
TEST(Tensor, SplitCachedBlocksDoNotOverlapAndMergeBack) {
  constexpr int64_t kMiB = (int64_t{1} << 20) / 4;  // floats per MiB
  { Tensor big = Tensor::empty({64 * kMiB}); }
  const LargeBlockStats before = large_block_stats();
  for (int round = 0; round < 3; ++round) {
    Tensor a = Tensor::empty({16 * kMiB}), b = Tensor::empty({40 * kMiB});
    std::fill(a.data(), a.data() + a.numel(), 1.0f);
    std::fill(b.data(), b.data() + b.numel(), 2.0f);
    EXPECT_TRUE(a.data() + a.numel() <= b.data() || b.data() + b.numel() <= a.data());
    EXPECT_EQ(a.data()[0], 1.0f);
    EXPECT_EQ(a.data()[a.numel() - 1], 1.0f);
    EXPECT_EQ(b.data()[0], 2.0f);
    EXPECT_LE(live_tensor_bytes() + cached_tensor_bytes(), peak_live_tensor_bytes());
    a = Tensor();
    b = Tensor();
    Tensor whole = Tensor::empty({64 * kMiB});
    std::fill(whole.data(), whole.data() + whole.numel(), 3.0f);
    EXPECT_LE(live_tensor_bytes() + cached_tensor_bytes(), peak_live_tensor_bytes());
  }
  const LargeBlockStats after = large_block_stats();
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(after.released_bytes, before.released_bytes);
  EXPECT_GE(after.splits - before.splits, 3);
}

// Mid-sized activations (1 MiB to 32 MiB: a B2 activation at sequence 16384 is 8 MiB) come from the
// large-block cache too, not from the heap, where blocks of many sizes used to fragment it (the
// process held 1.7x its live tensor bytes): freed and requested again, such a block is a cache hit.
TEST(Tensor, MidSizedBlocksAreServedFromTheLargeBlockCache) {
  const int64_t floats = 2 * kLargeBlockBytes / 4;  // 2 MiB
  { Tensor first = Tensor::empty({floats}); }
  const LargeBlockStats before = large_block_stats();
  { Tensor again = Tensor::empty({floats}); }
  const LargeBlockStats after = large_block_stats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.misses, before.misses);
  const LargeBlockStats small_before = large_block_stats();
  { Tensor small = Tensor::empty({kLargeBlockBytes / 4 / 2}); }  // 512 KiB: from the heap
  EXPECT_EQ(large_block_stats().hits + large_block_stats().misses, small_before.hits + small_before.misses);
}
