// Sealed datasets and checkpoints: round trips, and every kind of tampering is rejected with an
// error naming the file and the failed check, without touching any file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "master/tee/key_file.h"
#include "master/tee/sealed_checkpoint.h"
#include "master/tee/sealed_dataset.h"

namespace tempo::tee {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kChunk = 4096;  // small chunks: a tiny dataset spans several

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

Key random_key() {
  Key k;
  random_bytes(k.bytes.data(), k.bytes.size());
  return k;
}

data::Dataset tiny_dataset(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> images(static_cast<size_t>(n) * 3 * 8 * 8);
  for (auto& b : images) b = static_cast<uint8_t>(rng());
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (auto& l : labels) l = static_cast<int32_t>(rng() % 10);
  return data::Dataset("tiny", 3, 8, 8, 10, std::move(images), std::move(labels),
                       {{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}});
}

class SealedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tempo_tee_sealed_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    key_ = random_key();
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Seals a 100/40-sample dataset (27,440 bytes of payload: 7 chunks of up to 4 KiB).
  fs::path seal_dataset(const std::string& name = "d.tds") {
    const auto p = dir_ / name;
    write_sealed_dataset(p, key_, tiny_dataset(100, 1), tiny_dataset(40, 2), kChunk);
    return p;
  }

  /// Expects reading `p` to fail with `check`, naming the file, and leaving it unchanged.
  void expect_dataset_rejected(const fs::path& p, const std::string& check,
                               const std::string& where) {
    const std::string before = slurp(p);
    try {
      read_sealed_dataset(p, key_);
      ADD_FAILURE() << where << ": tampered file was accepted";
    } catch (const SealedFileError& e) {
      if (!check.empty()) {
        EXPECT_EQ(e.check(), check) << where << ": " << e.what();
      }
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(p), before) << where;
  }

  fs::path dir_;
  Key key_;
};

/// Region boundaries of a sealed file with metadata of `meta_len` bytes.
struct Layout {
  size_t header_end, tag_end;
  std::vector<std::pair<size_t, size_t>> chunks;  // [ciphertext start, tag start)
};
Layout layout_of(const SealedHeader& h) {
  Layout l;
  l.header_end = h.serialize().size();
  l.tag_end = l.header_end + 16;
  size_t pos = l.tag_end;
  for (uint64_t i = 0; i < h.chunk_count; ++i) {
    const size_t n = std::min<uint64_t>(h.chunk_size, h.payload_bytes - i * h.chunk_size);
    l.chunks.emplace_back(pos, pos + n);
    pos += n + 16;
  }
  return l;
}

TEST_F(SealedFileTest, DatasetRoundTripsBothSplitsExactly) {
  const auto p = seal_dataset();
  const auto train = tiny_dataset(100, 1), test = tiny_dataset(40, 2);
  const SealedDataset d = read_sealed_dataset(p, key_);
  EXPECT_EQ(d.train.name(), "tiny");
  EXPECT_EQ(d.train.images(), train.images());
  EXPECT_EQ(d.train.labels(), train.labels());
  EXPECT_EQ(d.test.images(), test.images());
  EXPECT_EQ(d.test.labels(), test.labels());
  EXPECT_EQ(d.test.normalization().std, test.normalization().std);
  const SealedHeader h = read_sealed_header(p, key_);
  EXPECT_EQ(h.kind, SealedKind::kDataset);
  EXPECT_EQ(h.chunk_count, 7u);
  EXPECT_EQ(h.meta.at("train_count"), 100);
  // No plaintext image bytes appear in the file.
  const std::string file = slurp(p);
  const std::string probe(reinterpret_cast<const char*>(train.images().data()), 64);
  EXPECT_EQ(file.find(probe), std::string::npos);
}

