#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "master/nn/linear.h"
#include "master/nn/sequential.h"
#include "master/optim/sgd.h"
#include "master/train/atomic_file.h"
#include "master/train/checkpoint.h"

namespace tempo::train {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

Tensor ramp(const Shape& s, float start) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = start + 0.25f * static_cast<float>(i);
  return t;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tempo_ckpt_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Checkpoint sample() {
    Checkpoint c;
    c.meta = {{"model", "mlp"}, {"step", 1234}, {"epoch", 3}, {"args", {{"lr", 0.1}}}};
    c.meta["rng"] = rng_state_to_json(Rng(42).state());
    c.tensors.emplace_back("a", ramp({2, 3}, -1.0f));
    c.tensors.emplace_back("scalar", ramp({}, 7.5f));
    c.tensors.emplace_back("image", ramp({1, 2, 2, 2}, 3.0f));
    c.tensors.emplace_back("empty", Tensor({0, 4}));
    return c;
  }
  /// Files in the test directory other than the ones named (leftover temporaries).
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  /// load_checkpoint must throw a runtime_error that names the file and contains `what`.
  void expect_rejected(const fs::path& p, const std::string& what, const std::string& context) {
    try {
      load_checkpoint(p);
      ADD_FAILURE() << context << ": accepted";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << context << ": " << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << context << ": " << msg;
    }
  }

  fs::path dir_;
};

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.meta, b.meta);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    ASSERT_EQ(a.tensors[i].second.shape(), b.tensors[i].second.shape()) << a.tensors[i].first;
    for (int64_t k = 0; k < a.tensors[i].second.numel(); ++k)
      EXPECT_EQ(a.tensors[i].second[k], b.tensors[i].second[k]);
  }
}

TEST_F(CheckpointTest, RoundTripPreservesMetadataNamesShapesAndBits) {
  const Checkpoint c = sample();
  save_checkpoint(dir_ / "c.ckpt", c);
  const Checkpoint back = load_checkpoint(dir_ / "c.ckpt");
  expect_same(c, back);
  EXPECT_EQ(rng_state_from_json(back.meta["rng"]), Rng(42).state());
  ASSERT_NE(back.find("image"), nullptr);
  EXPECT_EQ(back.find("nope"), nullptr);
  EXPECT_EQ(listing(), std::vector<std::string>{"c.ckpt"});
}

TEST_F(CheckpointTest, SavingAgainReplacesTheFile) {
  Checkpoint c = sample();
  save_checkpoint(dir_ / "c.ckpt", c);
  c.meta["step"] = 99;
  c.tensors.pop_back();
  save_checkpoint(dir_ / "c.ckpt", c);
  expect_same(c, load_checkpoint(dir_ / "c.ckpt"));
  EXPECT_EQ(listing(), std::vector<std::string>{"c.ckpt"});
}

TEST_F(CheckpointTest, EveryBitFlipIsRejectedWithTheFailedCheck) {
  const fs::path good = dir_ / "good.ckpt", bad = dir_ / "bad.ckpt";
  save_checkpoint(good, sample());
  const std::string bytes = read_bytes(good);
  const size_t meta_at = 32, n = bytes.size();
  const size_t name_at = bytes.find("image");
  ASSERT_NE(name_at, std::string::npos);
  struct Case {
    size_t offset;
    const char* expect;
    const char* where;
  };
  const Case cases[] = {
      {0, "bad magic", "magic"},
      {7, "bad magic", "magic"},
      {8, "unsupported format version", "version"},
      {12, "checksum mismatch", "reserved"},
      {16, "header declares", "file size"},
      {24, "checksum mismatch", "metadata length"},
      {meta_at + 3, "checksum mismatch", "metadata"},
      {name_at + 1, "checksum mismatch", "tensor name"},
      {name_at + 5 + 4, "checksum mismatch", "tensor rank"},
      {n - 32 - 3, "checksum mismatch", "tensor data"},
      {n - 32, "checksum mismatch", "checksum, first byte"},
      {n - 1, "checksum mismatch", "checksum, last byte"},
  };
  for (const Case& c : cases) {
    for (int bit : {0, 7}) {
      std::string flipped = bytes;
      flipped[c.offset] = static_cast<char>(flipped[c.offset] ^ (1 << bit));
      write_bytes(bad, flipped);
      expect_rejected(bad, c.expect, std::string(c.where) + " bit " + std::to_string(bit));
    }
  }
}

