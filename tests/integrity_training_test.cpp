// Training against a worker that corrupts results: every corruption is caught, none is used, and
// the run ends where an honest run ends (docs/integrity.md).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

struct TrainRun {
  int status = -1;
  std::string out;
  nlohmann::json summary;
};

/// A small synthetic run of `tempo train` in tempo mode, every layer offloaded.
TrainRun train(const std::string& extra, const std::string& model = "cnn") {
  const std::string cmd = std::string(TEMPO_BINARY) + " train --model " + model +
                          " --dataset synthetic --mode tempo --epochs 1 "
                          "--limit-train 128 --limit-test 64 --batch-size 32 --seed 3 "
                          "--offload-first-layer --offload-head " +
                          extra + " 2>&1";
  TrainRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  r.status = WEXITSTATUS(pclose(p));
  std::istringstream lines(r.out);
  std::string last;
  for (std::string l; std::getline(lines, l);)
    if (!l.empty()) last = l;
  r.summary = nlohmann::json::parse(last, nullptr, false);
  return r;
}

int64_t count_lines(const std::string& out, const std::string& needle) {
  int64_t n = 0;
  for (size_t p = out.find(needle); p != std::string::npos; p = out.find(needle, p + 1)) ++n;
  return n;
}

TEST(IntegrityTraining, EveryCorruptedResultIsCaughtAndTheRunMatchesAnHonestOne) {
  const TrainRun honest = train("");
  ASSERT_EQ(honest.status, 0) << honest.out;
  EXPECT_EQ(honest.summary["integrity_failures"], 0);  // zero false alarms
  EXPECT_EQ(honest.summary["faults_injected"], 0);
  EXPECT_GT(honest.summary["integrity_checks"].get<int64_t>(), 0);

  const TrainRun faulty = train("--fault random:0.1:5");
  ASSERT_EQ(faulty.status, 0) << faulty.out;
  const int64_t injected = faulty.summary["faults_injected"];
  EXPECT_GT(injected, 0);
  EXPECT_EQ(faulty.summary["integrity_failures"].get<int64_t>(), injected);
  EXPECT_EQ(count_lines(faulty.out, "integrity: layer "), injected);  // each event is logged
  // Retried results are exact products: the run ends where the honest one ends (summation order
  // differs under fresh keys, hence a tolerance rather than equality).
  EXPECT_NEAR(faulty.summary["train_loss"].get<double>(),
              honest.summary["train_loss"].get<double>(), 1e-3);
  EXPECT_NEAR(faulty.summary["test_accuracy"].get<double>(),
              honest.summary["test_accuracy"].get<double>(), 0.02);
}

// The same for a ViT: its Linear layers' and attention's checks are prepared while their
// operands are blinded (integrity::PreparedCheck), at t = 1 and t = 2.
TEST(IntegrityTraining, PreparedChecksOfAViTPassHonestResultsAndCatchEveryCorruptedOne) {
  for (const char* rounds : {"1", "2"}) {
    SCOPED_TRACE(std::string("--verify-rounds ") + rounds);
    const std::string flags = std::string("--verify-rounds ") + rounds;
    const TrainRun honest = train(flags, "vit-tiny");
    ASSERT_EQ(honest.status, 0) << honest.out;
    EXPECT_EQ(honest.summary["integrity_failures"], 0);  // zero false alarms
    EXPECT_GT(honest.summary["integrity_checks"].get<int64_t>(), 0);
    const TrainRun faulty = train(flags + " --fault random:0.1:7", "vit-tiny");
    ASSERT_EQ(faulty.status, 0) << faulty.out;
    const int64_t injected = faulty.summary["faults_injected"];
    EXPECT_GT(injected, 0);
    EXPECT_EQ(faulty.summary["integrity_failures"].get<int64_t>(), injected);
    EXPECT_NEAR(faulty.summary["train_loss"].get<double>(),
                honest.summary["train_loss"].get<double>(), 1e-3);
  }
}

TEST(IntegrityTraining, AWorkerThatAlwaysCheatsIsQuarantinedAndTheTeeFinishesTheRun) {
  const TrainRun r = train("--fault perturb-one");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.summary["worker_quarantined"], true);
  EXPECT_EQ(r.summary["integrity_failures"], 2);  // the first answer and the re-sent one
  EXPECT_EQ(r.summary["faults_injected"], 2);
  EXPECT_GT(r.summary["integrity_local_fallbacks"].get<int64_t>(), 0);
  EXPECT_NE(r.out.find("quarantined"), std::string::npos);
}

TEST(IntegrityTraining, AbortStopsTheRunWithAClearMessage) {
  const TrainRun r = train("--fault zeros --on-integrity-failure abort");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("integrity check failed"), std::string::npos) << r.out;
}

TEST(IntegrityTraining, LocalComputesEachRejectedResultInTheTeeAndKeepsTheWorker) {
  const TrainRun r = train("--fault sign-flip:0.1:2 --on-integrity-failure local");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.summary["worker_quarantined"], false);
  EXPECT_EQ(r.summary["integrity_failures"], r.summary["faults_injected"]);
  EXPECT_EQ(r.summary["integrity_local_fallbacks"], r.summary["faults_injected"]);
}

}  // namespace
