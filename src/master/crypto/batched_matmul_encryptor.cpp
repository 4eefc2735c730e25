#include "master/crypto/batched_matmul_encryptor.h"

#include <omp.h>

#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "master/core/thread_team.h"
#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
using Axes = MatrixAxes;

/// Checks that t [batch, rows, cols] fits the key and the axes pick(beta) of every entry; returns
/// {rows, cols}.
template <typename PickAxes>
std::pair<int64_t, int64_t> entry_extents(const Tensor& t, const BatchedMatmulKey& key,
                                          PickAxes pick, const char* what) {
  const int64_t batch = key.batch.size();
  if (t.rank() != 3 || t.dim(0) != batch || static_cast<int64_t>(key.entries.size()) != batch)
    throw std::invalid_argument(std::string(what) + ": tensor " + t.shape().to_string() +
                                " does not fit a key of batch " + std::to_string(batch));
  const int64_t rows = t.dim(1), cols = t.dim(2);
  for (int64_t beta = 0; beta < batch; ++beta) {
    const Axes ax = pick(beta);
    if (ax.rows->size() != rows || ax.cols->size() != cols)
      throw std::invalid_argument(std::string(what) + ": tensor " + t.shape().to_string() +
                                  " does not fit the key's dimensions");
  }
  return {rows, cols};
}

/// Many small entries (attention heads): threads over entries; few large ones: inside each.
bool threads_over_entries(int64_t batch) {
  return batch >= omp_get_max_threads() && !omp_in_parallel();
}

/// Entry beta's part of a batched RowProjection (null stays null).
const RowProjection* entry_of(const RowProjection* p, int64_t beta, int64_t cols,
                              RowProjection& storage) {
  if (p == nullptr) return nullptr;
  storage = p->entry(beta, cols);
  return &storage;
}

/// Blinds every entry of t [batch, rows, cols]: blinded entry beta is plaintext entry
/// batch.perm[beta] under the axes pick(beta); `projection` (may be null) projects the rows of
/// every blinded entry as they are written (RowProjection::entry).
template <typename PickAxes>
BlindedTensor blind_batched(const Tensor& t, const BatchedMatmulKey& key, PickAxes pick,
                            const char* what, const RowProjection* projection) {
  const std::pair<int64_t, int64_t> extents = entry_extents(t, key, pick, what);
  const int64_t rows = extents.first, cols = extents.second;
  const int64_t batch = key.batch.size(), plane = rows * cols;
  BlindedTensor out = BlindedTensor::allocate(t.shape());
  auto blind_entries = [&](int64_t first, int64_t step) {
    GatherMap rows_map, cols_map;  // reused across this thread's entries: no allocation per head
    RowProjection entry;
    for (int64_t beta = first; beta < batch; beta += step) {
      const Axes ax = pick(beta);
      rows_map.set_encrypt(*ax.rows, ax.row_power);
      cols_map.set_encrypt(*ax.cols, ax.col_power);
      permute_scale(t.data() + key.batch.perm()[static_cast<size_t>(beta)] * plane,
                    out.mutable_data() + beta * plane, 1, rows_map, cols_map, nullptr,
                    entry_of(projection, beta, cols, entry));
    }
  };
  run_on_team(threads_over_entries(batch), blind_entries);
  return out;
}

}  // namespace

namespace {
Axes a_axes(const MatmulKey& e, bool trans_a) {
  return trans_a ? Axes{&e.k, ScalePower::kScale, &e.m, ScalePower::kScale}
                 : Axes{&e.m, ScalePower::kScale, &e.k, ScalePower::kScale};
}
Axes b_axes(const MatmulKey& e, bool trans_b) {
  return trans_b ? Axes{&e.n, ScalePower::kScale, &e.k, ScalePower::kInverse}
                 : Axes{&e.k, ScalePower::kInverse, &e.n, ScalePower::kScale};
}
Axes da_axes(const MatmulKey& e, const DimKey& da_rows) {
  return {&da_rows, ScalePower::kScale, &e.n, ScalePower::kInverse};
}
Axes db_axes(const MatmulKey& e, const DimKey& db_cols) {
  return {&e.m, ScalePower::kInverse, &db_cols, ScalePower::kScale};
}
}  // namespace

