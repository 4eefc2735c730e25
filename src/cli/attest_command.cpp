// `tempo attest`: produce attestation evidence, or verify it and release a key.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "master/tee/evidence.h"
#include "master/tee/key_file.h"
#include "master/tee/platform.h"
#include "master/train/atomic_file.h"

namespace tempo::cli {

namespace {

struct AttestArgs {
  std::string nonce, session_data, out;
  std::string verify, expected_measurement, key_file;
  bool allow_sim = false;
};

int produce(const AttestArgs& a) {
  tee::Bytes nonce;
  if (a.nonce.empty()) {
    nonce.resize(32);
    tee::random_bytes(nonce.data(), nonce.size());
  } else {
    nonce = tee::from_hex(a.nonce, "--nonce");
  }
  const tee::Bytes session = tee::from_hex(a.session_data, "--session-data");
  const nlohmann::json ev = tee::make_evidence(tee::process_platform(), nonce, session);
  const std::string text = ev.dump(2) + "\n";
  if (a.out.empty()) {
    std::printf("%s", text.c_str());
  } else {
    train::write_file_atomically(a.out, text);
    std::fprintf(stderr, "tempo attest: %s evidence written to %s\n",
                 ev["platform"].get<std::string>().c_str(), a.out.c_str());
  }
  return 0;
}

int verify(const AttestArgs& a) {
  if (a.expected_measurement.empty() || a.nonce.empty())
    throw std::invalid_argument(
        "attest --verify-evidence needs --expected-measurement and --nonce");
  std::ifstream in(a.verify);
  if (!in) throw std::runtime_error(a.verify + ": cannot open");
  nlohmann::json ev;
  try {
    ev = nlohmann::json::parse(
        std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(a.verify + ": not JSON: " + e.what());
  }
  tee::EvidencePolicy policy;
  policy.expected_measurement = tee::from_hex(a.expected_measurement, "--expected-measurement");
  policy.nonce = tee::from_hex(a.nonce, "--nonce");
  policy.allow_sim = a.allow_sim;
  const tee::EvidenceCheck c = tee::check_evidence(ev, policy);
  nlohmann::json j = c.to_json();
  j["file"] = a.verify;
  if (c.platform == "sim")
    std::fprintf(stderr, "tempo attest: WARNING: %s holds SIMULATED, unsigned evidence\n",
                 a.verify.c_str());
  if (c.accepted() && !a.key_file.empty()) {
    const tee::Key key = tee::load_key_file(a.key_file);
    j["wrapped_key"] = tee::to_hex(tee::release_wrapped_key(ev, policy, key));
  }
  std::printf("%s\n", j.dump().c_str());
  if (!c.accepted()) {
    std::string why;
    for (const auto& f : c.failures) why += "\n  - " + f;
    std::fprintf(stderr, "tempo attest: %s: evidence REJECTED, no key released:%s\n",
                 a.verify.c_str(), why.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

Command add_attest_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "attest",
      "Print attestation evidence of this master's TEE (JSON; report data = SHA-256(nonce || "
      "session data)), or verify evidence before releasing a key to it");
  auto a = std::make_shared<AttestArgs>();
  cmd->add_option("--nonce", a->nonce, "The verifier's nonce, hex (random when producing)");
  cmd->add_option("--session-data", a->session_data,
                  "Hex bound into the report data, e.g. the X25519 public key to receive keys");
  cmd->add_option("--out", a->out, "Write the evidence here instead of stdout");
  cmd->add_option("--verify-evidence", a->verify, "Verify this evidence file instead");
  cmd->add_option("--expected-measurement", a->expected_measurement,
                  "MRENCLAVE / MRTD / SNP MEASUREMENT (hex) the evidence must carry");
  cmd->add_flag("--allow-sim", a->allow_sim,
                "Accept sim (unsigned) evidence: development only, it proves nothing");
  cmd->add_option("--key-file", a->key_file,
                  "On acceptance, print this key encrypted to the evidence's session public key");
  return {cmd, [a] { return a->verify.empty() ? produce(*a) : verify(*a); }};
}

void add_tee_option(CLI::App& app) {
  auto* opt = app.add_option_function<std::string>(
      "--tee", [](const std::string& v) { tee::select_platform(v); },
      "TEE platform of the master: sim | sgx | tdx | snp | auto (default: auto-detect)");
  opt->check(CLI::IsMember({"sim", "sgx", "tdx", "snp", "auto"}));
  // --tee is accepted after any subcommand too (tempo train --tee sgx ...).
  for (CLI::App* sub : app.get_subcommands({})) sub->fallthrough();
  // Every master start opens its platform (sim says loudly that nothing is protected); the
  // untrusted worker service is not a master.
  app.parse_complete_callback([&app] {
    for (CLI::App* sub : app.get_subcommands())
      if (sub->get_name() == "worker") return;
    try {
      tee::process_platform();
    } catch (const std::exception& e) {
      throw CLI::ValidationError("--tee", e.what());  // reported like any bad flag, exit status 2
    }
  });
}

}  // namespace tempo::cli