TEST_F(SealedFileTest, EveryBitFlipInEveryRegionIsRejected) {
  const auto p = seal_dataset();
  const std::string good = slurp(p);
  const Layout l = layout_of(read_sealed_header(p, key_));
  // Every header byte, then the header tag, the first/middle/last byte of every chunk's
  // ciphertext and of every chunk tag.
  std::vector<size_t> offsets;
  for (size_t i = 0; i < l.tag_end; ++i) offsets.push_back(i);
  for (auto [b, t] : l.chunks)
    for (size_t i : {b, (b + t) / 2, t - 1, t, t + 8, t + 15}) offsets.push_back(i);
  for (size_t off : offsets) {
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x04);
    spit(p, bad);
    expect_dataset_rejected(p, "", "bit flip at byte " + std::to_string(off));
  }
}

TEST_F(SealedFileTest, ChunkTamperingNamesTheChunk) {
  const auto p = seal_dataset();
  const std::string good = slurp(p);
  const Layout l = layout_of(read_sealed_header(p, key_));
  std::string bad = good;
  bad[l.chunks[2].first + 5] ^= 1;
  spit(p, bad);
  try {
    read_sealed_dataset(p, key_);
    FAIL();
  } catch (const SealedFileError& e) {
    EXPECT_EQ(e.check(), "chunk authentication");
    EXPECT_NE(std::string(e.what()).find("chunk 2 of 7"), std::string::npos) << e.what();
  }
  bad = good;
  bad[20] ^= 1;  // inside the file id
  spit(p, bad);
  expect_dataset_rejected(p, "header authentication", "file id");
}

TEST_F(SealedFileTest, TruncationAtEveryRegionIsRejected) {
  const auto p = seal_dataset();
  const std::string good = slurp(p);
  const Layout l = layout_of(read_sealed_header(p, key_));
  for (size_t len : {size_t{0}, size_t{4}, size_t{40}, l.header_end, l.tag_end, l.chunks[1].first,
                     l.chunks[3].second, good.size() - 1}) {
    spit(p, good.substr(0, len));
    expect_dataset_rejected(p, len < 8 ? "magic" : "length", "truncated to " + std::to_string(len));
  }
  // Dropping the final chunk entirely (a chunk-aligned truncation).
  spit(p, good.substr(0, l.chunks.back().first));
  expect_dataset_rejected(p, "length", "final chunk dropped");
}

TEST_F(SealedFileTest, AppendedBytesAndChunksAreRejected) {
  const auto p = seal_dataset();
  const std::string good = slurp(p);
  const Layout l = layout_of(read_sealed_header(p, key_));
  spit(p, good + "x");
  expect_dataset_rejected(p, "length", "one trailing byte");
  // A copy of chunk 0 appended as an extra chunk.
  spit(p, good + good.substr(l.chunks[0].first, kChunk + 16));
  expect_dataset_rejected(p, "length", "extra chunk");
}

TEST_F(SealedFileTest, ReorderedOrDuplicatedChunksAreRejected) {
  const auto p = seal_dataset();
  const std::string good = slurp(p);
  const Layout l = layout_of(read_sealed_header(p, key_));
  const auto chunk = [&](int i) { return good.substr(l.chunks[i].first, kChunk + 16); };
  const std::string head = good.substr(0, l.tag_end), tail = good.substr(l.chunks[2].first);
  spit(p, head + chunk(1) + chunk(0) + tail);
  expect_dataset_rejected(p, "chunk authentication", "chunks 0 and 1 swapped");
  spit(p, head + chunk(0) + chunk(0) + tail);
  expect_dataset_rejected(p, "chunk authentication", "chunk 0 duplicated over chunk 1");
}

TEST_F(SealedFileTest, ChunksFromAnotherFileWithTheSameKeyAreRejected) {
  const auto a = seal_dataset("a.tds"), b = seal_dataset("b.tds");  // same content and key
  const std::string fa = slurp(a), fb = slurp(b);
  const Layout l = layout_of(read_sealed_header(a, key_));
  std::string spliced = fa;
  spliced.replace(l.chunks[1].first, kChunk + 16, fb.substr(l.chunks[1].first, kChunk + 16));
  spit(a, spliced);
  expect_dataset_rejected(a, "chunk authentication", "chunk 1 from another file");
  // b's header with a's chunks.
  spit(a, fb.substr(0, l.tag_end) + fa.substr(l.tag_end));
  expect_dataset_rejected(a, "chunk authentication", "header of another file");
}

