// The TEE the master runs in: detection, attestation evidence and platform sealing keys.
//
//  - sim: an ordinary process. Nothing is protected; opening it logs so, loudly.
//  - sgx: an enclave under Gramine. Evidence: write report data to /dev/attestation/
//    user_report_data, read /dev/attestation/quote (DCAP quote v3). Sealing key:
//    /dev/attestation/keys/_sgx_mrenclave.
//  - tdx / snp: a confidential VM. Evidence through configfs-tsm (Linux 6.7+): mkdir an entry
//    under /sys/kernel/config/tsm/report, write 64 bytes to inblob, read outblob (a TDX quote or
//    an SNP attestation report) and provider.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "master/tee/primitives.h"

namespace tempo::tee {

enum class PlatformKind { kSim, kSgx, kTdx, kSnp };
std::string platform_name(PlatformKind kind);
/// "sim", "sgx", "tdx", "snp" -> kind; "auto" -> nullopt; throws std::invalid_argument otherwise.
std::optional<PlatformKind> parse_platform(std::string_view name);

using ReportData = std::array<uint8_t, 64>;

/// Raw evidence from the hardware: a quote or a report, as bytes.
struct RawEvidence {
  Bytes bytes;
  std::string provider;  ///< e.g. "gramine/dcap", "tdx_guest", "sev_guest"
};

/// Where the platform's devices are: "/" normally, a fake tree in tests. `getenv` likewise.
struct SystemView {
  std::filesystem::path root = "/";
  std::function<const char*(const char*)> getenv;
  std::filesystem::path at(std::string_view absolute) const;
  const char* env(const char* name) const;
};

/// The result of auto-detection and why.
struct Detection {
  PlatformKind kind = PlatformKind::kSim;
  std::string reason;
};

/// Looks for, in order: Gramine's /dev/attestation with SGX attestation (sgx); /dev/tdx_guest or
/// a configfs-tsm provider tdx_guest (tdx); /dev/sev-guest or provider sev_guest (snp); else sim.
/// TEMPO_TEE in the environment forces a kind.
Detection detect_platform(const SystemView& sys = {});

class Platform {
 public:
  virtual ~Platform() = default;
  virtual PlatformKind kind() const = 0;
  std::string name() const { return platform_name(kind()); }
  /// False only for sim.
  virtual bool protects() const { return true; }
  /// One line for `tempo info` and logs.
  virtual std::string describe() const = 0;
  /// Evidence that binds `report_data`; throws std::runtime_error naming the device on failure.
  virtual RawEvidence attest(const ReportData& report_data) = 0;
  /// A key bound to this enclave's measurement, if the platform offers one (SGX under Gramine).
  virtual std::optional<Key> sealing_key() const { return std::nullopt; }
};

/// Opens `requested` ("sim", "sgx", "tdx", "snp" or "auto"). Forcing a hardware kind whose
/// devices are absent throws std::runtime_error. Opening sim writes a loud warning to stderr.
std::unique_ptr<Platform> open_platform(std::string_view requested = "auto",
                                        const SystemView& sys = {});

/// The process-wide platform: the first call opens it (auto-detected unless select_platform()
/// chose one) and later calls return the same object.
Platform& process_platform();
/// Chooses the process-wide platform before first use (e.g. from --tee); throws if another one was
/// already opened.
void select_platform(std::string_view requested);

/// The loud message every sim start prints.
inline constexpr const char* kSimWarning =
    "tempo: WARNING: TEE platform 'sim': this is an ordinary process, NOT a trusted execution "
    "environment. NOTHING IS PROTECTED: the host can read the data, the weights and the keys.";

}  // namespace tempo::tee
