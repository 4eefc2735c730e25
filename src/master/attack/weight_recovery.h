// Turning a layer's recorded blinded weight back into a usable weight (attacks 1 and 2).
#pragma once

#include <cstdint>
#include <vector>

#include "common/view_reader.h"
#include "master/attack/recorded_layers.h"
#include "master/core/tensor.h"

namespace tempo::attack {

/// A layer's weight as input units x output units x g (g = kh·kw for a channel-mode conv, whose
/// input units are channels; 1 otherwise): w[(i·out + o)·g + t]. The attacks work in this form.
struct UnitWeight {
  int64_t in = 0, out = 0, g = 1;
  std::vector<float> w;
  float& at(int64_t i, int64_t o, int64_t t) {
    return w[static_cast<size_t>((i * out + o) * g + t)];
  }
};

/// The blinded input of the same product: rows (samples, or positions in patch mode) x input
/// units x q values (q = H·W in channel mode, else 1): a[(r·units + j)·q + t].
struct UnitInput {
  int64_t rows = 0, units = 0, q = 1;
  std::vector<float> a;
  float at(int64_t r, int64_t j, int64_t t) const {
    return a[static_cast<size_t>((r * units + j) * q + t)];
  }
};

UnitWeight unit_weight(ProductForm form, const Tensor& recorded_weight);
UnitInput unit_input(ProductForm form, const Tensor& recorded_input);
/// Writes `w` into the layer's weight parameter (Linear [in,out], Conv2d [O,C,k,k]) and zeroes
/// its bias (the bias never leaves the TEE: zero is the attacker's best guess).
void install_weight(const RecordedLayer& layer, const UnitWeight& w);

/// What scale removal did, for the report.
struct UnscaleStats {
  int64_t signs_flipped = 0;          ///< input units whose sign came out negative
  int64_t mixed_sign_inputs = 0;      ///< input units of both signs (sign not recoverable)
  double input_exponent_spread = 0;   ///< stddev of the recovered input exponents
  double output_exponent_spread = 0;  ///< stddev of the recovered output exponents
};

/// Removes the scales of MM-obfuscation from a blinded weight as far as the view allows:
///  - input signs: the inner scale s carries a random sign, but a layer's input is non-negative
///    after a ReLU, so where a blinded input unit's values in the same request all share one
///    sign, that sign is sign(s_j) (units of mixed sign, e.g. raw data, are left as they are);
///  - input magnitudes: s_j = ±2^e_j. In the same request input unit j carries 2^e_j (its RMS
///    after removing the row scales by row normalisation) and weight row j carries 2^-e_j; the
///    log-ratio is 2·e_j plus a natural term that varies little between units, so e_j is the
///    rounding of it after subtracting its circular mean (period 2);
///  - output magnitudes: u_o = 2^f_o, rounded from the log column norms the same way (period 1);
///  - the global power of two is set so the weight's norm matches `reference_norm` (the
///    attacker's initialisation: trained weights keep roughly that norm).
/// Permutations are untouched: the result is the true weight with rows and columns permuted.
UnscaleStats unscale(UnitWeight& w, const UnitInput& x, double reference_norm);

/// Power-of-two row scales of a blinded input, recovered by rounding the log row norms about
/// their circular mean: dividing row r by 2^e[r] undoes r_r up to one common factor.
std::vector<int> row_exponents(const UnitInput& x);

}  // namespace tempo::attack
