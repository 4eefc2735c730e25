#include "master/train/checkpoint.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "master/train/atomic_file.h"

namespace tempo::train {

static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian");

namespace {

constexpr size_t kHashBytes = crypto_generichash_BYTES;  // 32: BLAKE2b-256
constexpr uint64_t kHeaderBytes = 8 + 4 + 4 + 8;         // magic, version, reserved, file size

// ---- writing -----------------------------------------------------------------------------

/// Appends to an AtomicFile while hashing what it writes.
class HashingWriter {
 public:
  explicit HashingWriter(AtomicFile& f) : file_(f) {
    crypto_generichash_init(&state_, nullptr, 0, kHashBytes);
  }
  void bytes(const void* p, size_t n) {
    crypto_generichash_update(&state_, static_cast<const unsigned char*>(p), n);
    file_.write(p, n);
  }
  template <class T>
  void pod(T v) {
    bytes(&v, sizeof v);
  }
  void finish() {
    unsigned char digest[kHashBytes];
    crypto_generichash_final(&state_, digest, kHashBytes);
    file_.write(digest, kHashBytes);
  }

 private:
  AtomicFile& file_;
  crypto_generichash_state state_;
};

uint64_t data_bytes(const Tensor& t) { return static_cast<uint64_t>(t.numel()) * sizeof(float); }

void validate_for_save(const Checkpoint& ckpt) {
  std::set<std::string> names;
  for (const auto& [name, t] : ckpt.tensors) {
    if (name.size() > UINT32_MAX) throw std::invalid_argument("save_checkpoint: name too long");
    if (name.empty()) throw std::invalid_argument("save_checkpoint: a tensor has an empty name");
    if (!names.insert(name).second)
      throw std::invalid_argument("save_checkpoint: duplicate tensor name " + name);
    if (t.numel() > 0 && t.empty())
      throw std::invalid_argument("save_checkpoint: tensor " + name + " has no storage");
  }
}

// ---- reading -----------------------------------------------------------------------------

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void fail_load(const std::string& path, const std::string& why) {
  throw std::runtime_error("checkpoint " + path + ": " + why);
}

/// Reads a checkpoint whose size and checksum are already verified; every read is still
/// bounds-checked so that a writer bug cannot make us allocate or read past the end.
class Reader {
 public:
  Reader(std::FILE* f, uint64_t pos, uint64_t end, const std::string& path)
      : f_(f), pos_(pos), end_(end), path_(path) {}

  [[noreturn]] void malformed(const std::string& why) const {
    fail_load(path_, "malformed tensor table: " + why);
  }
  void bytes(void* p, uint64_t n, const char* what) {
    if (n > end_ - pos_) malformed(std::string(what) + " runs past the end of the file");
    if (n > 0 && std::fread(p, 1, n, f_) != n) fail_load(path_, "read error");
    pos_ += n;
  }
  template <class T>
  T pod(const char* what) {
    T v;
    bytes(&v, sizeof v, what);
    return v;
  }
  uint64_t remaining() const { return end_ - pos_; }

