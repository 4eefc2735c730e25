#include "master/tee/platform.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>

#include "master/tee/platform_impl.h"

namespace tempo::tee {

namespace detail {

std::optional<std::string> read_small_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_device_file(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw std::runtime_error(path.string() + ": cannot open for writing: " + std::strerror(err));
  }
  const ssize_t w = ::write(fd, bytes.data(), bytes.size());
  const int err = errno;
  ::close(fd);
  if (w != static_cast<ssize_t>(bytes.size()))
    throw std::runtime_error(path.string() +
                             ": write failed: " + (w < 0 ? std::strerror(err) : "short write"));
}

}  // namespace detail

std::string platform_name(PlatformKind kind) {
  switch (kind) {
    case PlatformKind::kSim:
      return "sim";
    case PlatformKind::kSgx:
      return "sgx";
    case PlatformKind::kTdx:
      return "tdx";
    case PlatformKind::kSnp:
      return "snp";
  }
  return "unknown";
}

std::optional<PlatformKind> parse_platform(std::string_view name) {
  if (name == "sim") return PlatformKind::kSim;
  if (name == "sgx") return PlatformKind::kSgx;
  if (name == "tdx") return PlatformKind::kTdx;
  if (name == "snp") return PlatformKind::kSnp;
  if (name == "auto") return std::nullopt;
  throw std::invalid_argument("unknown TEE platform '" + std::string(name) +
                              "' (valid: sim, sgx, tdx, snp, auto)");
}

std::filesystem::path SystemView::at(std::string_view absolute) const {
  return root / std::filesystem::path(absolute).relative_path();
}

const char* SystemView::env(const char* name) const {
  return getenv ? getenv(name) : std::getenv(name);
}

Detection detect_platform(const SystemView& sys) {
  if (const char* forced = sys.env("TEMPO_TEE");
      forced && *forced && std::string(forced) != "auto") {
    if (auto k = parse_platform(forced)) return {*k, "forced by TEMPO_TEE"};
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (auto type = detail::read_small_file(sys.at("/dev/attestation/attestation_type"))) {
    while (!type->empty() && std::isspace(static_cast<unsigned char>(type->back())))
      type->pop_back();
    if (*type == "dcap" || *type == "epid")
      return {PlatformKind::kSgx, "Gramine /dev/attestation (attestation type " + *type + ")"};
    return {PlatformKind::kSim, "Gramine without SGX attestation (attestation type '" + *type +
                                    "', e.g. gramine-direct): nothing is protected"};
  }
  const bool tsm = fs::is_directory(sys.at("/sys/kernel/config/tsm/report"), ec);
  const std::string via = tsm ? ", configfs-tsm present" : ", configfs-tsm absent";
  if (fs::exists(sys.at("/dev/tdx_guest"), ec)) return {PlatformKind::kTdx, "/dev/tdx_guest" + via};
  if (fs::exists(sys.at("/dev/sev-guest"), ec)) return {PlatformKind::kSnp, "/dev/sev-guest" + via};
  if (tsm) {
    // No guest device node but a report interface: ask it which provider answers.
    try {
      auto probe = detail::make_tsm_platform(PlatformKind::kTdx, sys);
      const std::string provider = probe->attest(ReportData{}).provider;
      if (provider.starts_with("tdx"))
        return {PlatformKind::kTdx, "configfs-tsm provider " + provider};
      if (provider.starts_with("sev"))
        return {PlatformKind::kSnp, "configfs-tsm provider " + provider};
    } catch (const std::exception&) {
    }
  }
  return {PlatformKind::kSim,
          "no TEE found (no Gramine /dev/attestation, no /dev/tdx_guest, no "
          "/dev/sev-guest, no usable configfs-tsm)"};
}

std::unique_ptr<Platform> open_platform(std::string_view requested, const SystemView& sys) {
  const auto forced = parse_platform(requested);
  const Detection d = forced ? Detection{*forced, "forced by --tee " + std::string(requested)}
                             : detect_platform(sys);
  switch (d.kind) {
    case PlatformKind::kSim:
      return detail::make_sim_platform(d.reason);
    case PlatformKind::kSgx:
      return detail::make_gramine_sgx_platform(sys);
    case PlatformKind::kTdx:
    case PlatformKind::kSnp:
      return detail::make_tsm_platform(d.kind, sys);
  }
  throw std::logic_error("open_platform: unknown kind");
}

namespace {
std::mutex g_mutex;
std::unique_ptr<Platform> g_platform;
std::string g_requested = "auto";
}  // namespace

Platform& process_platform() {
  std::lock_guard lock(g_mutex);
  if (!g_platform) g_platform = open_platform(g_requested);
  return *g_platform;
}

void select_platform(std::string_view requested) {
  parse_platform(requested);  // validates
  std::lock_guard lock(g_mutex);
  if (g_platform && requested != "auto" && g_platform->name() != requested)
    throw std::logic_error("TEE platform already opened as " + g_platform->name());
  g_requested = requested;
}

}  // namespace tempo::tee
