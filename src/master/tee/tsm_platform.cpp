// Confidential VMs (TDX, SEV-SNP): reports through Linux configfs-tsm.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "master/tee/platform_impl.h"

namespace tempo::tee::detail {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

long parse_count(const std::string& s) {
  try {
    return std::stol(trim(s));
  } catch (const std::exception&) {
    return -1;
  }
}

class TsmPlatform final : public Platform {
 public:
  TsmPlatform(PlatformKind kind, const SystemView& sys) : kind_(kind), sys_(sys) {}
  PlatformKind kind() const override { return kind_; }
  std::string describe() const override {
    return platform_name(kind_) + " (confidential VM, reports via configfs-tsm " +
           sys_.at("/sys/kernel/config/tsm/report").string() + ")";
  }

  RawEvidence attest(const ReportData& report_data) override {
    uint8_t rnd[8];
    random_bytes(rnd, sizeof rnd);
    // Appended piecewise: GCC 12 reports a false -Wrestrict on `"literal" + std::string`.
    std::string name = "tempo-";
    name += std::to_string(::getpid());
    name += '-';
    name += to_hex(rnd);
    const auto entry = sys_.at("/sys/kernel/config/tsm/report") / name;
    if (::mkdir(entry.c_str(), 0700) != 0) {
      const int err = errno;
      throw std::runtime_error(entry.string() + ": mkdir failed: " + std::strerror(err));
    }
    // The entry must go away whatever happens: the kernel keeps it otherwise.
    struct Remove {
      std::filesystem::path p;
      ~Remove() { ::rmdir(p.c_str()); }
    } remove{entry};
    const auto generation = read_small_file(entry / "generation");
    write_device_file(entry / "inblob", report_data);
    auto out = read_small_file(entry / "outblob");
    if (!out || out->empty())
      throw std::runtime_error((entry / "outblob").string() + ": no report");
    const auto provider = read_small_file(entry / "provider");
    // Another writer between our inblob and outblob would bump the generation by more than one.
    const auto after = read_small_file(entry / "generation");
    if (generation && after && parse_count(*after) != parse_count(*generation) + 1)
      throw std::runtime_error(entry.string() + ": concurrent use of the report entry");
    return {Bytes(out->begin(), out->end()), provider ? trim(*provider) : "unknown"};
  }

 private:
  PlatformKind kind_;
  SystemView sys_;
};

}  // namespace

std::unique_ptr<Platform> make_tsm_platform(PlatformKind kind, const SystemView& sys) {
  std::error_code ec;
  if (!std::filesystem::is_directory(sys.at("/sys/kernel/config/tsm/report"), ec))
    throw std::runtime_error("TEE platform " + platform_name(kind) + ": " +
                             sys.at("/sys/kernel/config/tsm/report").string() +
                             " is absent (needs Linux 6.7+ with configfs mounted in a " +
                             platform_name(kind) + " guest)");
  return std::make_unique<TsmPlatform>(kind, sys);
}

}  // namespace tempo::tee::detail