TEST_F(CheckpointTest, TruncationAtAnyPointIsRejected) {
  const fs::path good = dir_ / "good.ckpt", bad = dir_ / "bad.ckpt";
  save_checkpoint(good, sample());
  const std::string bytes = read_bytes(good);
  for (size_t len : {size_t{0}, size_t{5}, size_t{8}, size_t{20}, size_t{24}, size_t{40},
                     bytes.size() / 2, bytes.size() - 32, bytes.size() - 1}) {
    write_bytes(bad, bytes.substr(0, len));
    expect_rejected(bad, "truncated", "length " + std::to_string(len));
  }
  write_bytes(bad, bytes + "x");
  expect_rejected(bad, "trailing bytes", "one extra byte");
  expect_rejected(dir_ / "missing.ckpt", "cannot open", "missing file");
}

TEST_F(CheckpointTest, MalformedJsonWithAValidChecksumIsRejected) {
  const fs::path p = dir_ / "c.ckpt";
  save_checkpoint(p, sample());
  std::string bytes = read_bytes(p);
  ASSERT_EQ(bytes[32], '{');
  bytes[32] = '(';  // same length, still checksummed correctly below: only the JSON is wrong
  const size_t body = bytes.size() - crypto_generichash_BYTES;
  crypto_generichash(reinterpret_cast<unsigned char*>(bytes.data() + body),
                     crypto_generichash_BYTES, reinterpret_cast<const unsigned char*>(bytes.data()),
                     body, nullptr, 0);
  write_bytes(p, bytes);
  expect_rejected(p, "malformed JSON metadata", "JSON");
}

TEST_F(CheckpointTest, FailedWriteLeavesThePreviousFileIntactAndNoTemporary) {
  const fs::path p = dir_ / "c.ckpt";
  const Checkpoint old = sample();
  save_checkpoint(p, old);
  Checkpoint big;
  big.tensors.emplace_back("w", Tensor::zeros({1 << 20}));  // 4 MiB, above the limit below

  // A file-size limit makes write() fail with EFBIG, as a full disk would with ENOSPC.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    save_checkpoint(p, big);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);

  EXPECT_NE(message.find("write"), std::string::npos) << message;
  EXPECT_NE(message.find(p.string()), std::string::npos) << message;
  expect_same(old, load_checkpoint(p));
  EXPECT_EQ(listing(), std::vector<std::string>{"c.ckpt"});
}

TEST_F(CheckpointTest, FailedRenameRemovesTheTemporary) {
  fs::create_directory(dir_ / "occupied");
  write_bytes(dir_ / "occupied" / "x", "keep");
  EXPECT_THROW(save_checkpoint(dir_ / "occupied", sample()), std::runtime_error);
  EXPECT_EQ(listing(), std::vector<std::string>{"occupied"});
  EXPECT_EQ(read_bytes(dir_ / "occupied" / "x"), "keep");
  EXPECT_THROW(save_checkpoint(dir_ / "no_such_dir" / "c.ckpt", sample()), std::runtime_error);
}

TEST_F(CheckpointTest, InvalidCheckpointIsRefusedBeforeTouchingTheFile) {
  const fs::path p = dir_ / "c.ckpt";
  save_checkpoint(p, sample());
  const std::string before = read_bytes(p);
  Checkpoint dup = sample();
  dup.tensors.emplace_back("a", Tensor::zeros({1}));
  EXPECT_THROW(save_checkpoint(p, dup), std::invalid_argument);
  Checkpoint no_storage;
  no_storage.tensors.emplace_back("t", Tensor());
  EXPECT_THROW(save_checkpoint(p, no_storage), std::invalid_argument);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"c.ckpt"});
}

TEST_F(CheckpointTest, AtomicFileDiscardsUncommittedWrites) {
  const fs::path p = dir_ / "f";
  write_file_atomically(p, "old");
  {
    AtomicFile f(p);
    f.write("new content", 11);
  }  // destroyed without commit()
  EXPECT_EQ(read_bytes(p), "old");
  EXPECT_EQ(listing(), std::vector<std::string>{"f"});
}

