// Recovering the permutation that links two consecutive offloaded layers (attack 2).
#pragma once

#include <cstdint>
#include <vector>

#include "common/view_reader.h"
#include "master/attack/recorded_layers.h"
#include "master/nn/module.h"

namespace tempo::attack {

/// How layer Q's blinded input units map onto layer P's blinded output units.
struct Link {
  bool linked = false;
  /// unit_of[j]: the unit of P's (blinded-order) output, after the layers between P and Q, that
  /// Q's blinded input unit j is. Q's weight rows reordered by it line up with P's columns.
  std::vector<int64_t> unit_of;
  double mean_correlation = 0;  ///< of the matched unit pairs, over the batch
  double sample_agreement = 0;  ///< fraction of samples kept by the last matching round
  const char* why_not = "";     ///< when !linked
};

/// Links P and Q from one training step of the view (the last one in which both ran), as a
/// worker could: it recomputes P's blinded output Y' from the recorded operands, removes the
/// per-sample power-of-two scales by rounding log row norms, runs the attacker's copies of the
/// layers between P and Q (batch norm with batch statistics, ReLU, pooling, flatten), and then
/// matches that against Q's blinded input, whose samples and units are permuted independently:
/// samples first by their fraction of zeros (exact: zeros survive any scaling), then, in
/// alternating rounds, units by correlation over the matched samples and samples by correlation
/// over the matched units (greedy assignment). Works when P is a Linear or a channel-mode conv
/// and Q a Linear or channel-mode conv, both children of one module below `root` with only
/// modules between them (consecutive layers of a sequential model, or conv1 -> bn1 -> relu ->
/// conv2 inside a residual block; not across a residual add) - in patch mode the worker cannot
/// rebuild P's spatial output, so nothing is linked.
Link link_layers(const ViewReader& view, nn::Module& root, const RecordedLayer& p,
                 const RecordedLayer& q, int rounds = 4);

/// Greedy maximum-score assignment of an n x n score matrix (row-major): repeatedly takes the
/// best remaining (row, column) pair among each row's top candidates; rows left over take the
/// remaining columns in order. Returns col_of[row].
std::vector<int64_t> greedy_assignment(const std::vector<float>& score, int64_t n);

}  // namespace tempo::attack
