// Runs every attack of PROTOCOL.md section 6 against one recorded worker view.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "master/data/dataset.h"

namespace tempo::attack {

struct AttackOptions {
  std::string view;           ///< view directory (or its view.tvw)
  std::string model = "cnn";  ///< the architecture, which the attacker knows
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  int image_size = 0;       ///< 0: as `tempo train` picks it
  int64_t limit_train = 0;  ///< the victim trained on the first N samples (scoring candidates)
  int64_t limit_test = 0;   ///< evaluate on the first N test samples
  int64_t batch_size = 64;
  /// Attack 3: labelled fractions of the training split, and the SGD budget of each run.
  std::vector<double> label_fractions = {0.01, 0.05};
  int64_t finetune_steps = 300;
  double finetune_lr = 0.05;
  std::string finetune_optimizer = "sgd";  ///< sgd | adamw
  bool skip_finetune = false;
  int max_reconstructions = 16;
  std::string png_path;  ///< attack 4 examples (original | estimate); empty: none
  uint64_t seed = 1;     ///< the attacker's own initialisation and shuffling
  /// Datasets to use instead of loading `dataset` (tests).
  std::shared_ptr<const data::Dataset> train_set, test_set;
};

/// Every number the attacks produce. Accuracies are on the test split, in [0, 1].
struct AttackReport {
  std::vector<std::string> layers;  ///< "path:form" of each offloaded layer found in the view
  int64_t records = 0;
  double init_accuracy = 0;     ///< the attacker's own initialisation (chance reference)
  double direct_accuracy = 0;   ///< attack 1
  double aligned_accuracy = 0;  ///< attack 2 (best aligned variant on the attacker's labels)
  double scaled_accuracy = 0;   ///< attack 2 with scales removed but no permutation linking
  double linked_accuracy = 0;   ///< attack 2 with linking (equals scaled when nothing linked)
  std::string best_recovered;   ///< which model attack 3 fine-tunes
  std::vector<double> fractions, finetune_accuracy, scratch_accuracy;  ///< attack 3
  nlohmann::json link_stats = nlohmann::json::array();
  nlohmann::json unscale_stats = nlohmann::json::array();
  std::string reconstruction_layer, reconstruction_method;
  double reconstruction_psnr = 0, reconstruction_ssim = 0;                  ///< attack 4
  double reconstruction_control_psnr = 0, reconstruction_control_ssim = 0;  ///< shuffled control
  double seconds = 0;

  /// One JSON object with the keys of the project's privacy table.
  nlohmann::json to_json() const;
};

/// Runs attacks 1-4; `log` (may be empty) gets progress lines. Throws std::runtime_error when
/// the view holds no forward product of the model.
AttackReport run_attacks(const AttackOptions& options,
                         const std::function<void(const std::string&)>& log = {});

}  // namespace tempo::attack
