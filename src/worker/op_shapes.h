// Shape rules of the worker's operations: what a well-formed request looks like.
#pragma once

#include <cstdint>
#include <string>

#include "common/shape.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// Largest dimension a worker accepts: BLAS takes 32-bit sizes.
inline constexpr int64_t kMaxDim = INT32_MAX;

/// Role names of the operands of `op`, for messages: {"A","B"}, {"X","W"}, {"dY","W"}, {"X","dY"}.
const char* operand_role(protocol::Op op, char which);

/// Checks that every dimension of `s` is in [1, kMaxDim] and that its byte size fits in int64.
/// Returns "" or a message naming `what` and the problem; on success *bytes is the byte size.
std::string check_dims(const Shape& s, const std::string& what, int64_t* bytes);

/// Checks that the shapes of a compute request's operands, its flags, conv parameters and
/// out_shape fit together, and yields the shape of the result. Returns "" on success, else a
/// message that starts with the op's name and names the operand and the problem.
/// `a` and `b` must have passed check_dims.
std::string check_op_shapes(const protocol::Request& r, const Shape& a, const Shape& b,
                            Shape* result);

}  // namespace tempo::worker
