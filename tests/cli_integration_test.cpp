// End-to-end tests of the `tempo` command: it is run as a user would run it.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/view_reader.h"
#include "master/train/checkpoint.h"

namespace tempo {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;
  std::string out;  // stdout and stderr together
  std::string last_line;
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(TEMPO_BINARY) + " " + args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  r.status = WEXITSTATUS(pclose(p));
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);)
    if (!l.empty()) r.last_line = l;
  return r;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tempo_cli_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<double> losses(const fs::path& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

const char* kSmallRun =
    "train --dataset synthetic --model cnn --batch-size 32 --limit-train 256 --limit-test 128 "
    "--threads 2 --lr 0.02 ";

TEST(TempoCli, TrainPrintsJsonSummaryAsLastLineOfStdout) {
  CliRun r = run(std::string(kSmallRun) + "--epochs 1");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.last_line);
  for (const char* key : {"test_accuracy", "train_loss", "steps", "seconds"})
    EXPECT_TRUE(j.contains(key)) << key << " missing in " << r.last_line;
  EXPECT_EQ(j["steps"], 8);
}

TEST(TempoCli, ResumedRunEndsWithTheWeightsOfAnUninterruptedRun) {
  const fs::path a = temp_dir("resume_a"), b = temp_dir("resume_b");
  const std::string common = std::string(kSmallRun) + "--epochs 2 --seed 5 ";
  ASSERT_EQ(run(common + "--checkpoint-dir " + a.string()).status, 0);
  CliRun stopped = run(common + "--checkpoint-dir " + b.string() + " --stop-after-steps 11");
  ASSERT_EQ(stopped.status, 0) << stopped.out;
  EXPECT_TRUE(nlohmann::json::parse(stopped.last_line)["stopped_early"].get<bool>());
  CliRun resumed = run(common + "--checkpoint-dir " + b.string() + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("resumed from"), std::string::npos);

  auto ca = train::load_checkpoint(a / "last.ckpt");
  auto cb = train::load_checkpoint(b / "last.ckpt");
  EXPECT_EQ(ca.meta["step"], 16);
  EXPECT_EQ(cb.meta["step"], 16);
  ASSERT_EQ(ca.tensors.size(), cb.tensors.size());
  int compared = 0;
  for (const auto& [name, t] : ca.tensors) {
    const Tensor* u = cb.find(name);
    ASSERT_NE(u, nullptr) << name;
    ASSERT_EQ(t.shape(), u->shape()) << name;
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t[i], (*u)[i]) << name << "[" << i << "]";
    ++compared;
  }
  EXPECT_GT(compared, 10);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(TempoCli, EvalOfACheckpointReproducesTheTrainingRunsAccuracy) {
  const fs::path d = temp_dir("eval");
  CliRun t = run(std::string(kSmallRun) + "--epochs 1 --checkpoint-dir " + d.string());
  ASSERT_EQ(t.status, 0) << t.out;
  CliRun e = run("eval --checkpoint " + (d / "last.ckpt").string() + " --limit-test 128");
  ASSERT_EQ(e.status, 0) << e.out;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(t.last_line)["test_accuracy"].get<double>(),
                   nlohmann::json::parse(e.last_line)["test_accuracy"].get<double>());
  fs::remove_all(d);
}

TEST(TempoCli, TempoModeFollowsThePlainLossCurve) {
  // Blinding with power-of-two scales is exact: the two runs differ only in the summation order
  // of the products, so the first steps agree to a few ulps and later steps drift slowly (the
  // drift grows with training's sensitivity to rounding, not with a protocol error). Over 40
  // steps at a stable learning rate the per-step losses agree within 1e-2 relative; a wrong
  // decryption or key shift gives O(1) differences from the first backward on.
  const fs::path d = temp_dir("tempo_vs_plain");
  const std::string common = std::string(kSmallRun) + "--epochs 5 --seed 2 ";
  ASSERT_EQ(run(common + "--mode plain --metrics-out " + (d / "plain.jsonl").string()).status, 0);
  CliRun t = run(common + "--mode tempo --metrics-out " + (d / "tempo.jsonl").string());
  ASSERT_EQ(t.status, 0) << t.out;
  auto p = losses(d / "plain.jsonl"), q = losses(d / "tempo.jsonl");
  ASSERT_EQ(p.size(), 40u);
  ASSERT_EQ(q.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_NEAR(q[i], p[i], 1e-2 * std::abs(p[i])) << "step " << i;
  auto j = nlohmann::json::parse(t.last_line);
  EXPECT_EQ(j["mode"], "tempo");
  EXPECT_GT(j["offloaded_layers"].get<int>(), 0);
  EXPECT_GT(j["traffic"]["bytes_sent"].get<int64_t>(), 0);
  fs::remove_all(d);
}

// The tensors a worker receives in each training step of a tempo run of 3 steps (batch 64 of
// 192 samples), recorded with --record-view-steps `spec`.
std::vector<ViewEntry> recorded_view(const std::string& spec) {
  const fs::path d = temp_dir("view_" + spec);
  CliRun r =
      run("train --dataset synthetic --model cnn --batch-size 64 --limit-train 192 "
          "--limit-test 64 --threads 2 --epochs 1 --mode tempo --record-view " +
          d.string() + " --record-view-steps " + spec);
  EXPECT_EQ(r.status, 0) << r.out;
  std::vector<ViewEntry> entries = ViewReader(d.string()).entries();
  fs::remove_all(d);
  return entries;
}

TEST(TempoCli, RecordViewStepsKeepsOnlyTheChosenTrainingSteps) {
  const auto every_step = recorded_view("1-3");
  const auto second = recorded_view("2");
  const auto last = recorded_view("last");
  const auto all = recorded_view("all");
  ASSERT_FALSE(second.empty());
  // Every step sends the same operands (forward inputs and weights, then output gradients).
  EXPECT_EQ(every_step.size(), 3 * second.size());
  EXPECT_EQ(last.size(), second.size());
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(second[i].op, last[i].op) << i;
    EXPECT_EQ(second[i].shape, last[i].shape) << i;
    EXPECT_EQ(second[i].op, every_step[2 * second.size() + i].op) << i;
  }
  // "all" also keeps the evaluation pass (a forward product per offloaded layer and batch).
  EXPECT_GT(all.size(), every_step.size());

  CliRun r = run(std::string(kSmallRun) + "--record-view-steps 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("counted from 1"), std::string::npos) << r.out;
  r = run(std::string(kSmallRun) + "--mode tempo --record-view-steps last");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--record-view-steps applies to"), std::string::npos) << r.out;
}

TEST(TempoCli, BadArgumentsGiveAClearErrorAndNonZeroExit) {
  CliRun r = run("train --model no-such-model --dataset synthetic");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no-such-model"), std::string::npos) << r.out;
  r = run("train --dataset cifar10 --data-dir /nonexistent --model cnn");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent"), std::string::npos) << r.out;
  r = run("eval --checkpoint /nonexistent/last.ckpt");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent/last.ckpt"), std::string::npos) << r.out;
}

TEST(TempoCli, BenchReportsMedianStepTimeAndPeakMemoryAsJson) {
  CliRun r = run(
      "bench --model mlp --batch-size 8 --steps 3 --warmup 1 --image-size 28 --channels 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.last_line);
  EXPECT_GT(j["median_step_seconds"].get<double>(), 0);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace tempo
