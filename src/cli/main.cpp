// tempo: train and serve neural networks on untrusted GPUs without showing them the model or data.
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/omp_wait_policy.h"
#include "master/nn/compute.h"

int main(int argc, char** argv) {
  // Tensors of 256 KiB and more are recycled by AlignedBuffer's block cache; keep the smaller
  // ones in the heap too rather than trimming it back to the kernel after every step.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);

  CLI::App app{
      "Tempo trains neural networks on untrusted GPU workers without showing them the model or "
      "the data.\nThe master (this process) holds data, weights and keys; workers see only "
      "MM-obfuscated (blinded) products.",
      "tempo"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tempo 0.1.0");
  const std::vector<tempo::cli::Command> commands = {
      tempo::cli::add_train_command(app),  tempo::cli::add_eval_command(app),
      tempo::cli::add_bench_command(app),  tempo::cli::add_info_command(app),
      tempo::cli::add_worker_command(app), tempo::cli::add_seal_command(app),
      tempo::cli::add_attest_command(app), tempo::cli::add_export_command(app),
      tempo::cli::add_attack_command(app),
  };
  tempo::cli::add_tee_option(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (const std::string why = tempo::cli::passive_omp_reason(commands); !why.empty())
    tempo::cli::restart_with_passive_omp_waits(argv, why);
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const tempo::nn::ComputeUnavailableError& e) {
    // Documented exit status 3: no worker left under --fallback stop (checkpoint written first
    // when --checkpoint-dir is set); rerun with --resume once workers are back.
    std::fflush(stdout);
    std::fprintf(stderr, "tempo: stopped: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "tempo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