 private:
  std::FILE* f_;
  uint64_t pos_, end_;
  const std::string& path_;
};

}  // namespace

const Tensor* Checkpoint::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt) {
  validate_for_save(ckpt);
  if (sodium_init() < 0) throw std::runtime_error("save_checkpoint: libsodium failed to start");
  const std::string meta = ckpt.meta.dump();
  uint64_t size = kHeaderBytes + 8 + meta.size() + 8 + kHashBytes;
  for (const auto& [name, t] : ckpt.tensors)
    size += 4 + name.size() + 4 + 8 * static_cast<uint64_t>(t.rank()) + data_bytes(t);

  AtomicFile file(path);
  HashingWriter w(file);
  w.bytes(kCheckpointMagic, sizeof kCheckpointMagic);
  w.pod<uint32_t>(kCheckpointVersion);
  w.pod<uint32_t>(0);
  w.pod<uint64_t>(size);
  w.pod<uint64_t>(meta.size());
  w.bytes(meta.data(), meta.size());
  w.pod<uint64_t>(ckpt.tensors.size());
  for (const auto& [name, t] : ckpt.tensors) {
    w.pod<uint32_t>(static_cast<uint32_t>(name.size()));
    w.bytes(name.data(), name.size());
    w.pod<uint32_t>(static_cast<uint32_t>(t.rank()));
    for (int i = 0; i < t.rank(); ++i) w.pod<int64_t>(t.dim(i));
    w.bytes(t.data(), data_bytes(t));
  }
  w.finish();
  file.commit();
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  const auto fail = [&](const std::string& why) { fail_load(name, why); };
  File f(std::fopen(name.c_str(), "rb"));
  if (!f) fail(std::string("cannot open: ") + std::strerror(errno));
  std::error_code ec;
  const uint64_t actual = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read its size: " + ec.message());

  // Header, checked field by field so that the message says what is wrong.
  unsigned char header[kHeaderBytes];
  const size_t got = std::fread(header, 1, kHeaderBytes, f.get());
  if (std::memcmp(header, kCheckpointMagic, std::min(got, sizeof kCheckpointMagic)) != 0)
    fail("bad magic (not a Tempo checkpoint)");
  if (got < kHeaderBytes)
    fail("truncated: " + std::to_string(actual) + " bytes, shorter than the header");
  uint32_t version;
  uint64_t declared;
  std::memcpy(&version, header + 8, 4);
  std::memcpy(&declared, header + 16, 8);
  if (version != kCheckpointVersion)
    fail("unsupported format version " + std::to_string(version) + " (this build reads " +
         std::to_string(kCheckpointVersion) + ")");
  if (actual < declared)
    fail("truncated: " + std::to_string(actual) + " bytes, header declares " +
         std::to_string(declared));
  if (actual > declared)
    fail(std::to_string(actual - declared) + " unexpected trailing bytes (header declares " +
         std::to_string(declared) + ")");
  if (declared < kHeaderBytes + 16 + kHashBytes) fail("header declares an impossible size");

  // Checksum over everything before the digest, before anything else is trusted.
  if (sodium_init() < 0) fail("libsodium failed to start");
  crypto_generichash_state hs;
  crypto_generichash_init(&hs, nullptr, 0, kHashBytes);
  crypto_generichash_update(&hs, header, kHeaderBytes);
  std::vector<unsigned char> chunk(size_t{1} << 20);
  for (uint64_t left = declared - kHashBytes - kHeaderBytes; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    if (std::fread(chunk.data(), 1, n, f.get()) != n) fail("read error");
    crypto_generichash_update(&hs, chunk.data(), n);
    left -= n;
  }
  unsigned char expected[kHashBytes], stored[kHashBytes];
  crypto_generichash_final(&hs, expected, kHashBytes);
  if (std::fread(stored, 1, kHashBytes, f.get()) != kHashBytes) fail("read error");
  if (sodium_memcmp(expected, stored, kHashBytes) != 0)
    fail("checksum mismatch (the file is corrupted)");

  // Contents.
  if (std::fseek(f.get(), static_cast<long>(kHeaderBytes), SEEK_SET) != 0) fail("seek error");
  Reader r(f.get(), kHeaderBytes, declared - kHashBytes, name);
  Checkpoint ckpt;
  const auto meta_len = r.pod<uint64_t>("metadata length");
  if (meta_len > r.remaining()) r.malformed("metadata runs past the end of the file");
  std::string meta(meta_len, '\0');
  r.bytes(meta.data(), meta_len, "metadata");
  try {
    ckpt.meta = nlohmann::json::parse(meta);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed JSON metadata: ") + e.what());
  }
  const auto count = r.pod<uint64_t>("tensor count");
  std::set<std::string> names;
  for (uint64_t k = 0; k < count; ++k) {
    const auto len = r.pod<uint32_t>("tensor name length");
    if (len == 0 || len > r.remaining()) r.malformed("tensor " + std::to_string(k) + " name");
    std::string tname(len, '\0');
    r.bytes(tname.data(), len, "tensor name");
    if (!names.insert(tname).second) r.malformed("duplicate tensor " + tname);
    const auto rank = r.pod<uint32_t>("tensor rank");
    if (rank > static_cast<uint32_t>(Shape::kMaxRank))
      r.malformed("tensor " + tname + " has rank " + std::to_string(rank));
    Shape shape;
    uint64_t numel = 1;
    for (uint32_t i = 0; i < rank; ++i) {
      const auto d = r.pod<int64_t>("tensor dims");
      if (d < 0) r.malformed("tensor " + tname + " has a negative dimension");
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) ||
          numel > r.remaining() / sizeof(float))
        r.malformed("tensor " + tname + " data runs past the end of the file");
      shape.push_back(d);
    }
    Tensor t(shape);
    r.bytes(t.data(), numel * sizeof(float), "tensor data");
    ckpt.tensors.emplace_back(std::move(tname), std::move(t));
  }
  if (r.remaining() != 0) r.malformed(std::to_string(r.remaining()) + " bytes after the tensors");
  return ckpt;
}