// ---- model and optimizer state -----------------------------------------------------------

std::unique_ptr<nn::Sequential> mlp(uint64_t seed, int64_t hidden = 4) {
  Rng rng(seed);
  auto m = std::make_unique<nn::Sequential>();
  m->emplace<nn::Linear>(3, hidden, rng);
  m->emplace<nn::Linear>(hidden, 2, rng);
  return m;
}

void train_one_step(nn::Module& m, optim::Optimizer& opt, float input) {
  opt.zero_grad();
  m.forward(Tensor::filled({2, 3}, input));
  m.backward(Tensor::filled({2, 2}, 1.0f));
  opt.step();
}

TEST_F(CheckpointTest, ModelAndOptimizerResumeExactly) {
  auto a = mlp(1);
  optim::SGD opt_a(nn::named_parameters(*a), {.lr = 0.1, .momentum = 0.9});
  train_one_step(*a, opt_a, 0.5f);

  Checkpoint c;
  c.meta["model"] = "mlp";
  add_model_state(c, *a);
  add_optimizer_state(c, opt_a);
  EXPECT_NE(c.find("model/0.weight"), nullptr);
  EXPECT_NE(c.find("model/1.bias"), nullptr);
  EXPECT_NE(c.find("optim/momentum_buffer/1.weight"), nullptr);
  save_checkpoint(dir_ / "c.ckpt", c);

  auto b = mlp(2);  // different initial weights
  optim::SGD opt_b(nn::named_parameters(*b), {.lr = 0.1, .momentum = 0.9});
  const Checkpoint loaded = load_checkpoint(dir_ / "c.ckpt");
  restore_model_state(loaded, *b);
  restore_optimizer_state(loaded, opt_b);
  EXPECT_EQ(opt_b.steps_taken(), 1);

  train_one_step(*a, opt_a, -0.25f);
  train_one_step(*b, opt_b, -0.25f);
  const auto pa = nn::named_parameters(*a), pb = nn::named_parameters(*b);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    for (int64_t k = 0; k < pa[i].param->value.numel(); ++k)
      ASSERT_EQ(pa[i].param->value[k], pb[i].param->value[k]) << pa[i].path;
}

void expect_restore_error(const Checkpoint& c, nn::Module& m, const std::string& what) {
  try {
    restore_model_state(c, m);
    ADD_FAILURE() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, RestoreNamesTheMismatchedMissingOrUnexpectedTensor) {
  auto a = mlp(1);
  Checkpoint c;
  add_model_state(c, *a);

  auto wide = mlp(3, /*hidden=*/5);
  const float before = nn::named_parameters(*wide)[0].param->value[0];
  expect_restore_error(c, *wide, "model/0.weight has shape [3, 4] in the checkpoint, [3, 5]");
  EXPECT_EQ(nn::named_parameters(*wide)[0].param->value[0], before);  // nothing copied

  auto deeper = mlp(3);
  Rng rng(0);
  deeper->emplace<nn::Linear>(2, 2, rng);
  expect_restore_error(c, *deeper, "checkpoint has no tensor model/2.weight");

  Checkpoint extra = c;
  extra.tensors.emplace_back("model/9.weight", Tensor::zeros({1}));
  auto same = mlp(3);
  expect_restore_error(extra, *same, "model/9.weight matches nothing");

  optim::SGD opt(nn::named_parameters(*same), {.momentum = 0.9});
  EXPECT_THROW(restore_optimizer_state(c, opt), std::runtime_error);  // no optimizer saved
}

TEST(RngStateJson, RoundTripsAndRejectsMalformedStates) {
  Rng r(7);
  r.next_u64();
  const auto j = rng_state_to_json(r.state());
  EXPECT_EQ(rng_state_from_json(nlohmann::json::parse(j.dump())), r.state());
  EXPECT_THROW(rng_state_from_json(nlohmann::json::array({1, 2, 3})), std::runtime_error);
  EXPECT_THROW(rng_state_from_json(nlohmann::json::array({1, 2, 3, -4})), std::runtime_error);
  EXPECT_THROW(rng_state_from_json(nlohmann::json::array({0, 0, 0, 0})), std::runtime_error);
}

}  // namespace
}  // namespace tempo::train
