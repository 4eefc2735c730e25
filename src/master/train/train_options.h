// Everything `tempo train` can be told, independent of the command-line parser.
#pragma once

#include <cstdint>
#include <string>

namespace tempo::train {

struct TrainOptions {
  // What to train on.
  std::string model = "cnn";
  std::string dataset = "fashion-mnist";
  std::string data_dir;           ///< empty: the dataset's default (Debian's for fashion-mnist)
  int64_t limit_train = 0;        ///< use the first N training samples (0: all)
  int64_t limit_test = 0;         ///< evaluate on the first N test samples (0: all)
  bool augment = false;           ///< random crop (pad 4) + horizontal flip
  int image_size = 0;             ///< pad inputs to this size (0: 32 for resnet/vit, else native)
  std::string sealed_data;        ///< a sealed dataset (.tds) to train on instead of `dataset`
  std::string key_file;           ///< data key: opens sealed_data, seals checkpoints

  // How.
  std::string mode = "plain";     ///< plain (all in the TEE) | tempo (offload blinded products)
  int epochs = 1;
  int64_t batch_size = 64;
  std::string optimizer = "sgd";  ///< sgd | adamw
  double lr = 0.05;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  std::string lr_schedule = "cosine";  ///< constant | step | cosine
  int64_t warmup_steps = 0;
  int64_t lr_step_size = 30;      ///< epochs between decays of the step schedule
  double lr_gamma = 0.1;
  float label_smoothing = 0.0f;
  uint64_t seed = 0;
  int threads = 0;                ///< 0: every core

  // Output.
  std::string metrics_out;        ///< JSON lines, one per step and per evaluation
  std::string checkpoint_dir;     ///< checkpoint after every epoch (and on early stop)
  bool resume = false;            ///< continue from checkpoint_dir/last.ckpt
  int64_t stop_after_steps = 0;   ///< stop (with a checkpoint) after N steps of this invocation
  int64_t log_every = 50;         ///< steps between plain log lines when not on a terminal
};

}  // namespace tempo::train