TEST_F(SealedFileTest, WrongKeyIsReportedAsSuch) {
  const auto p = seal_dataset();
  Key other = random_key();
  try {
    read_sealed_dataset(p, other);
    FAIL();
  } catch (const SealedFileError& e) {
    EXPECT_EQ(e.check(), "key");
    EXPECT_NE(std::string(e.what()).find("wrong key"), std::string::npos);
  }
}

TEST_F(SealedFileTest, KindIsChecked) {
  const auto p = seal_dataset();
  try {
    load_sealed_checkpoint(p, key_, false);
    FAIL();
  } catch (const SealedFileError& e) {
    EXPECT_EQ(e.check(), "kind");
  }
}

TEST_F(SealedFileTest, EmptyPayloadStillHasAnAuthenticatedFinalChunk) {
  const auto p = dir_ / "empty.tds";
  SealedWriter w(p, key_, SealedKind::kModel, 0, {{"x", 1}}, 0, kChunk);
  w.commit();
  SealedReader r(p, key_, SealedKind::kModel);
  r.finish();
  EXPECT_EQ(r.header().chunk_count, 1u);
  const std::string good = slurp(p);
  spit(p, good.substr(0, good.size() - 16));
  EXPECT_THROW(SealedReader(p, key_, SealedKind::kModel), SealedFileError);
}

