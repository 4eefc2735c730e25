#include "master/tee/sealed_checkpoint.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "master/train/atomic_file.h"

namespace tempo::tee {

namespace {

constexpr char kStateMagic[8] = {'T', 'E', 'M', 'P', 'O', 'S', 'T', 'A'};
constexpr uint32_t kStateFormat = 1;
constexpr size_t kStateBodyBytes = 8 + 4 + 8 + 16;

Key state_key(const Key& key, const std::filesystem::path& checkpoint) {
  return derive_key(key, "tempo checkpoint state v1", as_bytes(checkpoint.filename().string()));
}

uint64_t tensor_bytes(const Tensor& t) { return uint64_t(t.numel()) * sizeof(float); }

}  // namespace

std::filesystem::path state_path_for(const std::filesystem::path& checkpoint) {
  auto p = checkpoint;
  p += ".state";
  return p;
}

std::optional<CheckpointState> read_checkpoint_state(const std::filesystem::path& checkpoint,
                                                     const Key& key) {
  const auto path = state_path_for(checkpoint);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::nullopt;
    throw SealedFileError(path.string(), "rollback state", "cannot open");
  }
  const Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() != kStateBodyBytes + 32 || std::memcmp(b.data(), kStateMagic, 8) != 0)
    throw SealedFileError(path.string(), "rollback state", "not a Tempo checkpoint state file");
  const Digest mac = hmac_sha256(state_key(key, checkpoint), {b.data(), kStateBodyBytes});
  if (!equal_ct(mac, {b.data() + kStateBodyBytes, 32}))
    throw SealedFileError(path.string(), "rollback state",
                          "authentication failed (modified, wrong key, or belongs to another "
                          "checkpoint)");
  uint32_t format;
  std::memcpy(&format, b.data() + 8, 4);
  if (format != kStateFormat)
    throw SealedFileError(path.string(), "rollback state",
                          "unsupported format " + std::to_string(format));
  CheckpointState s;
  std::memcpy(&s.version, b.data() + 12, 8);
  std::memcpy(s.file_id.data(), b.data() + 20, 16);
  return s;
}

void save_sealed_checkpoint(const std::filesystem::path& path, const Key& key,
                            const train::Checkpoint& ckpt, uint64_t version, SealedKind kind) {
  if (version == 0) throw std::invalid_argument("sealed checkpoint: versions start at 1");
  if (const auto recorded = read_checkpoint_state(path, key);
      recorded && recorded->version >= version)
    throw std::invalid_argument("sealed checkpoint " + path.string() + ": version " +
                                std::to_string(version) + " is not above the recorded " +
                                std::to_string(recorded->version));
  std::set<std::string> names;
  const std::string meta = ckpt.meta.dump();
  uint64_t size = 8 + meta.size() + 8;
  for (const auto& [name, t] : ckpt.tensors) {
    if (name.empty() || !names.insert(name).second)
      throw std::invalid_argument("sealed checkpoint: empty or duplicate tensor name '" + name +
                                  "'");
    if (t.numel() > 0 && t.empty())
      throw std::invalid_argument("sealed checkpoint: tensor " + name + " has no storage");
    size += 4 + name.size() + 4 + 8 * uint64_t(t.rank()) + tensor_bytes(t);
  }
  SealedWriter w(path, key, kind, size, {{"tensors", ckpt.tensors.size()}}, version);
  const auto pod = [&w](auto v) { w.write(&v, sizeof v); };
  pod(uint64_t(meta.size()));
  w.write(meta.data(), meta.size());
  pod(uint64_t(ckpt.tensors.size()));
  for (const auto& [name, t] : ckpt.tensors) {
    pod(uint32_t(name.size()));
    w.write(name.data(), name.size());
    pod(uint32_t(t.rank()));
    for (int i = 0; i < t.rank(); ++i) pod(int64_t(t.dim(i)));
    if (t.numel() > 0) w.write(t.data(), tensor_bytes(t));
  }
  const std::array<uint8_t, 16> file_id = w.header().file_id;
  w.commit();

  // Recorded after the checkpoint: a crash in between leaves a checkpoint newer than the state,
  // which loads (and the next save records it).
  Bytes b(kStateMagic, kStateMagic + 8);
  b.resize(kStateBodyBytes);
  std::memcpy(b.data() + 8, &kStateFormat, 4);
  std::memcpy(b.data() + 12, &version, 8);
  std::memcpy(b.data() + 20, file_id.data(), 16);
  const Digest mac = hmac_sha256(state_key(key, path), b);
  b.insert(b.end(), mac.begin(), mac.end());
  train::write_file_atomically(state_path_for(path), std::string(b.begin(), b.end()));
}

