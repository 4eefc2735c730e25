#include "common/worker_protocol.h"

namespace tempo::protocol {

const char* op_name(Op op) {
  switch (op) {
    case Op::kMatMul:
      return "matmul";
    case Op::kBatchedMatMul:
      return "batched_matmul";
    case Op::kConvForward:
      return "conv_forward";
    case Op::kConvBackwardData:
      return "conv_backward_data";
    case Op::kConvBackwardWeights:
      return "conv_backward_weights";
    case Op::kFree:
      return "free";
  }
  return "unknown";
}

}  // namespace tempo::protocol
