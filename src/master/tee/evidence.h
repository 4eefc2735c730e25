// Attestation evidence in a JSON envelope, its verification, and key release.
//
// report_data = SHA-256(nonce || session data) followed by 32 zero bytes: the evidence is fresh
// (the verifier's nonce) and bound to the channel that receives the key (session data, e.g. an
// X25519 public key). Envelope:
//   {"format": "tempo-evidence/1", "platform": "sim|sgx|tdx|snp", "nonce": hex,
//    "session_data": hex, "report_data": hex, "measurement": hex, "provider": "...",
//    "evidence": hex of the quote/report (hardware only), "signed": bool, "warning": "..."}
// Sim evidence has no quote: its measurement (SHA-256 of the tempo binary) is just a claim, and
// the document says so ("signed": false and a warning).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "master/tee/platform.h"
#include "master/tee/quote_parsers.h"

namespace tempo::tee {

inline constexpr const char* kEvidenceFormat = "tempo-evidence/1";

/// SHA-256(nonce || session_data) padded with zeros to 64 bytes.
ReportData make_report_data(std::span<const uint8_t> nonce, std::span<const uint8_t> session_data);

/// SHA-256 of the running executable (/proc/self/exe): the sim platform's stand-in measurement.
Digest self_measurement();

/// Produces the evidence envelope on `platform` for a verifier's nonce.
nlohmann::json make_evidence(Platform& platform, std::span<const uint8_t> nonce,
                             std::span<const uint8_t> session_data);

/// What key release requires of evidence.
struct EvidencePolicy {
  Bytes expected_measurement;
  Bytes nonce;
  /// Accept sim (unsigned) evidence. Only for development: sim protects nothing.
  bool allow_sim = false;
  /// Verifies a hardware quote's signature and certificate chain (e.g. Intel DCAP QVL, AMD KDS).
  /// Without one, hardware evidence is never accepted for key release.
  std::function<bool(const ParsedEvidence&, std::span<const uint8_t> raw, std::string& why)>
      signature_verifier;
};

/// The outcome of every check, for display and for release_key().
struct EvidenceCheck {
  std::string platform;
  std::string measurement;  ///< hex, as parsed from the quote (hardware) or claimed (sim)
  bool structure_ok = false;
  bool measurement_ok = false;
  bool nonce_binding_ok = false;
  bool signature_ok = false;
  std::string signature;  ///< how the signature was (or was not) checked
  std::vector<std::string> failures;
  bool accepted() const { return failures.empty(); }
  nlohmann::json to_json() const;
};

/// Runs every check of `envelope` against `policy` (never throws on bad evidence: failures are
/// listed).
EvidenceCheck check_evidence(const nlohmann::json& envelope, const EvidencePolicy& policy);

/// Key provisioning: returns `key` only when check_evidence() accepts the evidence; otherwise
/// throws std::runtime_error listing every failed check.
Key release_key(const nlohmann::json& envelope, const EvidencePolicy& policy, const Key& key);

/// release_key(), then encrypts the key to the evidence's session data taken as an X25519 public
/// key (libsodium crypto_box_seal), so only the attested party can read it.
Bytes release_wrapped_key(const nlohmann::json& envelope, const EvidencePolicy& policy,
                          const Key& key);

}  // namespace tempo::tee
