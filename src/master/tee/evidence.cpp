#include "master/tee/evidence.h"

#include <sodium.h>

#include <fstream>
#include <stdexcept>

namespace tempo::tee {

ReportData make_report_data(std::span<const uint8_t> nonce, std::span<const uint8_t> session_data) {
  Bytes m(nonce.begin(), nonce.end());
  m.insert(m.end(), session_data.begin(), session_data.end());
  const Digest d = sha256(m);
  ReportData rd{};
  std::copy(d.begin(), d.end(), rd.begin());
  return rd;
}

Digest self_measurement() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  if (!in) throw std::runtime_error("/proc/self/exe: cannot open the running binary");
  const Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return sha256(b);
}

nlohmann::json make_evidence(Platform& platform, std::span<const uint8_t> nonce,
                             std::span<const uint8_t> session_data) {
  if (nonce.empty()) throw std::invalid_argument("attest: the nonce is empty");
  const ReportData rd = make_report_data(nonce, session_data);
  nlohmann::json j = {{"format", kEvidenceFormat},
                      {"platform", platform.name()},
                      {"nonce", to_hex(nonce)},
                      {"session_data", to_hex(session_data)},
                      {"report_data", to_hex(rd)}};
  const RawEvidence raw = platform.attest(rd);
  j["provider"] = raw.provider;
  if (!platform.protects()) {
    j["measurement"] = to_hex(self_measurement());
    j["signed"] = false;
    j["warning"] =
        "SIMULATED EVIDENCE from the sim platform: unsigned, proves nothing; the measurement is a "
        "claim (SHA-256 of the tempo binary). Never release production keys to it.";
    return j;
  }
  const ParsedEvidence p = parse_evidence(platform.name(), raw.bytes);
  j["measurement"] = to_hex(p.measurement);
  j["evidence"] = to_hex(raw.bytes);
  j["signed"] = true;
  j["fields"] = p.fields;
  return j;
}

nlohmann::json EvidenceCheck::to_json() const {
  return {{"platform", platform},
          {"measurement", measurement},
          {"structure_ok", structure_ok},
          {"measurement_ok", measurement_ok},
          {"nonce_binding_ok", nonce_binding_ok},
          {"signature_ok", signature_ok},
          {"signature", signature},
          {"accepted", accepted()},
          {"failures", failures}};
}

EvidenceCheck check_evidence(const nlohmann::json& envelope, const EvidencePolicy& policy) {
  EvidenceCheck c;
  const auto str = [&](const char* k) {
    return envelope.contains(k) && envelope[k].is_string() ? envelope[k].get<std::string>()
                                                           : std::string();
  };
  Bytes session, claimed_rd;
  try {
    if (!envelope.is_object() || str("format") != kEvidenceFormat)
      throw std::invalid_argument("not a " + std::string(kEvidenceFormat) + " envelope");
    c.platform = str("platform");
    parse_platform(c.platform);
    session = from_hex(str("session_data"), "session_data");
    claimed_rd = from_hex(str("report_data"), "report_data");
    c.structure_ok = true;
  } catch (const std::exception& e) {
    c.failures.push_back(std::string("structure: ") + e.what());
    return c;
  }

  Bytes measurement;
  std::array<uint8_t, 64> report_data{};
  if (c.platform == "sim") {
    try {
      measurement = from_hex(str("measurement"), "measurement");
    } catch (const std::exception& e) {
      c.failures.push_back(std::string("structure: ") + e.what());
    }
    if (claimed_rd.size() == 64)
      std::copy(claimed_rd.begin(), claimed_rd.end(), report_data.begin());
    c.signature = "none: sim evidence is unsigned and proves nothing";
    c.signature_ok = policy.allow_sim;
    if (!policy.allow_sim)
      c.failures.push_back("signature: sim evidence is unsigned (accepted only with allow_sim)");
  } else {
    Bytes raw;
    try {
      raw = from_hex(str("evidence"), "evidence");
      const ParsedEvidence p = parse_evidence(c.platform, raw);
      measurement = p.measurement;
      report_data = p.report_data;
      // The envelope's copies are informative only; they must agree with the quote.
      if (str("measurement") != to_hex(p.measurement) || claimed_rd.size() != 64 ||
          !equal_ct(claimed_rd, p.report_data))
        c.failures.push_back(
            "structure: the envelope's measurement or report data differ from "
            "the quote's");
      if (policy.signature_verifier) {
        std::string why;
        c.signature_ok = policy.signature_verifier(p, raw, why);
        c.signature = c.signature_ok ? "verified" : "rejected: " + why;
        if (!c.signature_ok) c.failures.push_back("signature: " + why);
      } else {
        c.signature = "not verified: no quote verifier configured (Intel DCAP QVL / AMD KDS)";
        c.failures.push_back("signature: " + c.signature);
      }
    } catch (const std::exception& e) {
      c.structure_ok = false;
      c.failures.push_back(std::string("structure: ") + e.what());
      return c;
    }
  }
  c.measurement = to_hex(measurement);
  c.measurement_ok =
      !policy.expected_measurement.empty() && equal_ct(measurement, policy.expected_measurement);
  if (!c.measurement_ok)
    c.failures.push_back("measurement: " + c.measurement + " is not the expected " +
                         to_hex(policy.expected_measurement));
  const ReportData expected_rd = make_report_data(policy.nonce, session);
  c.nonce_binding_ok = !policy.nonce.empty() && equal_ct(report_data, expected_rd);
  if (!c.nonce_binding_ok)
    c.failures.push_back(
        "nonce binding: report data is not SHA-256(nonce || session data) for "
        "the expected nonce (stale or replayed evidence)");
  return c;
}

Key release_key(const nlohmann::json& envelope, const EvidencePolicy& policy, const Key& key) {
  const EvidenceCheck c = check_evidence(envelope, policy);
  if (!c.accepted()) {
    std::string why;
    for (const auto& f : c.failures) why += "\n  - " + f;
    throw std::runtime_error("key release refused:" + why);
  }
  return key;
}

Bytes release_wrapped_key(const nlohmann::json& envelope, const EvidencePolicy& policy,
                          const Key& key) {
  const Key k = release_key(envelope, policy, key);
  const Bytes pk = from_hex(envelope.value("session_data", std::string()), "session_data");
  if (pk.size() != crypto_box_PUBLICKEYBYTES)
    throw std::runtime_error("key release refused: session data is not an X25519 public key");
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to start");
  Bytes out(crypto_box_SEALBYTES + k.bytes.size());
  crypto_box_seal(out.data(), k.bytes.data(), k.bytes.size(), pk.data());
  return out;
}

}  // namespace tempo::tee
