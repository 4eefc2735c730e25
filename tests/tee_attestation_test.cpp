// Platform detection, the quote/report parsers against constructed fixtures, Gramine's
// /dev/attestation path on a fake tree, and evidence verification / key release.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "master/tee/evidence.h"
#include "master/tee/platform.h"
#include "master/tee/quote_parsers.h"

namespace tempo::tee {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(TEMPO_SOURCE_DIR) / "tests/fixtures/attestation";

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << p;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}
const nlohmann::json& expected() {
  static const nlohmann::json j = read_json(kFixtures / "expected.json");
  return j;
}
std::string ex(const char* k) { return expected().at(k).get<std::string>(); }

// ---- parsers ---------------------------------------------------------------------------------

TEST(QuoteParsers, SgxQuoteV3GivesMrEnclaveAndReportData) {
  const Bytes q = read_bytes(kFixtures / "sgx_quote_v3.bin");
  ASSERT_EQ(q.size(), 500u);
  const ParsedEvidence e = parse_sgx_quote_v3(q);
  EXPECT_EQ(to_hex(e.measurement), ex("mr_enclave"));
  EXPECT_EQ(to_hex(e.report_data), ex("report_data"));
  EXPECT_EQ(e.fields.at("mr_signer"), ex("mr_signer"));
  EXPECT_EQ(e.fields.at("isv_prod_id"), 1);
  EXPECT_EQ(e.fields.at("isv_svn"), 2);
  // The fixed offset is the published one, not just whatever the parser reads.
  EXPECT_EQ(to_hex({q.data() + 112, 32}), ex("mr_enclave"));
}

TEST(QuoteParsers, TdxQuoteV4GivesMrTdAndReportData) {
  const Bytes q = read_bytes(kFixtures / "tdx_quote_v4.bin");
  const ParsedEvidence e = parse_tdx_quote_v4(q);
  EXPECT_EQ(to_hex(e.measurement), ex("mr_td"));
  EXPECT_EQ(e.measurement.size(), 48u);
  EXPECT_EQ(to_hex(e.report_data), ex("report_data"));
  EXPECT_EQ(to_hex({q.data() + 184, 48}), ex("mr_td"));
  EXPECT_EQ(e.fields.at("rtmr").size(), 4u);
}

TEST(QuoteParsers, SnpReportGivesMeasurementAtOffset0x90) {
  const Bytes r = read_bytes(kFixtures / "snp_report.bin");
  ASSERT_EQ(r.size(), 0x4A0u);
  const ParsedEvidence e = parse_snp_report(r);
  EXPECT_EQ(to_hex(e.measurement), ex("snp_measurement"));
  EXPECT_EQ(to_hex({r.data() + 0x90, 48}), ex("snp_measurement"));
  EXPECT_EQ(to_hex(e.report_data), ex("report_data"));
  EXPECT_EQ(e.fields.at("version"), 2);
  EXPECT_EQ(e.fields.at("signature_algo"), 1);
}

TEST(QuoteParsers, RejectMalformedEvidence) {
  const Bytes sgx = read_bytes(kFixtures / "sgx_quote_v3.bin");
  const Bytes tdx = read_bytes(kFixtures / "tdx_quote_v4.bin");
  const Bytes snp = read_bytes(kFixtures / "snp_report.bin");
  EXPECT_THROW(parse_sgx_quote_v3({sgx.data(), 400}), std::invalid_argument);  // short
  EXPECT_THROW(parse_sgx_quote_v3({sgx.data(), sgx.size() - 1}), std::invalid_argument);
  EXPECT_THROW(parse_sgx_quote_v3(tdx), std::invalid_argument);  // a TDX quote is not SGX v3
  EXPECT_THROW(parse_tdx_quote_v4(sgx), std::invalid_argument);
  Bytes bad = tdx;
  bad[4] = 0;  // TEE type SGX in a v4 quote
  EXPECT_THROW(parse_tdx_quote_v4(bad), std::invalid_argument);
  EXPECT_THROW(parse_snp_report({snp.data(), snp.size() - 1}), std::invalid_argument);
  bad = snp;
  bad[0] = 1;  // version 1
  EXPECT_THROW(parse_snp_report(bad), std::invalid_argument);
  EXPECT_THROW(parse_evidence("sim", sgx), std::invalid_argument);
}

