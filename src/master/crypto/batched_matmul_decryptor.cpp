#include "master/crypto/batched_matmul_decryptor.h"

#include <omp.h>

#include <span>
#include <stdexcept>
#include <string>

#include "master/core/thread_team.h"
#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
/// Unblinds every entry of c [batch, rows, cols]: plaintext entry b is blinded entry
/// beta = batch.inv_perm[b] under the (decryption) axes pick(beta).
template <typename PickAxes>
Tensor unblind_batched(const BlindedTensor& c, const BatchedMatmulKey& key, PickAxes pick,
                       const std::string& what, const RowProjection* projection) {
  const int64_t batch = key.batch.size();
  bool fits =
      c.rank() == 3 && c.dim(0) == batch && static_cast<int64_t>(key.entries.size()) == batch;
  for (int64_t beta = 0; fits && beta < batch; ++beta) {
    const MatrixAxes ax = pick(beta);
    fits = ax.rows->size() == c.dim(1) && ax.cols->size() == c.dim(2);
  }
  if (!fits)
    throw std::invalid_argument(what + ": result " + c.shape().to_string() +
                                " does not fit the key");
  const int64_t plane = c.dim(1) * c.dim(2);
  Tensor out(c.shape());
  const bool outer = batch >= omp_get_max_threads() && !omp_in_parallel();
  auto unblind_entries = [&](int64_t first, int64_t step) {
    GatherMap rows_map, cols_map;  // reused across this thread's entries: no allocation per head
    for (int64_t b = first; b < batch; b += step) {
      const int32_t beta = key.batch.inv_perm()[static_cast<size_t>(b)];
      const MatrixAxes ax = pick(beta);
      rows_map.set_decrypt(*ax.rows, ax.row_power);
      cols_map.set_decrypt(*ax.cols, ax.col_power);
      const RowProjection entry = projection ? projection->entry(beta, c.dim(2)) : RowProjection{};
      permute_scale(c.data() + beta * plane, out.data() + b * plane, 1, rows_map, cols_map,
                    projection ? &entry : nullptr);
    }
  };
  run_on_team(outer, unblind_entries);
  return out;
}

}  // namespace

Tensor BatchedMatmulDecryptor::decrypt(const BlindedTensor& c,
                                       const RowProjection* projection) const {
  return unblind_batched(
      c, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return MatrixAxes{&e.m, ScalePower::kInverse, &e.n, ScalePower::kInverse};
      },
      "BatchedMatmulDecryptor::decrypt", projection);
}

Tensor BatchedMatmulDecryptor::decrypt_da(const BlindedTensor& da, std::span<const DimKey> da_rows,
                                          const RowProjection* projection) const {
  const std::string what = "BatchedMatmulDecryptor::decrypt_da";
  expect_one_key_per_entry(da_rows, key_, what);
  return unblind_batched(
      da, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        return MatrixAxes{&da_rows[static_cast<size_t>(beta)], ScalePower::kInverse, &e.k,
                          ScalePower::kScale};
      },
      what, projection);
}

Tensor BatchedMatmulDecryptor::decrypt_db(const BlindedTensor& db, std::span<const DimKey> db_cols,
                                          bool trans_b) const {
  const std::string what = "BatchedMatmulDecryptor::decrypt_db";
  expect_one_key_per_entry(db_cols, key_, what);
  return unblind_batched(
      db, key_,
      [&](int64_t beta) {
        const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
        const DimKey* n2 = &db_cols[static_cast<size_t>(beta)];
        return trans_b ? MatrixAxes{n2, ScalePower::kInverse, &e.k, ScalePower::kInverse}
                       : MatrixAxes{&e.k, ScalePower::kInverse, n2, ScalePower::kInverse};
      },
      what, nullptr);
}

}  // namespace tempo::crypto
