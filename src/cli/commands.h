// The subcommands of `tempo`. Each registers itself on the app and runs when selected.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "master/train/train_options.h"

namespace tempo::cli {

/// A registered subcommand: run() is called when the user selected it; returns the exit status.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_train_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_seal_command(CLI::App& app);
Command add_attest_command(CLI::App& app);
Command add_export_command(CLI::App& app);
/// The app-wide --tee option (also accepted after a subcommand); call after adding every command.
void add_tee_option(CLI::App& app);
/// --data FILE.tds and --key-file of `tempo train` (sealed data and sealed checkpoints).
void add_sealed_train_flags(CLI::App& cmd, train::TrainOptions& o);
Command add_worker_command(CLI::App& app);
Command add_attack_command(CLI::App& app);

}  // namespace tempo::cli