// ---- model and optimizer state -----------------------------------------------------------

namespace {

/// Matches `wanted` (name -> destination) against the checkpoint tensors under `prefix`, all of
/// which must be used; then copies. Nothing is modified unless everything matches.
void restore_strict(const Checkpoint& ckpt, const std::string& prefix,
                    const std::vector<std::pair<std::string, Tensor*>>& wanted,
                    const std::string& what) {
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error("restore " + what + ": " + why);
  };
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : ckpt.tensors)
    if (name.starts_with(prefix)) given.emplace(name.substr(prefix.size()), &t);
  std::vector<const Tensor*> src;
  for (const auto& [name, dst] : wanted) {
    auto it = given.find(name);
    if (it == given.end()) fail("checkpoint has no tensor " + prefix + name);
    if (it->second->shape() != dst->shape())
      fail("tensor " + prefix + name + " has shape " + it->second->shape().to_string() +
           " in the checkpoint, " + dst->shape().to_string() + " in the " + what);
    src.push_back(it->second);
    given.erase(it);
  }
  if (!given.empty())
    fail("checkpoint tensor " + prefix + given.begin()->first + " matches nothing in the " + what);
  for (size_t i = 0; i < wanted.size(); ++i)
    if (wanted[i].second->numel() > 0)
      std::memcpy(wanted[i].second->data(), src[i]->data(),
                  static_cast<size_t>(src[i]->numel()) * sizeof(float));
}

}  // namespace

void add_model_state(Checkpoint& ckpt, nn::Module& model) {
  for (const auto& p : nn::named_parameters(model))
    ckpt.tensors.emplace_back(kModelPrefix + p.path, p.param->value);
  for (const auto& b : nn::named_buffers(model))
    ckpt.tensors.emplace_back(kModelPrefix + b.path, *b.tensor);
}

void add_optimizer_state(Checkpoint& ckpt, const optim::Optimizer& optimizer) {
  optim::OptimizerState s = optimizer.state();
  ckpt.meta["optimizer"] = std::move(s.scalars);
  for (auto& [name, t] : s.tensors) ckpt.tensors.emplace_back(kOptimizerPrefix + name, t);
}

void restore_model_state(const Checkpoint& ckpt, nn::Module& model) {
  std::vector<std::pair<std::string, Tensor*>> wanted;
  for (const auto& p : nn::named_parameters(model)) wanted.emplace_back(p.path, &p.param->value);
  for (const auto& b : nn::named_buffers(model)) wanted.emplace_back(b.path, b.tensor);
  restore_strict(ckpt, kModelPrefix, wanted, "model");
}

void restore_optimizer_state(const Checkpoint& ckpt, optim::Optimizer& optimizer) {
  if (!ckpt.meta.is_object() || !ckpt.meta.contains("optimizer"))
    throw std::runtime_error("restore optimizer: checkpoint metadata has no \"optimizer\"");
  optim::OptimizerState s;
  s.scalars = ckpt.meta["optimizer"];
  const std::string prefix = kOptimizerPrefix;
  for (const auto& [name, t] : ckpt.tensors)
    if (name.starts_with(prefix)) s.tensors.emplace_back(name.substr(prefix.size()), t);
  optimizer.load_state(s);
}

nlohmann::json rng_state_to_json(const Rng::State& state) {
  nlohmann::json j = nlohmann::json::array();
  for (uint64_t w : state) j.push_back(w);
  return j;
}

Rng::State rng_state_from_json(const nlohmann::json& j) {
  if (!j.is_array() || j.size() != 4)
    throw std::runtime_error("RNG state: expected an array of 4 unsigned integers");
  Rng::State s;
  for (size_t i = 0; i < 4; ++i) {
    if (!j[i].is_number_unsigned() && !(j[i].is_number_integer() && j[i].get<int64_t>() >= 0))
      throw std::runtime_error("RNG state: entry " + std::to_string(i) +
                               " is not an unsigned "
                               "64-bit integer");
    s[i] = j[i].get<uint64_t>();
  }
  if (s == Rng::State{}) throw std::runtime_error("RNG state: all-zero state is invalid");
  return s;
}

}  // namespace tempo::train