TEST_F(SealedFileTest, FailedWriteLeavesTheOldFile) {
  const auto p = seal_dataset();
  const std::string before = slurp(p);
  {
    SealedWriter w(p, key_, SealedKind::kDataset, 100, {}, 0, kChunk);
    w.write("abc", 3);
  }  // destroyed without commit
  EXPECT_EQ(slurp(p), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SealedFileTest, KeyFilesAcceptHexAndRawAndRefuseOverwrite) {
  const auto hex = dir_ / "k.hex";
  const Key k = generate_key_file(hex);
  EXPECT_EQ(load_key_file(hex).bytes, k.bytes);
  EXPECT_EQ(fs::status(hex).permissions() & fs::perms::group_read, fs::perms::none);
  EXPECT_THROW(generate_key_file(hex), std::runtime_error);
  EXPECT_EQ(load_key_file(hex).bytes, k.bytes);
  spit(dir_ / "k.raw", std::string(reinterpret_cast<const char*>(k.bytes.data()), 32));
  EXPECT_EQ(load_key_file(dir_ / "k.raw").bytes, k.bytes);
  spit(dir_ / "short", "abcd");
  EXPECT_THROW(load_key_file(dir_ / "short"), std::runtime_error);
  spit(dir_ / "nothex", std::string(64, 'g'));
  EXPECT_THROW(load_key_file(dir_ / "nothex"), std::runtime_error);
}

// ---- checkpoints -----------------------------------------------------------------------------

train::Checkpoint tiny_checkpoint(float v) {
  train::Checkpoint c;
  c.meta = {{"step", static_cast<int>(v)}, {"model", "tiny"}};
  Tensor w(Shape{64, 40});
  for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = v + float(i);
  c.tensors.emplace_back("model/w", w);
  c.tensors.emplace_back("model/b", Tensor(Shape{3}));
  c.tensors.back().second.data()[1] = v;
  return c;
}

TEST_F(SealedFileTest, CheckpointRoundTripsWithItsVersion) {
  const auto p = dir_ / "last.ckpt";
  save_sealed_checkpoint(p, key_, tiny_checkpoint(1), 1);
  const auto loaded = load_sealed_checkpoint(p, key_);
  EXPECT_EQ(loaded.header.version, 1u);
  EXPECT_EQ(loaded.checkpoint.meta, tiny_checkpoint(1).meta);
  ASSERT_EQ(loaded.checkpoint.tensors.size(), 2u);
  const Tensor& w = *loaded.checkpoint.find("model/w");
  EXPECT_EQ(w.shape(), (Shape{64, 40}));
  EXPECT_EQ(w.data()[100], 101.0f);
  EXPECT_EQ(loaded.checkpoint.find("model/b")->data()[1], 1.0f);
  EXPECT_TRUE(looks_sealed(p));
  EXPECT_EQ(read_checkpoint_state(p, key_)->version, 1u);
  // Versions must increase.
  EXPECT_THROW(save_sealed_checkpoint(p, key_, tiny_checkpoint(2), 1), std::invalid_argument);
}

TEST_F(SealedFileTest, CheckpointTamperingAnywhereIsRejected) {
  const auto p = dir_ / "last.ckpt";
  save_sealed_checkpoint(p, key_, tiny_checkpoint(1), 1);
  const std::string good = slurp(p);
  const SealedHeader h = load_sealed_checkpoint(p, key_).header;
  const Layout l = layout_of(h);
  std::vector<size_t> offsets = {
      0, 9, 13, 20, 33, 41, 49, 57, 65, 73, l.header_end - 1, l.header_end, l.tag_end - 1};
  for (auto [b, t] : l.chunks) offsets.insert(offsets.end(), {b, t - 1, t, t + 15});
  for (size_t off : offsets) {
    std::string bad = good;
    bad[off] ^= 0x10;
    spit(p, bad);
    EXPECT_THROW(load_sealed_checkpoint(p, key_), SealedFileError) << "byte " << off;
    EXPECT_EQ(slurp(p), bad);
  }
  spit(p, good.substr(0, good.size() - 3));
  EXPECT_THROW(load_sealed_checkpoint(p, key_), SealedFileError);
  spit(p, good);
  EXPECT_NO_THROW(load_sealed_checkpoint(p, key_));
  EXPECT_THROW(load_sealed_checkpoint(p, random_key()), SealedFileError);
}

TEST_F(SealedFileTest, AnOlderCheckpointCopiedOverTheLatestIsARollback) {
  const auto p = dir_ / "last.ckpt";
  save_sealed_checkpoint(p, key_, tiny_checkpoint(1), 1);
  const std::string v1 = slurp(p);
  save_sealed_checkpoint(p, key_, tiny_checkpoint(2), 2);
  const std::string v2 = slurp(p);
  spit(p, v1);
  try {
    load_sealed_checkpoint(p, key_);
    FAIL() << "rollback accepted";
  } catch (const SealedFileError& e) {
    EXPECT_EQ(e.check(), "rollback");
    EXPECT_NE(std::string(e.what()).find("version 1 is older than the latest recorded version 2"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(slurp(p), v1);  // nothing overwritten
  spit(p, v2);
  EXPECT_EQ(load_sealed_checkpoint(p, key_).header.version, 2u);
}

TEST_F(SealedFileTest, RollbackStateMustBePresentAuthenticAndForThisFile) {
  const auto p = dir_ / "last.ckpt";
  save_sealed_checkpoint(p, key_, tiny_checkpoint(1), 1);
  const std::string state = slurp(state_path_for(p));
  // Missing.
  fs::remove(state_path_for(p));
  EXPECT_THROW(load_sealed_checkpoint(p, key_), SealedFileError);
  // Modified (a lower recorded version).
  std::string bad = state;
  bad[12] = 0;
  spit(state_path_for(p), bad);
  EXPECT_THROW(load_sealed_checkpoint(p, key_), SealedFileError);
  // Another checkpoint's state (different name) does not authenticate here.
  const auto q = dir_ / "other.ckpt";
  save_sealed_checkpoint(q, key_, tiny_checkpoint(1), 1);
  fs::copy_file(state_path_for(q), state_path_for(p), fs::copy_options::overwrite_existing);
  EXPECT_THROW(load_sealed_checkpoint(p, key_), SealedFileError);
  // Same version, another file: replaced by a different checkpoint of the same version.
  spit(state_path_for(p), state);
  EXPECT_NO_THROW(load_sealed_checkpoint(p, key_));
  fs::copy_file(q, p, fs::copy_options::overwrite_existing);
  try {
    load_sealed_checkpoint(p, key_);
    FAIL();
  } catch (const SealedFileError& e) {
    EXPECT_EQ(e.check(), "rollback");
  }
}

}  // namespace
}  // namespace tempo::tee
