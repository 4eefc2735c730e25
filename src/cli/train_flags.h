// Flags shared by `tempo train`, `tempo eval` and `tempo bench`, and the compute wiring per mode.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/progress.h"
#include "master/train/trainer.h"

namespace tempo::cli {

/// Model, data, optimisation and mode flags.
void add_train_flags(CLI::App& cmd, train::TrainOptions& o);

/// Where the products of a run execute. In plain mode nothing is set up. In tempo mode it owns
/// the workers (the embedded one by default) and the offload engine, and says what it did.
struct ComputeSession {
  train::ComputeAssigner assigner;
  std::function<void(nlohmann::json&)> add_to_summary = [](nlohmann::json&) {};
  std::shared_ptr<void> keep_alive;
};
ComputeSession make_compute_session(const train::TrainOptions& o, Progress& progress);

}  // namespace tempo::cli
