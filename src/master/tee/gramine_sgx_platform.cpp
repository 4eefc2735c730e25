// SGX enclaves under Gramine: the /dev/attestation pseudo-filesystem.
#include <cstring>
#include <stdexcept>

#include "master/tee/platform_impl.h"

namespace tempo::tee::detail {

namespace {

class GramineSgxPlatform final : public Platform {
 public:
  GramineSgxPlatform(const SystemView& sys, std::string type) : sys_(sys), type_(std::move(type)) {}
  PlatformKind kind() const override { return PlatformKind::kSgx; }
  std::string describe() const override {
    return "sgx (Gramine enclave, attestation " + type_ + ", quotes from /dev/attestation/quote)";
  }

  RawEvidence attest(const ReportData& report_data) override {
    write_device_file(sys_.at("/dev/attestation/user_report_data"), report_data);
    auto quote = read_small_file(sys_.at("/dev/attestation/quote"));
    if (!quote || quote->empty())
      throw std::runtime_error(sys_.at("/dev/attestation/quote").string() +
                               ": no quote (is sgx.remote_attestation set in the manifest?)");
    return {Bytes(quote->begin(), quote->end()), "gramine/" + type_};
  }

  std::optional<Key> sealing_key() const override {
    const auto path = sys_.at("/dev/attestation/keys/_sgx_mrenclave");
    auto raw = read_small_file(path);
    if (!raw || raw->size() < 16)
      throw std::runtime_error(path.string() + ": cannot read the MRENCLAVE sealing key");
    // Gramine's keys are 128-bit; expand to an AES-256 key bound to this purpose.
    Key k;
    std::memcpy(k.bytes.data(), raw->data(), 16);
    std::fill(raw->begin(), raw->end(), '\0');
    return derive_key(k, "tempo sgx sealing key v1", {});
  }

 private:
  SystemView sys_;
  std::string type_;
};

}  // namespace

std::unique_ptr<Platform> make_gramine_sgx_platform(const SystemView& sys) {
  auto type = read_small_file(sys.at("/dev/attestation/attestation_type"));
  if (!type)
    throw std::runtime_error(
        "TEE platform sgx: " + sys.at("/dev/attestation/attestation_type").string() +
        " is absent (not running under Gramine SGX)");
  while (!type->empty() && std::isspace(static_cast<unsigned char>(type->back()))) type->pop_back();
  if (*type == "none")
    throw std::runtime_error(
        "TEE platform sgx: Gramine reports attestation type 'none' "
        "(gramine-direct, or sgx.remote_attestation unset)");
  return std::make_unique<GramineSgxPlatform>(sys, *type);
}

}  // namespace tempo::tee::detail
