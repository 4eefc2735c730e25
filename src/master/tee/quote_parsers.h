// Parsers of hardware attestation evidence, per the published layouts. They extract the fields
// that key release checks (measurement, report data); they do NOT verify signatures or
// certificate chains (that needs Intel DCAP collateral or AMD KDS certificates).
//
//  - SGX ECDSA quote v3 (Intel SGX ECDSA Quote Library API, "Quote Format"): 48-byte header
//    (u16 version = 3, u16 attestation key type, u32 reserved, u16 QE SVN, u16 PCE SVN,
//    QE vendor id[16], user data[20]), 384-byte ISV enclave report body (MRENCLAVE at body
//    offset 64, MRSIGNER at 128, ISV prod id at 256, ISV SVN at 258, report data at 320), then
//    u32 signature data length and the signature data.
//  - TDX quote v4 (Intel TDX DCAP Quote Generation Library and Quote Verification Library,
//    "TD Quote Format"): 48-byte header (version = 4, key type, u32 TEE type = 0x81), 584-byte TD
//    report body (MRSEAM at 16, TD attributes at 120, MRTD at 136, MRCONFIGID at 184, RTMR0..3 at
//    328..520, report data at 520), then u32 signature data length and the signature data.
//  - AMD SEV-SNP attestation report (SEV Secure Nested Paging Firmware ABI, Table
//    "ATTESTATION_REPORT Structure"), 0x4A0 bytes: version at 0x00, guest SVN 0x04, policy 0x08,
//    VMPL 0x30, signature algorithm 0x34, report data 0x50, MEASUREMENT 0x90 (48 bytes), host data
//    0xC0, chip id 0x1A0, signature 0x2A0.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "master/tee/primitives.h"

namespace tempo::tee {

/// The fields of a piece of evidence that key release looks at.
struct ParsedEvidence {
  std::string platform;  ///< "sgx", "tdx" or "snp"
  Bytes measurement;     ///< MRENCLAVE (32 bytes), MRTD or MEASUREMENT (48 bytes)
  std::array<uint8_t, 64> report_data{};
  nlohmann::json fields;  ///< other parsed fields, hex encoded, for display
};

/// Layout constants (byte offsets from the start of the quote or report).
namespace layout {
inline constexpr size_t kQuoteHeaderBytes = 48;
inline constexpr size_t kSgxReportBodyBytes = 384;
inline constexpr size_t kSgxMrEnclave = kQuoteHeaderBytes + 64;
inline constexpr size_t kSgxMrSigner = kQuoteHeaderBytes + 128;
inline constexpr size_t kSgxIsvProdId = kQuoteHeaderBytes + 256;
inline constexpr size_t kSgxIsvSvn = kQuoteHeaderBytes + 258;
inline constexpr size_t kSgxReportData = kQuoteHeaderBytes + 320;
inline constexpr size_t kSgxSignatureLength = kQuoteHeaderBytes + kSgxReportBodyBytes;  // 432
inline constexpr size_t kTdxReportBodyBytes = 584;
inline constexpr uint32_t kTdxTeeType = 0x81;
inline constexpr size_t kTdxMrSeam = kQuoteHeaderBytes + 16;
inline constexpr size_t kTdxTdAttributes = kQuoteHeaderBytes + 120;
inline constexpr size_t kTdxMrTd = kQuoteHeaderBytes + 136;
inline constexpr size_t kTdxRtmr0 = kQuoteHeaderBytes + 328;
inline constexpr size_t kTdxReportData = kQuoteHeaderBytes + 520;
inline constexpr size_t kTdxSignatureLength = kQuoteHeaderBytes + kTdxReportBodyBytes;  // 632
inline constexpr size_t kSnpReportBytes = 0x4A0;
inline constexpr size_t kSnpPolicy = 0x08;
inline constexpr size_t kSnpVmpl = 0x30;
inline constexpr size_t kSnpSignatureAlgo = 0x34;
inline constexpr size_t kSnpReportData = 0x50;
inline constexpr size_t kSnpMeasurement = 0x90;
inline constexpr size_t kSnpHostData = 0xC0;
inline constexpr size_t kSnpChipId = 0x1A0;
}  // namespace layout

/// Each throws std::invalid_argument saying which structural check failed (size, version, type).
ParsedEvidence parse_sgx_quote_v3(std::span<const uint8_t> quote);
ParsedEvidence parse_tdx_quote_v4(std::span<const uint8_t> quote);
ParsedEvidence parse_snp_report(std::span<const uint8_t> report);
/// Dispatches on `platform` ("sgx", "tdx", "snp").
ParsedEvidence parse_evidence(const std::string& platform, std::span<const uint8_t> raw);

}  // namespace tempo::tee
