#include "common/aligned_buffer.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace tempo {

namespace {
constexpr size_t kAlignment = 64;
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
}  // namespace

AlignedBuffer::AlignedBuffer(int64_t n) : size_(n) {
  if (n < 0) throw std::bad_alloc();
  if (n == 0) return;
  size_t bytes = static_cast<size_t>(n) * sizeof(float);
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, bytes);
  if (!p) throw std::bad_alloc();
  data_ = std::shared_ptr<float[]>(static_cast<float*>(p), FreeDeleter{});
}

AlignedBuffer AlignedBuffer::copy_of(const float* src, int64_t n) {
  AlignedBuffer b(n);
  if (n > 0) std::memcpy(b.data(), src, static_cast<size_t>(n) * sizeof(float));
  return b;
}

}  // namespace tempo
