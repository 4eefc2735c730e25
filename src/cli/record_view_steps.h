// Which training steps `--record-view-steps` records: a whole run's view of resnet18 or vit-tiny
// is tens of gigabytes, while the attacks of PROTOCOL.md section 6 replay one step.
#pragma once

#include <cstdint>
#include <string>

namespace tempo::cli {

/// A set of training steps, numbered from 1 over the whole run (epochs included).
class RecordViewSteps {
 public:
  /// "all" (every step and every evaluation pass), "N", "A-B" (inclusive), or "last" (the last
  /// step of the run). Throws std::invalid_argument with the offending text otherwise.
  static RecordViewSteps parse(const std::string& spec);

  /// Whether `step` (1-based) of a run of `total_steps` is recorded.
  bool contains(int64_t step, int64_t total_steps) const;
  /// Evaluation passes are recorded only with "all": they repeat the forward products of a step.
  bool records_evaluation() const { return all_; }
  bool all() const { return all_; }

 private:
  bool all_ = true;
  bool last_ = false;
  int64_t first_ = 0, final_ = 0;
};

}  // namespace tempo::cli
