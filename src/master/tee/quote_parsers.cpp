#include "master/tee/quote_parsers.h"

#include <cstring>
#include <stdexcept>

namespace tempo::tee {

namespace {

template <class T>
T get(std::span<const uint8_t> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

std::string hex_at(std::span<const uint8_t> b, size_t off, size_t n) {
  return to_hex(b.subspan(off, n));
}

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw std::invalid_argument(what + ": " + why);
}

/// Header and signature-length checks common to SGX v3 and TDX v4 quotes.
void check_quote(std::span<const uint8_t> q, const char* what, uint16_t version,
                 size_t sig_len_at) {
  if (q.size() < sig_len_at + 4) bad(what, "too short (" + std::to_string(q.size()) + " bytes)");
  const auto v = get<uint16_t>(q, 0);
  if (v != version)
    bad(what, "version " + std::to_string(v) + ", expected " + std::to_string(version));
  const auto key_type = get<uint16_t>(q, 2);
  if (key_type != 2 && key_type != 3)  // ECDSA-256-with-P-256 / ECDSA-384-with-P-384
    bad(what, "unknown attestation key type " + std::to_string(key_type));
  const auto sig_len = get<uint32_t>(q, sig_len_at);
  if (sig_len != q.size() - sig_len_at - 4)
    bad(what, "signature data length " + std::to_string(sig_len) + " does not match the " +
                  std::to_string(q.size() - sig_len_at - 4) + " bytes that follow");
}

}  // namespace

ParsedEvidence parse_sgx_quote_v3(std::span<const uint8_t> q) {
  using namespace layout;
  check_quote(q, "SGX quote", 3, kSgxSignatureLength);
  if (get<uint32_t>(q, 4) != 0) bad("SGX quote", "TEE type is not SGX (0)");
  ParsedEvidence e;
  e.platform = "sgx";
  e.measurement.assign(q.begin() + kSgxMrEnclave, q.begin() + kSgxMrEnclave + 32);
  std::memcpy(e.report_data.data(), q.data() + kSgxReportData, 64);
  e.fields = {{"version", 3},
              {"mr_enclave", hex_at(q, kSgxMrEnclave, 32)},
              {"mr_signer", hex_at(q, kSgxMrSigner, 32)},
              {"isv_prod_id", get<uint16_t>(q, kSgxIsvProdId)},
              {"isv_svn", get<uint16_t>(q, kSgxIsvSvn)},
              {"qe_vendor_id", hex_at(q, 12, 16)}};
  return e;
}

ParsedEvidence parse_tdx_quote_v4(std::span<const uint8_t> q) {
  using namespace layout;
  check_quote(q, "TDX quote", 4, kTdxSignatureLength);
  if (get<uint32_t>(q, 4) != kTdxTeeType) bad("TDX quote", "TEE type is not TDX (0x81)");
  ParsedEvidence e;
  e.platform = "tdx";
  e.measurement.assign(q.begin() + kTdxMrTd, q.begin() + kTdxMrTd + 48);
  std::memcpy(e.report_data.data(), q.data() + kTdxReportData, 64);
  nlohmann::json rtmr = nlohmann::json::array();
  for (size_t i = 0; i < 4; ++i) rtmr.push_back(hex_at(q, kTdxRtmr0 + 48 * i, 48));
  e.fields = {{"version", 4},
              {"mr_td", hex_at(q, kTdxMrTd, 48)},
              {"mr_seam", hex_at(q, kTdxMrSeam, 48)},
              {"td_attributes", hex_at(q, kTdxTdAttributes, 8)},
              {"rtmr", rtmr}};
  return e;
}

ParsedEvidence parse_snp_report(std::span<const uint8_t> r) {
  using namespace layout;
  if (r.size() != kSnpReportBytes)
    bad("SNP report",
        std::to_string(r.size()) + " bytes, expected " + std::to_string(kSnpReportBytes));
  const auto version = get<uint32_t>(r, 0);
  if (version < 2) bad("SNP report", "version " + std::to_string(version) + " is not supported");
  ParsedEvidence e;
  e.platform = "snp";
  e.measurement.assign(r.begin() + kSnpMeasurement, r.begin() + kSnpMeasurement + 48);
  std::memcpy(e.report_data.data(), r.data() + kSnpReportData, 64);
  e.fields = {{"version", version},
              {"measurement", hex_at(r, kSnpMeasurement, 48)},
              {"policy", get<uint64_t>(r, kSnpPolicy)},
              {"vmpl", get<uint32_t>(r, kSnpVmpl)},
              {"signature_algo", get<uint32_t>(r, kSnpSignatureAlgo)},
              {"host_data", hex_at(r, kSnpHostData, 32)},
              {"chip_id", hex_at(r, kSnpChipId, 64)}};
  return e;
}

ParsedEvidence parse_evidence(const std::string& platform, std::span<const uint8_t> raw) {
  if (platform == "sgx") return parse_sgx_quote_v3(raw);
  if (platform == "tdx") return parse_tdx_quote_v4(raw);
  if (platform == "snp") return parse_snp_report(raw);
  throw std::invalid_argument("no evidence parser for platform '" + platform + "'");
}

}  // namespace tempo::tee
