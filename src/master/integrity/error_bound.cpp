#include "master/integrity/error_bound.h"

#include <stdexcept>

namespace tempo::integrity {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "bf16") return Precision::kBf16;
  throw std::invalid_argument("unknown precision '" + name + "' (valid: fp32, tf32, bf16)");
}

const char* to_string(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
  }
  return "?";
}

std::string precision_refusal(const std::string& declared, Precision accepted) {
  Precision worker;
  try {
    worker = parse_precision(declared);
  } catch (const std::invalid_argument&) {
    return "declares an unknown precision '" + declared + "'";
  }
  if (input_roundoff(worker) <= input_roundoff(accepted)) return "";
  return std::string("computes in ") + to_string(worker) + ", coarser than the " +
         to_string(accepted) + " this master accepts";
}

double input_roundoff(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return 0.0;
    case Precision::kTf32:
      return 0x1p-11;
    case Precision::kBf16:
      return 0x1p-8;
  }
  return 0.0;
}

double dot_relative_bound(int64_t k, Precision p) {
  const double in = 1.0 + input_roundoff(p);
  return in * in * (1.0 + gamma(k, kAccumulationRoundoff)) - 1.0;
}

}  // namespace tempo::integrity
