// The subcommands of `tempo`. Each registers itself on the app and runs when selected.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

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

}  // namespace tempo::cli
