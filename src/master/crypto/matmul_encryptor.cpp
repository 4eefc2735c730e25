#include "master/crypto/matmul_encryptor.h"

#include <stdexcept>

#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
void expect_rank2(const Tensor& t, const char* what) {
  if (t.rank() != 2)
    throw std::invalid_argument(std::string(what) + ": need a matrix, got " +
                                t.shape().to_string());
}
}  // namespace

BlindedTensor MatmulEncryptor::encrypt_a(const Tensor& a, const RowProjection* projection) const {
  const char* what = "MatmulEncryptor::encrypt_a";
  expect_rank2(a, what);
  return blind(a, GatherMap::encrypt(key_.m, ScalePower::kScale),
               GatherMap::encrypt(key_.k, ScalePower::kScale), what, projection);
}

BlindedTensor MatmulEncryptor::encrypt_b(const Tensor& b) const {
  const char* what = "MatmulEncryptor::encrypt_b";
  expect_rank2(b, what);
  return blind(b, GatherMap::encrypt(key_.k, ScalePower::kInverse),
               GatherMap::encrypt(key_.n, ScalePower::kScale), what);
}

BlindedTensor MatmulEncryptor::encrypt_grad_for_da(const Tensor& dc, const DimKey& da_rows) const {
  const char* what = "MatmulEncryptor::encrypt_grad_for_da";
  expect_rank2(dc, what);
  if (da_rows.size() != key_.m.size())
    throw std::invalid_argument(std::string(what) + ": row key size differs from m");
  return blind(dc, GatherMap::encrypt(da_rows, ScalePower::kScale),
               GatherMap::encrypt(key_.n, ScalePower::kInverse), what);
}

BlindedTensor MatmulEncryptor::encrypt_grad_for_db(const Tensor& dc, const DimKey& db_cols) const {
  const char* what = "MatmulEncryptor::encrypt_grad_for_db";
  expect_rank2(dc, what);
  if (db_cols.size() != key_.n.size())
    throw std::invalid_argument(std::string(what) + ": column key size differs from n");
  return blind(dc, GatherMap::encrypt(key_.m, ScalePower::kInverse),
               GatherMap::encrypt(db_cols, ScalePower::kScale), what);
}

std::pair<BlindedTensor, BlindedTensor> MatmulEncryptor::encrypt_grads(
    const Tensor& dc, const DimKey& da_rows, const DimKey& db_cols, const RowProjection* project_da,
    const RowProjection* project_db) const {
  const char* what = "MatmulEncryptor::encrypt_grads";
  expect_rank2(dc, what);
  if (da_rows.size() != key_.m.size() || db_cols.size() != key_.n.size())
    throw std::invalid_argument(std::string(what) + ": gradient key sizes differ from m, n");
  return blind_pair(dc, GatherMap::encrypt(da_rows, ScalePower::kScale),
                    GatherMap::encrypt(key_.n, ScalePower::kInverse),
                    GatherMap::encrypt(key_.m, ScalePower::kInverse),
                    GatherMap::encrypt(db_cols, ScalePower::kScale), what, project_da, project_db);
}

}  // namespace tempo::crypto
