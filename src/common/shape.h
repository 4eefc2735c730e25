// Tensor shapes, shared by the trusted master and the untrusted workers.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace tempo {

/// A tensor shape of rank 0..kMaxRank, stored inline (no allocation).
/// Images are NCHW; a matrix is {rows, cols}.
class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    if (dims.size() > kMaxRank) throw std::invalid_argument("Shape: rank above 6");
    for (int64_t d : dims) push_back(d);
  }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }

  /// Appends a dimension; throws on a negative size or a rank above kMaxRank.
  void push_back(int64_t d) {
    if (rank_ == kMaxRank) throw std::invalid_argument("Shape: rank above 6");
    if (d < 0) throw std::invalid_argument("Shape: negative dimension " + std::to_string(d));
    dims_[static_cast<size_t>(rank_++)] = d;
  }

  /// Product of the dimensions (1 for rank 0). Throws if it would overflow int64.
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) {
      if (__builtin_mul_overflow(n, dims_[static_cast<size_t>(i)], &n))
        throw std::overflow_error("Shape: element count overflows: " + to_string());
    }
    return n;
  }

  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[static_cast<size_t>(i)] != o.dims_[static_cast<size_t>(i)]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }

  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<size_t>(i)]);
    }
    return s + "]";
  }

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace tempo
