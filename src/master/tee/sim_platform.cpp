// The sim platform: no TEE. Evidence is an unsigned, clearly marked document.
#include <cstdio>

#include "master/tee/platform_impl.h"

namespace tempo::tee::detail {

namespace {

class SimPlatform final : public Platform {
 public:
  explicit SimPlatform(std::string reason) : reason_(std::move(reason)) {
    std::fprintf(stderr, "%s (%s)\n", kSimWarning, reason_.c_str());
  }
  PlatformKind kind() const override { return PlatformKind::kSim; }
  bool protects() const override { return false; }
  std::string describe() const override {
    return "sim (no TEE: nothing is protected in this process; " + reason_ + ")";
  }
  // Sim evidence carries no hardware quote: the envelope itself is the (unsigned) evidence.
  RawEvidence attest(const ReportData&) override { return {{}, "sim (unsigned)"}; }

 private:
  std::string reason_;
};

}  // namespace

std::unique_ptr<Platform> make_sim_platform(std::string reason) {
  return std::make_unique<SimPlatform>(std::move(reason));
}

}  // namespace tempo::tee::detail
