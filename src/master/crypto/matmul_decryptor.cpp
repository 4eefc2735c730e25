#include "master/crypto/matmul_decryptor.h"

#include <stdexcept>
#include <string>

#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
void expect_rank2(const BlindedTensor& t, const char* what) {
  if (t.rank() != 2)
    throw std::invalid_argument(std::string(what) + ": need a matrix, got " +
                                t.shape().to_string());
}
}  // namespace

Tensor MatmulDecryptor::decrypt(const BlindedTensor& c, const RowProjection* projection) const {
  const char* what = "MatmulDecryptor::decrypt";
  expect_rank2(c, what);
  return unblind(c, GatherMap::decrypt(key_.m, ScalePower::kInverse),
                 GatherMap::decrypt(key_.n, ScalePower::kInverse), what, projection);
}

Tensor MatmulDecryptor::decrypt_da(const BlindedTensor& da, const DimKey& da_rows,
                                   const RowProjection* projection) const {
  const char* what = "MatmulDecryptor::decrypt_da";
  expect_rank2(da, what);
  return unblind(da, GatherMap::decrypt(da_rows, ScalePower::kInverse),
                 GatherMap::decrypt(key_.k, ScalePower::kScale), what, projection);
}

Tensor MatmulDecryptor::decrypt_db(const BlindedTensor& db, const DimKey& db_cols) const {
  const char* what = "MatmulDecryptor::decrypt_db";
  expect_rank2(db, what);
  return unblind(db, GatherMap::decrypt(key_.k, ScalePower::kInverse),
                 GatherMap::decrypt(db_cols, ScalePower::kInverse), what);
}

}  // namespace tempo::crypto
