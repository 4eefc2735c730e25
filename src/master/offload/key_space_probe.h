// Measures the key-space metric (PROTOCOL.md section 6) of every offloaded product of a model.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "master/crypto/key_space.h"
#include "master/nn/module.h"
#include "master/offload/offload_policy.h"

namespace tempo::offload {

/// The key-space entries of one layer: one per product it offloads in a forward pass.
struct LayerKeySpace {
  PlacedLayer placement;
  std::vector<crypto::OperationKeySpace> operations;
};

/// Runs one inference forward of `model` on zeros of `input_shape` in the TEE, recording the
/// shapes of each offloaded layer's products and their key-space bits under `policy`. The
/// model's Computes are restored afterwards.
std::vector<LayerKeySpace> probe_key_space(nn::Module& model, const Shape& input_shape,
                                           const std::vector<PlacedLayer>& placement,
                                           const OffloadPolicy& policy);

}  // namespace tempo::offload
