// The training loop of the master: data, model, optimizer, evaluation, checkpoints, metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "master/data/data_loader.h"
#include "master/nn/module.h"
#include "master/optim/lr_schedule.h"
#include "master/optim/optimizer.h"
#include "master/train/train_options.h"

namespace tempo::train {

/// What a run reports at the end (the CLI prints it as its last line of stdout).
struct TrainSummary {
  double test_accuracy = 0;
  double test_loss = 0;
  double train_loss = 0;  ///< mean over the last epoch's steps
  double train_accuracy = 0;
  int64_t steps = 0;  ///< optimizer steps taken in total (resumed runs included)
  int epochs_done = 0;
  double seconds = 0;  ///< wall time of this invocation
  bool stopped_early = false;
};

/// Progress events, for a progress bar or log lines.
struct TrainObserver {
  std::function<void(int epoch, int64_t step_in_epoch, int64_t steps_per_epoch, double loss,
                     double images_per_second)>
      on_step;
  std::function<void(int epoch, double test_accuracy, double test_loss, double train_loss)>
      on_epoch;
  std::function<void(const std::string& message)> on_message;
  /// Before each training step: its number in the whole run (from 1) and the run's step count.
  std::function<void(int64_t step, int64_t total_steps)> before_step;
  /// Before each evaluation pass over the test split.
  std::function<void()> before_evaluation;
};

/// Sets where each layer's products run (the offload policy). Called once on the built model, with
/// the shape of one training batch; plain mode needs none.
using ComputeAssigner = std::function<void(nn::Module& model, const Shape& batch_shape)>;

class Trainer {
 public:
  explicit Trainer(TrainOptions options, TrainObserver observer = {},
                   ComputeAssigner assign_compute = {});
  ~Trainer();

  /// Trains for the configured epochs (resuming if asked) and evaluates after each epoch.
  TrainSummary run();

  nn::Module& model() { return *model_; }
  /// Accuracy and mean loss of the current model on the test split.
  std::pair<double, double> evaluate();

 private:
  void build();
  void save(const std::string& why);
  void restore();

  TrainOptions options_;
  TrainObserver observer_;
  ComputeAssigner assign_compute_;
  std::unique_ptr<data::DataLoader> train_loader_, test_loader_;
  std::unique_ptr<nn::Module> model_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::LrSchedule> schedule_;
  Rng model_rng_;  ///< initialisation, then dropout
  int64_t step_ = 0;
  int epoch_ = 0;  ///< the epoch in progress (0-based)
};

/// Picks the input size a model wants: 32 for resnet*/vit* (so 28x28 data is padded), else native.
int default_image_size(const std::string& model, int dataset_size);

}  // namespace tempo::train