LoadedCheckpoint load_sealed_checkpoint(const std::filesystem::path& path, const Key& key,
                                        bool check_rollback) {
  SealedReader r(path, key, std::nullopt);
  const SealedHeader& h = r.header();
  if (h.kind != SealedKind::kCheckpoint && h.kind != SealedKind::kModel)
    r.fail("kind", "holds a " + kind_name(h.kind) + ", expected a checkpoint or model");
  if (check_rollback) {
    const auto state = read_checkpoint_state(path, key);
    if (!state)
      r.fail("rollback", "its state file " + state_path_for(path).string() +
                             " is missing, so a rollback cannot be ruled out");
    if (h.version < state->version)
      r.fail("rollback", "checkpoint version " + std::to_string(h.version) +
                             " is older than the latest recorded version " +
                             std::to_string(state->version) + " (an old checkpoint was restored)");
    if (h.version == state->version && !equal_ct(h.file_id, state->file_id))
      r.fail("rollback", "version " + std::to_string(h.version) +
                             " was recorded for another file (file id " + to_hex(state->file_id) +
                             ", this one " + to_hex(h.file_id) + ")");
  }
  uint64_t left = h.payload_bytes;
  const auto take = [&](void* p, uint64_t n, const char* what) {
    if (n > left) r.fail("content", std::string(what) + " runs past the end of the payload");
    r.read(p, n);
    left -= n;
  };
  const auto pod = [&]<class T>(T, const char* what) {
    T v;
    take(&v, sizeof v, what);
    return v;
  };
  LoadedCheckpoint out;
  out.header = h;
  const auto meta_len = pod(uint64_t{}, "metadata length");
  if (meta_len > left) r.fail("content", "metadata runs past the end of the payload");
  std::string meta(meta_len, '\0');
  take(meta.data(), meta_len, "metadata");
  const auto count = pod(uint64_t{}, "tensor count");
  for (uint64_t k = 0; k < count; ++k) {
    const auto len = pod(uint32_t{}, "tensor name length");
    if (len == 0 || len > left) r.fail("content", "tensor " + std::to_string(k) + " name");
    std::string name(len, '\0');
    take(name.data(), len, "tensor name");
    const auto rank = pod(uint32_t{}, "tensor rank");
    if (rank > uint32_t(Shape::kMaxRank)) r.fail("content", "tensor " + name + " rank");
    Shape shape;
    uint64_t numel = 1;
    for (uint32_t i = 0; i < rank; ++i) {
      const auto d = pod(int64_t{}, "tensor dims");
      if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel) ||
          numel > left / sizeof(float))
        r.fail("content", "tensor " + name + " runs past the end of the payload");
      shape.push_back(d);
    }
    Tensor t(shape);
    if (numel > 0) take(t.data(), numel * sizeof(float), "tensor data");
    out.checkpoint.tensors.emplace_back(std::move(name), std::move(t));
  }
  if (left != 0) r.fail("content", std::to_string(left) + " bytes after the tensors");
  r.finish();
  try {
    out.checkpoint.meta = nlohmann::json::parse(meta);
  } catch (const nlohmann::json::exception& e) {
    r.fail("content", std::string("malformed metadata: ") + e.what());
  }
  return out;
}

bool looks_sealed(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  return in.read(magic, 8) && std::memcmp(magic, kSealedMagic, 8) == 0;
}

}  // namespace tempo::tee
