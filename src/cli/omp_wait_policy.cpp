#include "cli/omp_wait_policy.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "common/remote/net_address.h"
#include "master/tee/platform.h"

namespace tempo::cli {

namespace {

bool any_loopback(const std::vector<std::string>& addresses) {
  for (const std::string& a : addresses) {
    try {
      if (remote::is_loopback_host(remote::parse_host_port(a).host)) return true;
    } catch (const std::invalid_argument&) {
      // The command reports a bad address itself, with its own message.
    }
  }
  return false;
}

}  // namespace

std::string passive_omp_reason(const std::vector<Command>& commands) {
  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    if (c.app->get_name() == "worker") return "a worker idles between requests";
    const CLI::Option* workers = c.app->get_option_no_throw("--worker");
    if (!workers || !any_loopback(workers->as<std::vector<std::string>>())) continue;
    // A master in a real TEE restarts nothing: its workers are other machines in any deployment.
    if (tee::process_platform().kind() != tee::PlatformKind::kSim) continue;
    return "a worker on a loopback address shares this machine's cores";
  }
  return "";
}

// Called from main before any thread exists: the environment functions are safe here.
void restart_with_passive_omp_waits(char** argv, const std::string& reason) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;     // NOLINT(concurrency-mt-unsafe)
  if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;  // NOLINT(concurrency-mt-unsafe)
  std::fprintf(stderr, "tempo: restarting with OMP_WAIT_POLICY=passive: %s (set it to choose)\n",
               reason.c_str());
  std::fflush(stderr);
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // NOLINT(concurrency-mt-unsafe): execv failed, go on as we were
}

}  // namespace tempo::cli