BlindedTensor BatchedMatmulEncryptor::encrypt_a(const Tensor& a, bool trans_a,
                                                const RowProjection* projection) const {
  return blind_batched(
      a, key_,
      [&](int64_t beta) { return a_axes(key_.entries[static_cast<size_t>(beta)], trans_a); },
      "BatchedMatmulEncryptor::encrypt_a", projection);
}

BlindedTensor BatchedMatmulEncryptor::encrypt_b(const Tensor& b, bool trans_b,
                                                const RowProjection* projection) const {
  return blind_batched(
      b, key_,
      [&](int64_t beta) { return b_axes(key_.entries[static_cast<size_t>(beta)], trans_b); },
      "BatchedMatmulEncryptor::encrypt_b", projection);
}

BlindedTensor BatchedMatmulEncryptor::encrypt_grad_for_da(const Tensor& dc,
                                                          std::span<const DimKey> da_rows,
                                                          const RowProjection* projection) const {
  const char* what = "BatchedMatmulEncryptor::encrypt_grad_for_da";
  expect_one_key_per_entry(da_rows, key_, what);
  return blind_batched(
      dc, key_,
      [&](int64_t beta) {
        const auto e = static_cast<size_t>(beta);
        return da_axes(key_.entries[e], da_rows[e]);
      },
      what, projection);
}

BlindedTensor BatchedMatmulEncryptor::encrypt_grad_for_db(const Tensor& dc,
                                                          std::span<const DimKey> db_cols,
                                                          const RowProjection* projection) const {
  const char* what = "BatchedMatmulEncryptor::encrypt_grad_for_db";
  expect_one_key_per_entry(db_cols, key_, what);
  return blind_batched(
      dc, key_,
      [&](int64_t beta) {
        const auto e = static_cast<size_t>(beta);
        return db_axes(key_.entries[e], db_cols[e]);
      },
      what, projection);
}

std::pair<BlindedTensor, BlindedTensor> BatchedMatmulEncryptor::encrypt_grads(
    const Tensor& dc, std::span<const DimKey> da_rows, std::span<const DimKey> db_cols,
    const RowProjection* project_da, const RowProjection* project_db) const {
  const char* what = "BatchedMatmulEncryptor::encrypt_grads";
  expect_one_key_per_entry(da_rows, key_, what);
  expect_one_key_per_entry(db_cols, key_, what);
  const auto e = [&](int64_t beta) { return static_cast<size_t>(beta); };
  const std::pair<int64_t, int64_t> extents = entry_extents(
      dc, key_, [&](int64_t beta) { return da_axes(key_.entries[e(beta)], da_rows[e(beta)]); },
      what);
  const int64_t cols = extents.second;
  entry_extents(
      dc, key_, [&](int64_t beta) { return db_axes(key_.entries[e(beta)], db_cols[e(beta)]); },
      what);
  const int64_t batch = key_.batch.size(), plane = extents.first * cols;
  std::pair<BlindedTensor, BlindedTensor> out{BlindedTensor::allocate(dc.shape()),
                                              BlindedTensor::allocate(dc.shape())};
  auto blind_entries = [&](int64_t first, int64_t step) {
    GatherMap rows1, cols1, rows2, cols2;
    RowProjection entry1, entry2;
    for (int64_t beta = first; beta < batch; beta += step) {
      const Axes a1 = da_axes(key_.entries[e(beta)], da_rows[e(beta)]);
      const Axes a2 = db_axes(key_.entries[e(beta)], db_cols[e(beta)]);
      rows1.set_encrypt(*a1.rows, a1.row_power);
      cols1.set_encrypt(*a1.cols, a1.col_power);
      rows2.set_encrypt(*a2.rows, a2.row_power);
      cols2.set_encrypt(*a2.cols, a2.col_power);
      permute_scale_pair(dc.data() + key_.batch.perm()[e(beta)] * plane, rows1, cols1,
                         out.first.mutable_data() + beta * plane, rows2, cols2,
                         out.second.mutable_data() + beta * plane,
                         entry_of(project_da, beta, cols, entry1),
                         entry_of(project_db, beta, cols, entry2));
    }
  };
  run_on_team(threads_over_entries(batch), blind_entries);
  return out;
}

}  // namespace tempo::crypto
