// `tempo seal`: data keys and sealed datasets; the --data/--key-file flags of `tempo train`.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "master/data/load_dataset.h"
#include "master/tee/key_file.h"
#include "master/tee/platform.h"
#include "master/tee/sealed_dataset.h"

namespace tempo::cli {

namespace {

struct SealArgs {
  std::string gen_key, in, out, key_file, dataset = "fashion-mnist", inspect;
  uint32_t chunk_size = tee::kDefaultChunkSize;
};

int run_seal(const SealArgs& a) {
  if (!a.gen_key.empty()) {
    tee::generate_key_file(a.gen_key);
    std::fprintf(stderr,
                 "tempo seal: wrote a new 256-bit key to %s (mode 0600). Keep it secret: "
                 "whoever holds it can read every file sealed with it.\n",
                 a.gen_key.c_str());
    return 0;
  }
  if (a.key_file.empty()) throw std::invalid_argument("seal: --key-file is required");
  const tee::Key key = tee::load_key_file(a.key_file);
  if (!a.inspect.empty()) {
    const tee::SealedHeader h = tee::read_sealed_header(a.inspect, key);
    nlohmann::json j = {{"file", a.inspect},
                        {"kind", tee::kind_name(h.kind)},
                        {"file_id", tee::to_hex(h.file_id)},
                        {"version", h.version},
                        {"chunk_size", h.chunk_size},
                        {"chunk_count", h.chunk_count},
                        {"payload_bytes", h.payload_bytes},
                        {"meta", h.meta}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  if (a.in.empty() || a.out.empty())
    throw std::invalid_argument("seal: give --in and --out (or --gen-key, or --inspect)");
  if (a.dataset == "synthetic")
    throw std::invalid_argument("seal: the synthetic dataset needs no sealing");
  // --in names the dataset (its default directory) or a directory holding its files.
  const std::string dir = a.in == a.dataset ? std::string() : a.in;
  const data::Dataset train = data::load_dataset(a.dataset, dir, data::Split::kTrain);
  const data::Dataset test = data::load_dataset(a.dataset, dir, data::Split::kTest);
  tee::write_sealed_dataset(a.out, key, train, test, a.chunk_size);
  const tee::SealedHeader h = tee::read_sealed_header(a.out, key);
  nlohmann::json j = {{"sealed", a.out},
                      {"dataset", a.dataset},
                      {"train_count", train.size()},
                      {"test_count", test.size()},
                      {"payload_bytes", h.payload_bytes},
                      {"chunks", h.chunk_count},
                      {"file_id", tee::to_hex(h.file_id)}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

Command add_seal_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "seal",
      "Seal a dataset (both splits) into an authenticated, encrypted .tds file (AES-256-GCM in "
      "chunks), or create a data key");
  auto a = std::make_shared<SealArgs>();
  cmd->add_option("--gen-key", a->gen_key, "Write a new random 256-bit key (hex) to FILE");
  cmd->add_option("--in", a->in, "The dataset's directory, or its name for its default directory");
  cmd->add_option("--out", a->out, "The sealed file to write (.tds)");
  cmd->add_option("--key-file", a->key_file, "Data key: 32 raw bytes or 64 hex digits");
  cmd->add_option("--dataset", a->dataset, "fashion-mnist | cifar10")
      ->check(CLI::IsMember({"fashion-mnist", "cifar10"}))
      ->capture_default_str();
  cmd->add_option("--chunk-size", a->chunk_size, "Plaintext bytes per authenticated chunk")
      ->check(CLI::Range(uint32_t{4096}, tee::kMaxChunkSize))
      ->capture_default_str();
  cmd->add_option("--inspect", a->inspect,
                  "Authenticate a sealed file's header and print it as JSON");
  return {cmd, [a] { return run_seal(*a); }};
}

void add_sealed_train_flags(CLI::App& cmd, train::TrainOptions& o) {
  auto* g = cmd.add_option_group("Sealed data (TEE)");
  g->add_option("--data", o.sealed_data,
                "Train on a sealed dataset (.tds from `tempo seal`), decrypted only in memory; "
                "needs --key-file");
  g->add_option("--key-file", o.key_file,
                "Data key: decrypts --data, and seals checkpoints (with a monotonic version and "
                "rollback detection)");
}

}  // namespace tempo::cli
