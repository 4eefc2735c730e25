#include "master/integrity/result_check.h"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "master/integrity/conv_check.h"

namespace tempo::integrity {

using protocol::Op;

ResultCheck::ResultCheck(const OperationSpec& spec, const BlindedTensor& a, const BlindedTensor& b,
                         int rounds, Precision precision, const OperandProjection& project_a,
                         const OperandProjection& project_b, std::vector<double> signs,
                         double projection_error)
    : spec_(spec), a_(&a), b_(&b), rounds_(rounds), precision_(precision) {
  if (spec.op == Op::kMatMul || spec.op == Op::kBatchedMatMul)
    product_.emplace(a, b, spec.trans_a, spec.trans_b, rounds, precision, project_a, project_b,
                     std::move(signs), projection_error);
}

CheckOutcome ResultCheck::verify(const BlindedTensor& result) const {
  if (product_) return product_->verify(result);
  if ((spec_.op == Op::kConvBackwardData || spec_.op == Op::kConvBackwardWeights) &&
      result.shape() != spec_.out_shape) {
    CheckOutcome o;
    o.passed = false;
    o.worst_ratio = INFINITY;
    o.reason = "result has shape " + result.shape().to_string() + " instead of " +
               spec_.out_shape.to_string();
    return o;
  }
  switch (spec_.op) {
    case Op::kConvForward:
      return check_conv_forward(*a_, *b_, spec_.conv, result, rounds_, precision_);
    case Op::kConvBackwardData:
      return check_conv_backward_data(*a_, *b_, spec_.conv, result, rounds_, precision_);
    case Op::kConvBackwardWeights:
      return check_conv_backward_weights(*a_, *b_, spec_.conv, result, rounds_, precision_);
    default:
      throw std::logic_error(std::string("ResultCheck: no check for op ") +
                             protocol::op_name(spec_.op));
  }
}

}  // namespace tempo::integrity
