#include "master/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace tempo::optim {

LrScheduleKind parse_lr_schedule_kind(const std::string& name) {
  if (name == "constant") return LrScheduleKind::kConstant;
  if (name == "step") return LrScheduleKind::kStep;
  if (name == "cosine") return LrScheduleKind::kCosine;
  throw std::invalid_argument("unknown learning-rate schedule \"" + name +
                              "\" (expected constant, step or cosine)");
}

const char* to_string(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant:
      return "constant";
    case LrScheduleKind::kStep:
      return "step";
    case LrScheduleKind::kCosine:
      return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(const LrScheduleConfig& c) : config_(c) {
  const auto fail = [](const std::string& why) {
    throw std::invalid_argument("learning-rate schedule: " + why);
  };
  if (!(c.base_lr >= 0)) fail("base learning rate must be >= 0");
  if (c.warmup_steps < 0) fail("warm-up steps must be >= 0");
  if (c.kind == LrScheduleKind::kStep) {
    if (c.step_size < 1) fail("step size must be >= 1");
    if (c.steps_per_epoch < 1) fail("steps per epoch must be >= 1");
    if (!(c.gamma > 0)) fail("gamma must be > 0");
  }
  if (c.kind == LrScheduleKind::kCosine) {
    if (c.total_steps <= c.warmup_steps) fail("cosine needs total steps > warm-up steps");
    if (!(c.min_lr >= 0 && c.min_lr <= c.base_lr)) fail("cosine floor must be in [0, base lr]");
  }
}

double LrSchedule::main_lr(int64_t step) const {
  const LrScheduleConfig& c = config_;
  switch (c.kind) {
    case LrScheduleKind::kConstant:
      return c.base_lr;
    case LrScheduleKind::kStep:
      return c.base_lr *
             std::pow(c.gamma, static_cast<double>(step / (c.step_size * c.steps_per_epoch)));
    case LrScheduleKind::kCosine: {
      const double span = static_cast<double>(c.total_steps - c.warmup_steps);
      const double progress =
          std::clamp(static_cast<double>(step - c.warmup_steps) / span, 0.0, 1.0);
      return c.min_lr +
             (c.base_lr - c.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  return c.base_lr;
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < 0) throw std::invalid_argument("learning-rate schedule: negative step");
  const double lr = main_lr(step);
  if (step < config_.warmup_steps)
    return lr * static_cast<double>(step + 1) / static_cast<double>(config_.warmup_steps);
  return lr;
}

}  // namespace tempo::optim
