#include "master/crypto/dim_key.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

namespace tempo::crypto {

namespace {
constexpr size_t kWordsPerEntry = 4;  // perm, inv_perm, scale, inv_scale
static_assert(sizeof(int32_t) == 4 && sizeof(float) == 4);

size_t bytes_of(int64_t n) {
  if (n < 0) throw std::invalid_argument("DimKey: negative size " + std::to_string(n));
  return static_cast<size_t>(n) * kWordsPerEntry * 4;
}

std::shared_ptr<std::byte[]> zeroed(size_t bytes) {
  // new std::byte[] implicitly creates the int32_t and float arrays the key reads (C++20).
  return std::shared_ptr<std::byte[]>(new std::byte[std::max<size_t>(bytes, 1)]());
}
}  // namespace

DimKey::DimKey(std::shared_ptr<std::byte[]> storage, std::byte* words, int64_t n)
    : storage_(std::move(storage)),
      perm_(reinterpret_cast<int32_t*>(words)),
      inv_perm_(perm_ + n),
      scale_(reinterpret_cast<float*>(words) + 2 * n),
      inv_scale_(scale_ + n),
      n_(n) {}

DimKey::DimKey(int64_t n) {
  auto storage = zeroed(bytes_of(n));
  std::byte* words = storage.get();
  *this = DimKey(std::move(storage), words, n);
}

std::vector<DimKey> DimKey::allocate_many(std::span<const int64_t> sizes) {
  size_t total = 0;
  for (int64_t n : sizes) total += bytes_of(n);
  auto storage = zeroed(total);
  std::vector<DimKey> keys;
  keys.reserve(sizes.size());
  std::byte* next = storage.get();
  for (int64_t n : sizes) {
    keys.push_back(DimKey(storage, next, n));
    next += bytes_of(n);
  }
  return keys;
}

DimKey::DimKey(const DimKey& other) : DimKey(other.n_) {
  std::copy(other.perm().begin(), other.perm().end(), perm_);
  std::copy(other.inv_perm().begin(), other.inv_perm().end(), inv_perm_);
  std::copy(other.scale().begin(), other.scale().end(), scale_);
  std::copy(other.inv_scale().begin(), other.inv_scale().end(), inv_scale_);
}

DimKey& DimKey::operator=(const DimKey& other) {
  if (this != &other) *this = DimKey(other);
  return *this;
}

bool DimKey::is_valid() const {
  const size_t n = count();
  std::vector<char> seen(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int32_t p = perm_[i];
    if (p < 0 || static_cast<size_t>(p) >= n || seen[static_cast<size_t>(p)]) return false;
    seen[static_cast<size_t>(p)] = 1;
    if (inv_perm_[static_cast<size_t>(p)] != static_cast<int32_t>(i)) return false;
    if (!std::isfinite(scale_[i]) || scale_[i] == 0.0f || !std::isfinite(inv_scale_[i]))
      return false;
    if (std::abs(scale_[i] * inv_scale_[i] - 1.0f) > 1e-6f) return false;
  }
  return true;
}

DimKey DimKey::identity(int64_t n) {
  DimKey k(n);
  std::iota(k.perm_, k.perm_ + n, 0);
  std::iota(k.inv_perm_, k.inv_perm_ + n, 0);
  std::fill(k.scale_, k.scale_ + n, 1.0f);
  std::fill(k.inv_scale_, k.inv_scale_ + n, 1.0f);
  return k;
}

}  // namespace tempo::crypto
