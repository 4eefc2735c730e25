// The block cache behind AlignedBuffer: large freed blocks are reused, within a limit.
#include "common/aligned_buffer.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <set>

namespace tempo {
namespace {

constexpr size_t kGiB = size_t{1} << 30;

TEST(BufferCacheLimitTest, IsTwiceThePeakAboveAFloorAndAtMostHalfTheUsableMemory) {
  EXPECT_EQ(buffer_cache_limit(0, 64 * kGiB), 4 * kGiB);
  EXPECT_EQ(buffer_cache_limit(kGiB, 64 * kGiB), 4 * kGiB);
  EXPECT_EQ(buffer_cache_limit(5 * kGiB, 64 * kGiB), 10 * kGiB);
  EXPECT_EQ(buffer_cache_limit(20 * kGiB, 64 * kGiB), 32 * kGiB);
  EXPECT_EQ(buffer_cache_limit(kGiB, 4 * kGiB), 2 * kGiB);
  EXPECT_EQ(buffer_cache_limit(SIZE_MAX, SIZE_MAX), SIZE_MAX / 2);
}

TEST(BufferCacheLimitTest, UsableMemoryIsNonZeroAndAtMostThePhysicalMemory) {
  const size_t usable = usable_memory_bytes();
  EXPECT_GT(usable, size_t{0});
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  ASSERT_GT(pages, 0);
  ASSERT_GT(page, 0);
  EXPECT_LE(usable, static_cast<size_t>(pages) * static_cast<size_t>(page));
}

TEST(BufferCacheTest, AFreedLargeBlockIsReusedForTheSameSize) {
  const int64_t floats = int64_t{1} << 20;  // 4 MiB
  const float* first = nullptr;
  {
    AlignedBuffer a(floats);
    first = a.data();
    const BufferCacheStats in_use = buffer_cache_stats();
    EXPECT_GE(in_use.live, size_t{4} << 20);
    EXPECT_GE(in_use.peak_live, in_use.live);
  }
  const BufferCacheStats freed = buffer_cache_stats();
  EXPECT_GE(freed.cached, size_t{4} << 20);
  EXPECT_LE(freed.cached, freed.limit);
  AlignedBuffer b(floats);
  EXPECT_EQ(b.data(), first);
  EXPECT_EQ(buffer_cache_stats().cached, freed.cached - (size_t{4} << 20));
}

TEST(BufferCacheTest, LiveBytesFollowAllocationsAndFrees) {
  const size_t before = buffer_cache_stats().live;
  {
    AlignedBuffer a(int64_t{1} << 18);        // 1 MiB
    const AlignedBuffer b(int64_t{3} << 18);  // 3 MiB
    AlignedBuffer shared = a;                 // the same block: no new bytes
    EXPECT_EQ(buffer_cache_stats().live, before + (size_t{4} << 20));
    a = AlignedBuffer();  // the block lives on in `shared`
    EXPECT_EQ(buffer_cache_stats().live, before + (size_t{4} << 20));
    shared = AlignedBuffer();
    EXPECT_EQ(buffer_cache_stats().live, before + (size_t{3} << 20));
  }
  EXPECT_EQ(buffer_cache_stats().live, before);
}

TEST(BufferCacheTest, SmallBlocksAreNotCounted) {
  const BufferCacheStats before = buffer_cache_stats();
  { AlignedBuffer small(1000); }
  const BufferCacheStats after = buffer_cache_stats();
  EXPECT_EQ(after.live, before.live);
  EXPECT_EQ(after.cached, before.cached);
}

/// A LargeBlockSource that counts what it gives and takes back (a stand-in for cudaHostAlloc).
struct CountingSource {
  static inline std::set<void*> given;
  static inline int allocations = 0, releases = 0;
  static inline bool empty = false;  ///< has nothing to give
  static void* allocate(size_t bytes) {
    if (empty) return nullptr;
    void* p = std::aligned_alloc(64, bytes);
    given.insert(p);
    ++allocations;
    return p;
  }
  static void release(void* p) {
    EXPECT_EQ(given.erase(p), 1u) << "released a block this source did not give";
    ++releases;
    std::free(p);
  }
};

TEST(BufferCacheTest, LargeBlocksComeFromTheInstalledSourceAndGoBackToIt) {
  set_large_block_source({CountingSource::allocate, CountingSource::release});
  EXPECT_EQ(large_block_source().allocate, CountingSource::allocate);
  const int64_t floats = (int64_t{5} << 20) + 4096;  // a size no other test uses
  ASSERT_TRUE(is_large_block(floats));
  const float* first = nullptr;
  {
    const AlignedBuffer a(floats);
    first = a.data();
    EXPECT_EQ(CountingSource::given.count(const_cast<float*>(first)), 1u);
    EXPECT_EQ(CountingSource::allocations, 1);
  }
  EXPECT_EQ(CountingSource::releases, 0) << "a freed block is cached, not released";
  AlignedBuffer again(floats);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(CountingSource::allocations, 1);
  ASSERT_FALSE(is_large_block(16));
  const AlignedBuffer small(16);
  EXPECT_EQ(CountingSource::given.count(small.data()), 0u) << "small blocks come from malloc";

  // Back to the default: the block in use goes back to the source that gave it, when freed.
  set_large_block_source({});
  EXPECT_EQ(large_block_source().allocate, nullptr);
  EXPECT_EQ(CountingSource::releases, 0);
  again = AlignedBuffer();
  EXPECT_EQ(CountingSource::releases, 1);
  const AlignedBuffer plain(floats);
  EXPECT_EQ(CountingSource::given.count(plain.data()), 0u);
  EXPECT_EQ(CountingSource::allocations, 1);
}

TEST(BufferCacheTest, CachedBlocksOfAReplacedSourceAreReleasedToIt) {
  CountingSource::allocations = CountingSource::releases = 0;
  set_large_block_source({CountingSource::allocate, CountingSource::release});
  { const AlignedBuffer a((int64_t{6} << 20) + 4096); }
  EXPECT_EQ(CountingSource::allocations, 1);
  EXPECT_EQ(CountingSource::releases, 0);
  set_large_block_source({});
  EXPECT_EQ(CountingSource::releases, 1);
  EXPECT_TRUE(CountingSource::given.empty());
}

TEST(BufferCacheTest, ASourceWithNothingToGiveFallsBackToTheHeap) {
  CountingSource::allocations = CountingSource::releases = 0;
  CountingSource::empty = true;
  set_large_block_source({CountingSource::allocate, CountingSource::release});
  {
    const AlignedBuffer a((int64_t{7} << 20) + 4096);
    ASSERT_NE(a.data(), nullptr);
    a.data()[0] = 1.f;
  }
  set_large_block_source({});
  CountingSource::empty = false;
  EXPECT_EQ(CountingSource::allocations, 0);
  EXPECT_EQ(CountingSource::releases, 0) << "the heap's block went back to the heap";
}

}  // namespace
}  // namespace tempo
