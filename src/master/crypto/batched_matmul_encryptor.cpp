#include "master/crypto/batched_matmul_encryptor.h"

#include <omp.h>

#include <span>
#include <stdexcept>
#include <string>

#include "master/core/thread_team.h"
#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
using Axes = MatrixAxes;

/// Blinds every entry of t [batch, rows, cols]: blinded entry beta is plaintext entry
/// batch.perm[beta] under the axes pick(beta).
template <typename PickAxes>
BlindedTensor blind_batched(const Tensor& t, const BatchedMatmulKey& key, PickAxes pick,
                            const char* what) {
  const int64_t batch = key.batch.size();
  if (t.rank() != 3 || t.dim(0) != batch || static_cast<int64_t>(key.entries.size()) != batch)
    throw std::invalid_argument(std::string(what) + ": tensor " + t.shape().to_string() +
                                " does not fit a key of batch " + std::to_string(batch));
  const int64_t rows = t.dim(1), cols = t.dim(2), plane = rows * cols;
  for (int64_t beta = 0; beta < batch; ++beta) {
    const Axes ax = pick(beta);
    if (ax.rows->size() != rows || ax.cols->size() != cols)
      throw std::invalid_argument(std::string(what) + ": tensor " + t.shape().to_string() +
                                  " does not fit the key's dimensions");
  }
  BlindedTensor out = BlindedTensor::allocate(t.shape());
  // Many small entries (attention heads): parallel over entries; few large ones: inside each.
  const bool outer = batch >= omp_get_max_threads() && !omp_in_parallel();
  auto blind_entries = [&](int64_t first, int64_t step) {
    GatherMap rows_map, cols_map;  // reused across this thread's entries: no allocation per head
    for (int64_t beta = first; beta < batch; beta += step) {
      const Axes ax = pick(beta);
      rows_map.set_encrypt(*ax.rows, ax.row_power);
      cols_map.set_encrypt(*ax.cols, ax.col_power);
      permute_scale(t.data() + key.batch.perm()[static_cast<size_t>(beta)] * plane,
                    out.mutable_data() + beta * plane, 1, rows_map, cols_map);
    }
  };
  run_on_team(outer, blind_entries);
  return out;
}

}  // namespace

BlindedTensor BatchedMatmulEncryptor::encrypt_a(const Tensor& a, bool trans_a) const {
  return blind_batched(
      a, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return trans_a ? Axes{&e.k, ScalePower::kScale, &e.m, ScalePower::kScale}
                       : Axes{&e.m, ScalePower::kScale, &e.k, ScalePower::kScale};
      },
      "BatchedMatmulEncryptor::encrypt_a");
}

BlindedTensor BatchedMatmulEncryptor::encrypt_b(const Tensor& b, bool trans_b) const {
  return blind_batched(
      b, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return trans_b ? Axes{&e.n, ScalePower::kScale, &e.k, ScalePower::kInverse}
                       : Axes{&e.k, ScalePower::kInverse, &e.n, ScalePower::kScale};
      },
      "BatchedMatmulEncryptor::encrypt_b");
}

BlindedTensor BatchedMatmulEncryptor::encrypt_grad_for_da(const Tensor& dc,
                                                          std::span<const DimKey> da_rows) const {
  const char* what = "BatchedMatmulEncryptor::encrypt_grad_for_da";
  expect_one_key_per_entry(da_rows, key_, what);
  return blind_batched(
      dc, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return Axes{&da_rows[static_cast<size_t>(beta)], ScalePower::kScale, &e.n,
                    ScalePower::kInverse};
      },
      what);
}

BlindedTensor BatchedMatmulEncryptor::encrypt_grad_for_db(const Tensor& dc,
                                                          std::span<const DimKey> db_cols) const {
  const char* what = "BatchedMatmulEncryptor::encrypt_grad_for_db";
  expect_one_key_per_entry(db_cols, key_, what);
  return blind_batched(
      dc, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return Axes{&e.m, ScalePower::kInverse, &db_cols[static_cast<size_t>(beta)],
                    ScalePower::kScale};
      },
      what);
}

}  // namespace tempo::crypto
