#include "master/offload/batch_rows.h"

#include <cstring>
#include <stdexcept>

namespace tempo::offload {

namespace {

Shape with_rows(const Shape& s, int64_t rows) {
  Shape out = s;
  out[0] = rows;
  return out;
}

int64_t row_elements(const Tensor& t) { return t.dim(0) ? t.numel() / t.dim(0) : 0; }

}  // namespace

Tensor rows_of(const Tensor& t, int64_t begin, int64_t end) {
  if (t.rank() < 1 || begin < 0 || end < begin || end > t.dim(0))
    throw std::out_of_range("rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a tensor of shape " + t.shape().to_string());
  Tensor out(with_rows(t.shape(), end - begin));
  const int64_t row = row_elements(t);
  std::memcpy(out.data(), t.data() + begin * row, static_cast<size_t>(out.numel()) * sizeof(float));
  return out;
}

Tensor concat_rows(const std::vector<Tensor>& pieces) {
  if (pieces.empty()) throw std::invalid_argument("concat_rows of no tensors");
  if (pieces.size() == 1) return pieces.front();
  int64_t rows = 0;
  for (const Tensor& p : pieces) {
    if (p.rank() != pieces.front().rank() ||
        with_rows(p.shape(), 1) != with_rows(pieces.front().shape(), 1))
      throw std::invalid_argument("concat_rows: shape " + p.shape().to_string() +
                                  " does not stack with " + pieces.front().shape().to_string());
    rows += p.dim(0);
  }
  Tensor out(with_rows(pieces.front().shape(), rows));
  float* at = out.data();
  for (const Tensor& p : pieces) {
    std::memcpy(at, p.data(), static_cast<size_t>(p.numel()) * sizeof(float));
    at += p.numel();
  }
  return out;
}

}  // namespace tempo::offload
