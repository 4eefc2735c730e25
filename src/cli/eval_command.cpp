// `tempo eval`: accuracy of a checkpoint on the test split.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "master/train/checkpoint.h"
#include "master/train/trainer.h"

namespace tempo::cli {

Command add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval",
                                 "Evaluate a checkpoint on the test split; prints a JSON line with "
                                 "test_accuracy and test_loss");
  auto path = std::make_shared<std::string>();
  auto o = std::make_shared<train::TrainOptions>();
  auto flags = std::make_shared<OffloadFlags>();
  cmd->add_option("--checkpoint", *path, "A checkpoint written by `tempo train`")->required();
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (as for train)");
  cmd->add_option("--limit-test", o->limit_test, "Evaluate on the first N test samples only");
  cmd->add_option("--mode", o->mode, "plain | tempo")->check(CLI::IsMember({"plain", "tempo"}));
  cmd->add_option("--threads", o->threads, "CPU threads (0: every core)");
  add_offload_flags(*cmd, *flags);
  return {cmd, [path, o, flags] {
            const train::Checkpoint ckpt = train::load_checkpoint(*path);
            const auto& run = ckpt.meta.at("run");
            o->model = run.at("model").get<std::string>();
            o->dataset = run.at("dataset").get<std::string>();
            o->batch_size = run.at("batch_size").get<int64_t>();
            o->seed = run.at("seed").get<uint64_t>();
            o->image_size = run.at("image_size").get<int>();
            Progress progress(1 << 30);
            auto session = make_compute_session(*o, *flags, progress);
            train::Trainer trainer(*o, {}, session.assigner);
            train::restore_model_state(ckpt, trainer.model());
            auto [acc, loss] = trainer.evaluate();
            nlohmann::json j = {{"model", o->model}, {"dataset", o->dataset},
                                {"mode", o->mode},   {"test_accuracy", acc},
                                {"test_loss", loss}, {"step", ckpt.meta.value("step", 0)}};
            session.add_to_summary(j);
            std::printf("%s\n", j.dump().c_str());
            return 0;
          }};
}

}  // namespace tempo::cli