// ---- detection -------------------------------------------------------------------------------

class FakeSystem : public ::testing::Test {
 protected:
  void SetUp() override {
    sys_.root = fs::temp_directory_path() /
                ("tempo_tee_sys_" + std::to_string(::getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(sys_.root);
    fs::create_directories(sys_.root);
    sys_.getenv = [](const char*) -> const char* { return nullptr; };
  }
  void TearDown() override { fs::remove_all(sys_.root); }
  void put(const std::string& abs, const std::string& content) {
    const auto p = sys_.at(abs);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  SystemView sys_;
};

TEST_F(FakeSystem, NothingMeansSim) {
  EXPECT_EQ(detect_platform(sys_).kind, PlatformKind::kSim);
  auto p = open_platform("auto", sys_);
  EXPECT_EQ(p->name(), "sim");
  EXPECT_FALSE(p->protects());
}

TEST_F(FakeSystem, GramineWithDcapIsSgxButGramineDirectIsNot) {
  put("/dev/attestation/attestation_type", "dcap");
  EXPECT_EQ(detect_platform(sys_).kind, PlatformKind::kSgx);
  put("/dev/attestation/attestation_type", "none");
  const Detection d = detect_platform(sys_);
  EXPECT_EQ(d.kind, PlatformKind::kSim);
  EXPECT_NE(d.reason.find("gramine-direct"), std::string::npos);
  EXPECT_THROW(open_platform("sgx", sys_), std::runtime_error);
}

TEST_F(FakeSystem, GuestDevicesMeanTdxOrSnp) {
  put("/dev/tdx_guest", "");
  EXPECT_EQ(detect_platform(sys_).kind, PlatformKind::kTdx);
  fs::remove(sys_.at("/dev/tdx_guest"));
  put("/dev/sev-guest", "");
  EXPECT_EQ(detect_platform(sys_).kind, PlatformKind::kSnp);
  // The device alone is not enough to attest: configfs-tsm is required.
  EXPECT_THROW(open_platform("snp", sys_), std::runtime_error);
  fs::create_directories(sys_.at("/sys/kernel/config/tsm/report"));
  EXPECT_EQ(open_platform("auto", sys_)->name(), "snp");
}

TEST_F(FakeSystem, ForcingAndTheEnvironment) {
  EXPECT_EQ(open_platform("sim", sys_)->name(), "sim");
  EXPECT_THROW(open_platform("sgx", sys_), std::runtime_error);
  EXPECT_THROW(open_platform("tdx", sys_), std::runtime_error);
  EXPECT_THROW(open_platform("nitro", sys_), std::invalid_argument);
  sys_.getenv = [](const char* n) -> const char* {
    return std::string(n) == "TEMPO_TEE" ? "snp" : nullptr;
  };
  EXPECT_EQ(detect_platform(sys_).kind, PlatformKind::kSnp);
}

TEST_F(FakeSystem, GramineAttestationWritesReportDataAndReadsTheQuote) {
  const Bytes quote = read_bytes(kFixtures / "sgx_quote_v3.bin");
  put("/dev/attestation/attestation_type", "dcap\n");
  put("/dev/attestation/user_report_data", "");
  put("/dev/attestation/quote", std::string(quote.begin(), quote.end()));
  put("/dev/attestation/keys/_sgx_mrenclave", std::string(16, '\x07'));
  auto p = open_platform("auto", sys_);
  ASSERT_EQ(p->name(), "sgx");
  ReportData rd;
  for (size_t i = 0; i < rd.size(); ++i) rd[i] = static_cast<uint8_t>(i * 3);
  const RawEvidence raw = p->attest(rd);
  EXPECT_EQ(raw.bytes, quote);
  EXPECT_EQ(raw.provider, "gramine/dcap");
  const Bytes written = read_bytes(sys_.at("/dev/attestation/user_report_data"));
  EXPECT_EQ(written, Bytes(rd.begin(), rd.end()));
  const auto k1 = p->sealing_key();
  ASSERT_TRUE(k1);
  put("/dev/attestation/keys/_sgx_mrenclave", std::string(16, '\x08'));
  EXPECT_NE(p->sealing_key()->bytes, k1->bytes);  // bound to the enclave's key
  // The envelope carries the parsed quote.
  const nlohmann::json ev =
      make_evidence(*p, from_hex(ex("nonce"), "n"), from_hex(ex("session_data"), "s"));
  EXPECT_EQ(ev.at("platform"), "sgx");
  EXPECT_EQ(ev.at("measurement"), ex("mr_enclave"));
  EXPECT_EQ(read_bytes(sys_.at("/dev/attestation/user_report_data")),
            from_hex(ex("report_data"), "rd"));
}

// ---- evidence and key release ----------------------------------------------------------------

EvidencePolicy policy_for(const std::string& measurement_hex) {
  EvidencePolicy p;
  p.expected_measurement = from_hex(measurement_hex, "m");
  p.nonce = from_hex(ex("nonce"), "n");
  return p;
}

TEST(Evidence, ReportDataIsShaOfNonceAndSessionData) {
  EXPECT_EQ(to_hex(make_report_data(from_hex(ex("nonce"), "n"), from_hex(ex("session_data"), "s"))),
            ex("report_data"));
}

TEST(Evidence, SimEvidenceIsMarkedAndAcceptedOnlyWhenAllowed) {
  SystemView sys;
  sys.root = "/nonexistent-tempo-root";
  auto sim = open_platform("sim", sys);
  const Bytes nonce = from_hex(ex("nonce"), "n"), session = from_hex(ex("session_data"), "s");
  const nlohmann::json ev = make_evidence(*sim, nonce, session);
  EXPECT_EQ(ev.at("signed"), false);
  EXPECT_NE(ev.at("warning").get<std::string>().find("SIMULATED"), std::string::npos);
  EvidencePolicy p = policy_for(to_hex(self_measurement()));
  Key key;
  key.bytes.fill(0x42);
  // Not allowed: refused even though measurement and nonce match.
  EvidenceCheck c = check_evidence(ev, p);
  EXPECT_TRUE(c.measurement_ok);
  EXPECT_TRUE(c.nonce_binding_ok);
  EXPECT_FALSE(c.accepted());
  EXPECT_THROW(release_key(ev, p, key), std::runtime_error);
  p.allow_sim = true;
  EXPECT_TRUE(check_evidence(ev, p).accepted());
  EXPECT_EQ(release_key(ev, p, key).bytes, key.bytes);
  // Wrong nonce (replayed evidence).
  EvidencePolicy stale = p;
  stale.nonce[0] ^= 1;
  c = check_evidence(ev, stale);
  EXPECT_FALSE(c.nonce_binding_ok);
  EXPECT_THROW(release_key(ev, stale, key), std::runtime_error);
  // Wrong measurement.
  EvidencePolicy other = p;
  other.expected_measurement[5] ^= 1;
  EXPECT_FALSE(check_evidence(ev, other).measurement_ok);
  EXPECT_THROW(release_key(ev, other, key), std::runtime_error);
  // Session data swapped after the fact breaks the binding.
  nlohmann::json swapped = ev;
  swapped["session_data"] = std::string(64, 'e');
  EXPECT_FALSE(check_evidence(swapped, p).nonce_binding_ok);
  // Garbage.
  EXPECT_FALSE(check_evidence(nlohmann::json{{"format", "x"}}, p).accepted());
}

TEST(Evidence, HardwareEvidenceNeedsMatchingMeasurementNonceAndSignature) {
  const auto accept_all = [](const ParsedEvidence&, std::span<const uint8_t>, std::string&) {
    return true;
  };
  for (const auto& [file, m] : {std::pair{"sgx_evidence.json", "mr_enclave"},
                                {"tdx_evidence.json", "mr_td"},
                                {"snp_evidence.json", "snp_measurement"}}) {
    SCOPED_TRACE(file);
    const nlohmann::json ev = read_json(kFixtures / file);
    EvidencePolicy p = policy_for(ex(m));
    // No verifier: the signature cannot be trusted, so no key.
    EvidenceCheck c = check_evidence(ev, p);
    EXPECT_TRUE(c.measurement_ok);
    EXPECT_TRUE(c.nonce_binding_ok);
    EXPECT_FALSE(c.accepted());
    p.signature_verifier = accept_all;
    EXPECT_TRUE(check_evidence(ev, p).accepted());
    p.allow_sim = true;  // irrelevant for hardware evidence
    EvidencePolicy wrong_m = p;
    wrong_m.expected_measurement.back() ^= 1;
    EXPECT_FALSE(check_evidence(ev, wrong_m).accepted());
    EvidencePolicy wrong_n = p;
    wrong_n.nonce = from_hex("00", "n");
    EXPECT_FALSE(check_evidence(ev, wrong_n).accepted());
    // A measurement flipped inside the quote itself.
    nlohmann::json tampered = ev;
    Bytes raw = from_hex(ev.at("evidence").get<std::string>(), "e");
    const size_t off = std::string(file) == "sgx_evidence.json"   ? layout::kSgxMrEnclave
                       : std::string(file) == "tdx_evidence.json" ? layout::kTdxMrTd
                                                                  : layout::kSnpMeasurement;
    raw[off] ^= 1;
    tampered["evidence"] = to_hex(raw);
    EXPECT_FALSE(check_evidence(tampered, p).accepted());
    // The envelope's claim cannot override the quote.
    tampered = ev;
    tampered["measurement"] = to_hex(from_hex(ex(m), "m"));
    raw = from_hex(ev.at("evidence").get<std::string>(), "e");
    raw[off + 1] ^= 1;
    tampered["evidence"] = to_hex(raw);
    EXPECT_FALSE(check_evidence(tampered, p).accepted());
    // A verifier that rejects.
    EvidencePolicy reject = p;
    reject.signature_verifier = [](const ParsedEvidence&, std::span<const uint8_t>,
                                   std::string& why) {
      why = "bad certificate chain";
      return false;
    };
    EXPECT_FALSE(check_evidence(ev, reject).accepted());
  }
}

TEST(Evidence, ReleasedKeyIsWrappedToTheAttestedPublicKey) {
  ASSERT_GE(sodium_init(), 0);
  unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk, sk);
  SystemView sys;
  sys.root = "/nonexistent-tempo-root";
  auto sim = open_platform("sim", sys);
  const Bytes nonce = {1, 2, 3, 4};
  const nlohmann::json ev = make_evidence(*sim, nonce, {pk, sizeof pk});
  EvidencePolicy p;
  const Digest m = self_measurement();
  p.expected_measurement.assign(m.begin(), m.end());
  p.nonce = nonce;
  p.allow_sim = true;
  Key key;
  key.bytes.fill(0x17);
  const Bytes wrapped = release_wrapped_key(ev, p, key);
  Bytes opened(32);
  ASSERT_EQ(crypto_box_seal_open(opened.data(), wrapped.data(), wrapped.size(), pk, sk), 0);
  EXPECT_EQ(opened, Bytes(key.bytes.begin(), key.bytes.end()));
}

}  // namespace
}  // namespace tempo::tee
