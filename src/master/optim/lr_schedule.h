// Learning-rate schedules: the learning rate as a function of the optimizer step.
#pragma once

#include <cstdint>
#include <string>

namespace tempo::optim {

enum class LrScheduleKind { kConstant, kStep, kCosine };

/// Parses "constant", "step" or "cosine"; throws std::invalid_argument otherwise.
LrScheduleKind parse_lr_schedule_kind(const std::string& name);
const char* to_string(LrScheduleKind kind);

/// What the command line sets (--lr, --lr-schedule, --warmup-steps, --lr-step-size, --lr-gamma).
struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double base_lr = 0.1;
  /// Steps of linear warm-up: lr_at(s) = lr(s)·(s+1)/warmup_steps for s < warmup_steps.
  int64_t warmup_steps = 0;
  /// kStep: multiply by `gamma` every `step_size` periods of `steps_per_epoch` steps (so
  /// step_size counts epochs when steps_per_epoch is set and steps when it is 1).
  int64_t step_size = 30;
  double gamma = 0.1;
  int64_t steps_per_epoch = 1;
  /// kCosine: total number of steps of the run, and the floor reached at its end.
  int64_t total_steps = 0;
  double min_lr = 0.0;
};

/// lr_at(step) for step = 0, 1, ... (the step about to be taken).
///
/// Step decay counts from step 0, warm-up included, so decays happen at the same epochs with or
/// without warm-up (as in Goyal et al., "Accurate, Large Minibatch SGD"). Cosine annealing runs
/// from the end of warm-up (base_lr) to total_steps (min_lr) and stays at min_lr afterwards.
class LrSchedule {
 public:
  /// Throws std::invalid_argument on an inconsistent configuration (e.g. cosine without
  /// total_steps, step_size < 1, negative rates).
  explicit LrSchedule(const LrScheduleConfig& config);
  double lr_at(int64_t step) const;
  const LrScheduleConfig& config() const { return config_; }

 private:
  double main_lr(int64_t step) const;
  LrScheduleConfig config_;
};

}  // namespace tempo::optim
