// The optimizer interface: updates a model's parameters from their accumulated gradients.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "master/core/tensor.h"
#include "master/nn/module.h"

namespace tempo::optim {

/// Everything an optimizer needs to resume exactly where it stopped.
struct OptimizerState {
  /// Scalars: {"type": "AdamW", "step": 123, "lr": 0.001}.
  nlohmann::json scalars;
  /// Per-parameter slots named "<slot>/<parameter path>", e.g. "exp_avg/0.weight".
  std::vector<std::pair<std::string, Tensor>> tensors;
};

/// Base of SGD and AdamW. Holds the parameters it updates (the model must outlive it) and
/// allocates its per-parameter state up front, so the state can be exported at any time.
class Optimizer {
 public:
  /// Throws std::invalid_argument on a null parameter, a repeated name or lr < 0. A parameter
  /// listed twice (tied weights) is kept once, under its first name.
  Optimizer(std::vector<nn::NamedParameter> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "SGD", "AdamW".
  virtual std::string type() const = 0;
  /// One update of every parameter from its gradient (gradients are left as they are).
  void step();
  /// Sets every gradient to zero.
  void zero_grad();

  double lr() const { return lr_; }
  /// The learning rate of the next step() (an LrSchedule calls this before each step).
  void set_lr(double lr) { lr_ = lr; }
  /// Number of step() calls so far (restored by load_state()).
  int64_t steps_taken() const { return steps_; }
  const std::vector<nn::NamedParameter>& params() const { return params_; }

  /// Snapshot of the state. Tensors share storage with the optimizer (no copy): save them before
  /// the next step() or clone them.
  OptimizerState state() const;
  /// Restores a state() of an optimizer of the same type over parameters of the same names and
  /// shapes. Checks everything before changing anything; throws std::runtime_error naming the
  /// missing, unexpected or mismatched entry.
  void load_state(const OptimizerState& s);

 protected:
  /// Names of the per-parameter state slots, e.g. {"exp_avg", "exp_avg_sq"}.
  virtual std::vector<std::string> slot_names() const = 0;
  /// Updates parameter i; `step` is the 1-based index of this update.
  virtual void update(size_t i, int64_t step) = 0;
  /// slots_[s][i] is slot s of parameter i (zero-initialised, same shape as the parameter).
  std::vector<std::vector<Tensor>> slots_;
  std::vector<nn::NamedParameter> params_;

  /// Allocates slots_ for slot_names(); derived constructors call it (virtuals are unavailable
  /// in the base constructor).
  void init_slots();

 private:
  double lr_;
  int64_t steps_ = 0;
};

/// Elements above which the fused update loops run on all cores.
inline constexpr int64_t kParallelUpdateThreshold = 1 << 15;

}  // namespace tempo::optim
