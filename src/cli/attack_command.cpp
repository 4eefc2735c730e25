// `tempo attack`: replays a recorded worker view and measures what a worker could steal
// (PROTOCOL.md section 6; docs/privacy.md).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "master/attack/attack_runner.h"
#include "master/core/blas.h"

namespace tempo::cli {

Command add_attack_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "attack",
      "Attack a recorded worker view (tempo train --mode tempo --record-view DIR) as the model "
      "owner's audit: direct use of blinded weights, scale removal and permutation alignment, "
      "theft by fine-tuning, input reconstruction. Prints one JSON line");
  auto o = std::make_shared<attack::AttackOptions>();
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--view", o->view, "The recorded view directory")->required();
  cmd->add_option("--model", o->model, "The architecture the victim trained")
      ->capture_default_str();
  cmd->add_option("--dataset", o->dataset, "fashion-mnist | cifar10 | synthetic")
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (as for train)");
  cmd->add_option("--image-size", o->image_size, "As given to train (0: the same default)");
  cmd->add_option("--limit-train", o->limit_train,
                  "The victim trained on the first N samples: the candidates attack 4 is scored "
                  "against (0: all)");
  cmd->add_option("--limit-test", o->limit_test, "Evaluate on the first N test samples (0: all)");
  cmd->add_option("--batch-size", o->batch_size, "Batch size of the attacker's training")
      ->capture_default_str();
  cmd->add_option("--finetune-steps", o->finetune_steps,
                  "Steps of each fine-tuning and from-scratch run (attack 3)")
      ->capture_default_str();
  cmd->add_option("--finetune-lr", o->finetune_lr, "Peak learning rate of those runs")
      ->capture_default_str();
  cmd->add_option("--finetune-optimizer", o->finetune_optimizer,
                  "Optimizer of those runs: sgd (momentum 0.9) or adamw (weight decay 0.05)")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  cmd->add_option("--label-fraction", o->label_fractions,
                  "Labelled fractions of the training split for attack 3 (repeatable; the first "
                  "fills finetune_accuracy/scratch_accuracy)")
      ->capture_default_str();
  cmd->add_flag("--skip-finetune", o->skip_finetune, "Skip attack 3");
  cmd->add_option("--png", o->png_path, "Write attack 4 examples (original | estimate) here");
  cmd->add_option("--seed", o->seed, "The attacker's initialisation and shuffling")
      ->capture_default_str();
  cmd->add_option("--threads", *threads, "CPU threads (0: every core)");
  return {cmd, [o, threads] {
            blas::set_num_threads(*threads);
            const attack::AttackReport r = attack::run_attacks(
                *o, [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
            std::printf("%s\n", r.to_json().dump().c_str());
            return 0;
          }};
}

}  // namespace tempo::cli
