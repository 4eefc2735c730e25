// Which recorded tensors of a worker's view belong to which layer of a known architecture.
#pragma once

#include <string>
#include <vector>

#include "common/view_reader.h"
#include "master/core/tensor.h"
#include "master/nn/module.h"

namespace tempo::attack {

/// How an offloaded layer's forward product appears in a view.
enum class ProductForm {
  kLinear,       ///< matmul X'[N,in] · W'[in,out]
  kPatchConv,    ///< matmul Patches'[M, C·k·k] · W'[O, C·k·k]ᵀ
  kChannelConv,  ///< conv_forward X'[N,C,H,W] with W'[O,C,k,k]
};
const char* to_string(ProductForm form);

/// One forward product of a layer: the records of its blinded input and weight.
struct ForwardRecord {
  size_t input = 0;       ///< index of operand 'a' in the view
  size_t weight = 0;      ///< index of operand 'b'
  bool training = false;  ///< sent with cache handles (a training step), not an evaluation pass
};

/// A product layer of the attacked architecture and its forwards found in the view.
struct RecordedLayer {
  std::string path;  ///< module path, e.g. "conv2"
  nn::Module* module = nullptr;
  ProductForm form = ProductForm::kLinear;
  std::vector<ForwardRecord> forwards;  ///< in view order
  /// The last forward of a training step (falls back to the last forward of any kind).
  const ForwardRecord& last() const;
};

/// Finds the offloaded layers of `model` (the attacker's own instance of the known architecture)
/// in `view`. A forward product is a request whose two operands were both sent inline, with op
/// matmul or conv_forward; its weight operand ('b') is matched to a layer by shape (a Linear's
/// [in,out], a patch conv's [O, C·k·k], a channel conv's [O,C,k,k]), and layers with equal shapes
/// are told apart by the model order of the forward pass (matching proceeds cyclically in that
/// order). Layers with no recorded forward stayed in the TEE and are not returned.
std::vector<RecordedLayer> locate_layers(const ViewReader& view, nn::Module& model);

/// A recorded tensor as a plaintext Tensor (the attacker's working copy).
Tensor load_tensor(const ViewReader& view, size_t index);

}  // namespace tempo::attack
