// Checks of offloaded channel-mode convolutions by random projection (docs/integrity.md).
#pragma once

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"
#include "master/integrity/check_outcome.h"
#include "master/integrity/error_bound.h"

namespace tempo::integrity {

/// Y' = conv(X', W'): X' [N,C,H,W], W' [O,C,kh,kw], Y' [N,O,H',W']. Per round, ±1 vectors a (over
/// N) and b (over O) reduce the check to ONE single-image, single-filter convolution in the TEE:
///   Σ_n a_n Σ_o b_o Y'[n,o] ≈ conv(Σ_n a_n X'[n], Σ_o b_o W'[o])      (each of the H'·W' values)
/// with the tolerance of a length C·kh·kw dot product on the absolute values. An entry off by
/// more than twice its tolerance passes a round with probability at most 3/4 (a bilinear form).
CheckOutcome check_conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                const protocol::ConvParams& conv, const BlindedTensor& y,
                                int rounds, Precision precision = Precision::kFp32);

/// dX' = conv_backward_data(dY', W') [N,C,H,W]: projections over N (of dY') and C (of W'), then
/// one single-image, single-channel transposed convolution:
///   Σ_n a_n Σ_c b_c dX'[n,c] ≈ conv_transpose(Σ_n a_n dY'[n], Σ_c b_c W'[:,c]).
CheckOutcome check_conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                      const protocol::ConvParams& conv, const BlindedTensor& dx,
                                      int rounds, Precision precision = Precision::kFp32);

/// dW' = conv_backward_weights(X', dY') [O,C,kh,kw]: projections over O (of dY') and C (of X'),
/// then one single-channel correlation summed over the batch:
///   Σ_o b_o Σ_c a_c dW'[o,c] ≈ Σ_n corr(Σ_c a_c X'[n,c], Σ_o b_o dY'[n,o]).
CheckOutcome check_conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                         const protocol::ConvParams& conv, const BlindedTensor& dw,
                                         int rounds, Precision precision = Precision::kFp32);

}  // namespace tempo::integrity
