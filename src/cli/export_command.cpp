// `tempo export`: the model owner turns a sealed checkpoint into a plaintext one for `tempo eval`.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "master/tee/key_file.h"
#include "master/tee/sealed_checkpoint.h"
#include "master/train/checkpoint.h"

namespace tempo::cli {

namespace {
struct ExportArgs {
  std::string checkpoint, key_file, out;
};
}  // namespace

Command add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export",
      "Decrypt a sealed checkpoint (verifying it and its rollback state) into a PLAINTEXT "
      "checkpoint that `tempo eval` reads. For the model owner, outside the cloud.");
  auto a = std::make_shared<ExportArgs>();
  cmd->add_option("--checkpoint", a->checkpoint, "A sealed checkpoint (e.g. DIR/last.ckpt)")
      ->required();
  cmd->add_option("--key-file", a->key_file, "The data key it was sealed with")->required();
  cmd->add_option("--out", a->out, "The plaintext checkpoint to write")->required();
  return {cmd, [a] {
            std::error_code ec;
            if (std::filesystem::equivalent(a->checkpoint, a->out, ec))
              throw std::invalid_argument("export: --out must differ from --checkpoint");
            const tee::Key key = tee::load_key_file(a->key_file);
            const tee::LoadedCheckpoint loaded = tee::load_sealed_checkpoint(a->checkpoint, key);
            train::save_checkpoint(a->out, loaded.checkpoint);
            std::fprintf(stderr,
                         "tempo export: wrote the PLAINTEXT model to %s: anyone who can read "
                         "that file has the model.\n",
                         a->out.c_str());
            nlohmann::json j = {{"exported", a->out},
                                {"from", a->checkpoint},
                                {"version", loaded.header.version},
                                {"step", loaded.checkpoint.meta.value("step", 0)}};
            std::printf("%s\n", j.dump().c_str());
            return 0;
          }};
}

}  // namespace tempo::cli
