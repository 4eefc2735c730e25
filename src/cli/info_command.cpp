// `tempo info`: what this build is and what the machine offers.
#include <dnnl_debug.h>
#include <omp.h>
#include <sodium.h>
#include <unistd.h>
#include <dnnl.hpp>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "common/worker_protocol.h"
#include "master/core/simd.h"
#include "master/models/model_factory.h"
#include "master/tee/platform.h"

namespace tempo::cli {

namespace {
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}
}  // namespace

Command add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info",
      "Show the build, oneDNN (GEMM and convolutions) and its ISA, threads and CPU features");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print one JSON object instead of text");
  return {cmd, [json] {
            const auto* v = dnnl::version();
            __builtin_cpu_init();
            nlohmann::json info = {
                {"version", "0.1.0"},
                {"protocol_version", protocol::kProtocolVersion},
                {"gemm", "oneDNN sgemm"},
                {"onednn_isa", std::string(dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()))},
                {"onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                               std::to_string(v->patch)},
                {"libsodium", sodium_version_string()},
                {"threads", omp_get_max_threads()},
                {"cores_online", sysconf(_SC_NPROCESSORS_ONLN)},
                {"cpu", cpu_model()},
                {"avx2", static_cast<bool>(__builtin_cpu_supports("avx2"))},
                {"avx512f", static_cast<bool>(__builtin_cpu_supports("avx512f"))},
                {"check_kernels", simd::level_name()},
                {"models", models::model_names()},
                {"tee", tee::process_platform().name()},
                {"tee_detail", tee::process_platform().describe()},
                {"tee_protects", tee::process_platform().protects()},
            };
            if (*json) {
              std::printf("%s\n", info.dump().c_str());
              return 0;
            }
            for (auto& [k, val] : info.items())
              std::printf("%-18s %s\n", (k + ":").c_str(),
                          val.is_string() ? val.get<std::string>().c_str() : val.dump().c_str());
            return 0;
          }};
}

}  // namespace tempo::cli
