// `tempo bench`: median training-step time and peak memory of a model on synthetic data.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "master/train/step_benchmark.h"

namespace tempo::cli {

Command add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench", "Time training steps (forward, backward, SGD) on a fixed synthetic batch");
  auto b = std::make_shared<train::StepBenchmarkOptions>();
  auto o = std::make_shared<train::TrainOptions>();
  auto flags = std::make_shared<OffloadFlags>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--model", b->model, "Model name")->capture_default_str();
  cmd->add_option("--batch-size", b->batch_size, "Samples per step")->capture_default_str();
  cmd->add_option("--steps", b->steps, "Timed steps")->capture_default_str();
  cmd->add_option("--warmup", b->warmup_steps, "Untimed steps first")->capture_default_str();
  cmd->add_option("--channels", b->channels, "Input channels")->capture_default_str();
  cmd->add_option("--image-size", b->image_size, "Input height and width")->capture_default_str();
  cmd->add_option("--threads", b->threads, "CPU threads (0: every core)")->capture_default_str();
  cmd->add_option("--seed", b->seed, "Seed")->capture_default_str();
  cmd->add_option("--mode", o->mode, "plain | tempo")
      ->check(CLI::IsMember({"plain", "tempo"}))
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Last line of stdout: a JSON object with the results");
  add_offload_flags(*cmd, *flags);
  return {cmd, [b, o, json, flags] {
            o->model = b->model;
            o->threads = b->threads;
            Progress progress(1 << 30);
            auto session = make_compute_session(*o, *flags, progress);
            const auto r = train::run_step_benchmark(*b, session.assigner);
            nlohmann::json j = {{"model", b->model},
                                {"mode", o->mode},
                                {"batch_size", b->batch_size},
                                {"steps", b->steps},
                                {"median_step_seconds", r.median_step_seconds},
                                {"forward_seconds", r.forward_seconds},
                                {"backward_seconds", r.backward_seconds},
                                {"optimizer_seconds", r.optimizer_seconds},
                                {"step_seconds", r.step_seconds},
                                {"peak_rss_bytes", r.peak_rss_bytes},
                                {"parameters", r.parameters}};
            session.add_to_summary(j);
            if (*json) {
              std::printf("%s\n", j.dump().c_str());
            } else {
              std::printf(
                  "%s, batch %lld, %s mode: median step %.4f s (forward %.4f, backward "
                  "%.4f, optimizer %.4f), peak RSS %.1f MiB\n",
                  b->model.c_str(), static_cast<long long>(b->batch_size), o->mode.c_str(),
                  r.median_step_seconds, r.forward_seconds, r.backward_seconds, r.optimizer_seconds,
                  double(r.peak_rss_bytes) / (1 << 20));
            }
            return 0;
          }};
}

}  // namespace tempo::cli
