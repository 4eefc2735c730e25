#include "master/crypto/row_projection.h"

namespace tempo::crypto {

TEMPO_BEGIN_AVX512
namespace {
namespace avx512_bodies {
#include "master/crypto/row_sums.inc"
}  // namespace avx512_bodies
}  // namespace
TEMPO_END_AVX512

namespace detail {

template <bool Abs, bool Weighted>
TEMPO_TARGET_AVX512 double row_sum_avx512(const float* row, const double* w, int64_t n) {
  return avx512_bodies::row_sum<simd::Avx512, Abs, Weighted>(row, w, n);
}

template <bool WeightedAbs>
TEMPO_TARGET_AVX512 void row_sum_and_abs_avx512(const float* row, const double* w,
                                                const double* w_abs, int64_t n, double* sum_out,
                                                double* abs_out) {
  avx512_bodies::row_sum_and_abs<simd::Avx512, WeightedAbs>(row, w, w_abs, n, sum_out, abs_out);
}

template double row_sum_avx512<false, false>(const float*, const double*, int64_t);
template double row_sum_avx512<false, true>(const float*, const double*, int64_t);
template double row_sum_avx512<true, false>(const float*, const double*, int64_t);
template double row_sum_avx512<true, true>(const float*, const double*, int64_t);
template void row_sum_and_abs_avx512<false>(const float*, const double*, const double*, int64_t,
                                            double*, double*);
template void row_sum_and_abs_avx512<true>(const float*, const double*, const double*, int64_t,
                                           double*, double*);

}  // namespace detail
}  // namespace tempo::crypto
