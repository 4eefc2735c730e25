// Timing of whole training steps (forward, backward, optimizer) on synthetic data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "master/train/trainer.h"

namespace tempo::train {

struct StepBenchmarkOptions {
  std::string model = "resnet18";
  int64_t batch_size = 32;
  int channels = 3;
  int image_size = 32;
  int num_classes = 10;
  int warmup_steps = 2;
  int steps = 10;
  uint64_t seed = 0;
  int threads = 0;
};

struct StepBenchmarkResult {
  std::vector<double> step_seconds;  ///< every timed step
  double median_step_seconds = 0;
  double forward_seconds = 0;  ///< medians of the phases
  double backward_seconds = 0;
  double optimizer_seconds = 0;
  int64_t peak_rss_bytes = 0;  ///< of this process so far (getrusage)
  int64_t parameters = 0;
};

/// Times `steps` SGD steps after `warmup_steps` untimed ones, on one fixed random batch.
StepBenchmarkResult run_step_benchmark(const StepBenchmarkOptions& o,
                                       const ComputeAssigner& assign_compute = {});

/// Peak resident set size of this process in bytes.
int64_t peak_rss_bytes();

}  // namespace tempo::train
