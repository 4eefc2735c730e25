#include "master/crypto/batched_matmul_decryptor.h"

#include <omp.h>

#include <stdexcept>
#include <string>

#include "master/core/thread_team.h"
#include "master/crypto/gather_map.h"

namespace tempo::crypto {

Tensor BatchedMatmulDecryptor::decrypt(const BlindedTensor& c) const {
  const int64_t batch = key_.batch.size();
  const bool fits =
      c.rank() == 3 && c.dim(0) == batch && static_cast<int64_t>(key_.entries.size()) == batch &&
      (batch == 0 ||
       (key_.entries[0].m.size() == c.dim(1) && key_.entries[0].n.size() == c.dim(2)));
  if (!fits)
    throw std::invalid_argument("BatchedMatmulDecryptor::decrypt: result " + c.shape().to_string() +
                                " does not fit the key");
  const int64_t plane = c.dim(1) * c.dim(2);
  Tensor out(c.shape());
  const bool outer = batch >= omp_get_max_threads() && !omp_in_parallel();
  auto unblind_entries = [&](int64_t first, int64_t step) {
    GatherMap rows_map, cols_map;  // reused across this thread's entries: no allocation per head
    for (int64_t b = first; b < batch; b += step) {
      const int32_t beta = key_.batch.inv_perm()[static_cast<size_t>(b)];
      const MatmulKey& e = key_.entries[static_cast<size_t>(beta)];
      rows_map.set_decrypt(e.m, ScalePower::kInverse);
      cols_map.set_decrypt(e.n, ScalePower::kInverse);
      permute_scale(c.data() + beta * plane, out.data() + b * plane, 1, rows_map, cols_map);
    }
  };
  run_on_team(outer, unblind_entries);
  return out;
}

}  // namespace tempo::crypto
