// `tempo train`: train a model, evaluate it after each epoch, print a JSON summary last.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/record_view_steps.h"
#include "cli/train_flags.h"
#include "master/train/trainer.h"

namespace tempo::cli {

Command add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train a model. Human-readable progress goes to stderr; the last line of stdout is a JSON "
      "summary with test_accuracy, train_loss, steps and seconds.");
  auto o = std::make_shared<train::TrainOptions>();
  auto flags = std::make_shared<OffloadFlags>();
  add_train_flags(*cmd, *o);
  add_sealed_train_flags(*cmd, *o);
  cmd->add_option("--epochs", o->epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--metrics-out", o->metrics_out,
                  "Write per-step and per-epoch metrics to this file as JSON lines");
  cmd->add_option("--checkpoint-dir", o->checkpoint_dir,
                  "Write DIR/last.ckpt atomically after every epoch");
  cmd->add_flag("--resume", o->resume, "Continue from DIR/last.ckpt of --checkpoint-dir");
  cmd->add_option("--stop-after-steps", o->stop_after_steps,
                  "Stop after N steps of this invocation, with a checkpoint (resume later)");
  cmd->add_option("--log-every", o->log_every,
                  "Steps between log lines when stderr is not a terminal")
      ->capture_default_str();
  add_offload_flags(*cmd, *flags);
  cmd->add_option("--record-view-steps", flags->record_view_steps,
                  "Which training steps --record-view keeps: all (and evaluation passes), last, N, "
                  "or A-B (counted from 1 over the run)")
      ->check([](const std::string& spec) {
        try {
          RecordViewSteps::parse(spec);
          return std::string();
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
      })
      ->capture_default_str();
  return {cmd, [o, flags] {
            Progress progress(o->log_every);
            train::TrainObserver obs;
            obs.on_step = [&](int epoch, int64_t step, int64_t steps, double loss, double ips) {
              progress.step(epoch, o->epochs, step, steps, loss, ips);
            };
            obs.on_epoch = [&](int epoch, double acc, double test_loss, double train_loss) {
              progress.epoch(epoch, o->epochs, acc, test_loss, train_loss);
            };
            obs.on_message = [&](const std::string& m) { progress.message(m); };
            auto session = make_compute_session(*o, *flags, progress);
            obs.before_step = session.before_step;
            obs.before_evaluation = session.before_evaluation;
            train::Trainer trainer(*o, obs, session.assigner);
            const train::TrainSummary s = trainer.run();
            nlohmann::json summary = {{"model", o->model},
                                      {"dataset", o->dataset},
                                      {"mode", o->mode},
                                      {"test_accuracy", s.test_accuracy},
                                      {"test_loss", s.test_loss},
                                      {"train_loss", s.train_loss},
                                      {"train_accuracy", s.train_accuracy},
                                      {"steps", s.steps},
                                      {"epochs", s.epochs_done},
                                      {"seconds", s.seconds},
                                      {"stopped_early", s.stopped_early}};
            session.add_to_summary(summary);
            std::printf("%s\n", summary.dump().c_str());
            return 0;
          }};
}

}  // namespace tempo::cli
