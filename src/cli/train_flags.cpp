#include "cli/train_flags.h"

#include <stdexcept>

namespace tempo::cli {

void add_train_flags(CLI::App& cmd, train::TrainOptions& o) {
  cmd.add_option("--model", o.model, "mlp | cnn | resnet18 | resnet50 | vit-tiny | vit-s4")
      ->capture_default_str();
  cmd.add_option("--dataset", o.dataset, "fashion-mnist | cifar10 | synthetic")->capture_default_str();
  cmd.add_option("--data-dir", o.data_dir,
                 "Dataset directory (fashion-mnist default: /usr/share/datasets/fashion-mnist; "
                 "cifar10: the directory with data_batch_*.bin)");
  cmd.add_option("--limit-train", o.limit_train, "Train on the first N samples only (0: all)");
  cmd.add_option("--limit-test", o.limit_test, "Evaluate on the first N test samples only (0: all)");
  cmd.add_flag("--augment", o.augment, "Random crop (padding 4) and horizontal flip");
  cmd.add_option("--image-size", o.image_size,
                 "Pad inputs to this size (0: 32 for resnet*/vit*, else the dataset's)");
  cmd.add_option("--mode", o.mode,
                 "plain: everything in the TEE (the pure-TEE baseline); tempo: offload blinded "
                 "products to workers")
      ->check(CLI::IsMember({"plain", "tempo"}))
      ->capture_default_str();
  cmd.add_option("--batch-size", o.batch_size, "Samples per step")->capture_default_str();
  cmd.add_option("--optimizer", o.optimizer, "sgd | adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  cmd.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  cmd.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  cmd.add_option("--weight-decay", o.weight_decay,
                 "L2 (SGD) or decoupled (AdamW) weight decay; not applied to biases and norms")
      ->capture_default_str();
  cmd.add_option("--lr-schedule", o.lr_schedule, "constant | step | cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))
      ->capture_default_str();
  cmd.add_option("--warmup-steps", o.warmup_steps, "Linear warm-up steps")->capture_default_str();
  cmd.add_option("--lr-step-size", o.lr_step_size, "Epochs between decays (step schedule)")
      ->capture_default_str();
  cmd.add_option("--lr-gamma", o.lr_gamma, "Decay factor (step schedule)")->capture_default_str();
  cmd.add_option("--label-smoothing", o.label_smoothing, "Cross-entropy label smoothing")
      ->capture_default_str();
  cmd.add_option("--seed", o.seed, "Seed of initialisation, shuffling, augmentation, dropout")
      ->capture_default_str();
  cmd.add_option("--threads", o.threads, "CPU threads of the master (0: every core)")
      ->capture_default_str();
}

ComputeSession make_compute_session(const train::TrainOptions& o, Progress& progress) {
  ComputeSession s;
  if (o.mode == "plain") {
    s.add_to_summary = [](nlohmann::json& j) { j["tee"] = "sim"; };
    return s;
  }
  (void)progress;
  throw std::invalid_argument("--mode " + o.mode + " is not available in this build");
}

}  // namespace tempo::cli
