#include "master/tee/sealed_file.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "master/tee/key_file.h"
#include "master/train/atomic_file.h"

namespace tempo::tee {

static_assert(std::endian::native == std::endian::little, "sealed files are little-endian");

namespace {

constexpr size_t kTag = Aes256Gcm::kTagBytes;

template <class T>
void put(Bytes& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Key file_key(const Key& key, const std::array<uint8_t, 16>& file_id) {
  return derive_key(key, "tempo sealed file v1", file_id);
}

Aes256Gcm::Nonce header_nonce() {
  Aes256Gcm::Nonce n;
  n.fill(0xff);  // chunk indices never reach 2^64 - 1
  return n;
}

Aes256Gcm::Nonce chunk_nonce(uint64_t index, bool final) {
  Aes256Gcm::Nonce n{};
  std::memcpy(n.data(), &index, 8);
  n[8] = final ? 1 : 0;
  return n;
}

std::array<uint8_t, 41> chunk_aad(const Digest& header_hash, uint64_t index, bool final) {
  std::array<uint8_t, 41> a{};
  std::copy(header_hash.begin(), header_hash.end(), a.begin());
  std::memcpy(a.data() + 32, &index, 8);
  a[40] = final ? 1 : 0;
  return a;
}

}  // namespace

std::string kind_name(SealedKind kind) {
  switch (kind) {
    case SealedKind::kDataset:
      return "dataset";
    case SealedKind::kCheckpoint:
      return "checkpoint";
    case SealedKind::kModel:
      return "model";
  }
  return "unknown kind " + std::to_string(static_cast<uint32_t>(kind));
}

uint64_t chunk_count_for(uint64_t payload_bytes, uint32_t chunk_size) {
  return std::max<uint64_t>(1, (payload_bytes + chunk_size - 1) / chunk_size);
}

Bytes SealedHeader::serialize() const {
  const std::string m = meta.dump();
  if (m.size() > kMaxMetaBytes) throw std::invalid_argument("sealed file: metadata too large");
  Bytes b;
  b.reserve(kSealedFixedHeaderBytes + m.size());
  b.insert(b.end(), kSealedMagic, kSealedMagic + 8);
  put<uint32_t>(b, kSealedFormatVersion);
  put<uint32_t>(b, static_cast<uint32_t>(kind));
  b.insert(b.end(), file_id.begin(), file_id.end());
  put<uint64_t>(b, version);
  put<uint32_t>(b, chunk_size);
  put<uint32_t>(b, 0);
  put<uint64_t>(b, chunk_count);
  put<uint64_t>(b, payload_bytes);
  b.insert(b.end(), key_fingerprint.begin(), key_fingerprint.end());
  put<uint32_t>(b, static_cast<uint32_t>(m.size()));
  b.insert(b.end(), m.begin(), m.end());
  return b;
}

SealedFileError::SealedFileError(const std::string& path, const std::string& check,
                                 const std::string& detail)
    : std::runtime_error("sealed file " + path + ": " + check + ": " + detail),
      path_(path),
      check_(check) {}

// ---- writing -------------------------------------------------------------------------------

SealedWriter::SealedWriter(const std::filesystem::path& target, const Key& key, SealedKind kind,
                           uint64_t payload_bytes, nlohmann::json meta, uint64_t version,
                           uint32_t chunk_size)
    : target_(target) {
  if (chunk_size == 0 || chunk_size > kMaxChunkSize)
    throw std::invalid_argument("sealed file: chunk size must be in [1, 64 MiB]");
  header_.kind = kind;
  random_bytes(header_.file_id.data(), header_.file_id.size());
  header_.version = version;
  header_.chunk_size = chunk_size;
  header_.chunk_count = chunk_count_for(payload_bytes, chunk_size);
  header_.payload_bytes = payload_bytes;
  header_.key_fingerprint = key_fingerprint(key);
  header_.meta = std::move(meta);
  const Bytes h = header_.serialize();
  header_hash_ = sha256(h);
  gcm_ = std::make_unique<Aes256Gcm>(file_key(key, header_.file_id));
  const auto tag = gcm_->seal(header_nonce(), h, nullptr, 0, nullptr);
  file_ = std::make_unique<train::AtomicFile>(target);
  file_->write(h.data(), h.size());
  file_->write(tag.data(), tag.size());
  chunk_.reserve(std::min<uint64_t>(chunk_size, payload_bytes) + kTag);
}

SealedWriter::~SealedWriter() = default;

void SealedWriter::write(const void* data, size_t n) {
  if (n > header_.payload_bytes - written_)
    throw std::logic_error("sealed file " + target_.string() + ": more payload than declared");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const size_t take = std::min<size_t>(n, header_.chunk_size - chunk_.size());
    chunk_.insert(chunk_.end(), p, p + take);
    p += take;
    n -= take;
    written_ += take;
    if (chunk_.size() == header_.chunk_size && written_ < header_.payload_bytes) seal_chunk();
  }
}

void SealedWriter::seal_chunk() {
  const bool final = chunk_index_ + 1 == header_.chunk_count;
  const size_t n = chunk_.size();
  const auto aad = chunk_aad(header_hash_, chunk_index_, final);
  chunk_.resize(n + kTag);
  const auto tag =
      gcm_->seal(chunk_nonce(chunk_index_, final), aad, chunk_.data(), n, chunk_.data());
  std::copy(tag.begin(), tag.end(), chunk_.begin() + static_cast<std::ptrdiff_t>(n));
  file_->write(chunk_.data(), chunk_.size());
  std::fill(chunk_.begin(), chunk_.end(), 0);
  chunk_.clear();
  ++chunk_index_;
}

void SealedWriter::commit() {
  if (written_ != header_.payload_bytes)
    throw std::logic_error("sealed file " + target_.string() + ": " + std::to_string(written_) +
                           " of " + std::to_string(header_.payload_bytes) +
                           " payload bytes written");
  seal_chunk();  // the final chunk (possibly empty)
  if (chunk_index_ != header_.chunk_count)
    throw std::logic_error("sealed file " + target_.string() + ": chunk count mismatch");
  file_->commit();
}

// ---- reading -------------------------------------------------------------------------------

void SealedReader::FileCloser::operator()(std::FILE* f) const { std::fclose(f); }

void SealedReader::fail(const std::string& check, const std::string& detail) const {
  throw SealedFileError(path_, check, detail);
}

SealedReader::SealedReader(const std::filesystem::path& path, const Key& key,
                           std::optional<SealedKind> expected_kind)
    : path_(path.string()) {
  file_.reset(std::fopen(path_.c_str(), "rb"));
  if (!file_) fail("open", std::strerror(errno));
  std::error_code ec;
  const uint64_t actual = std::filesystem::file_size(path, ec);
  if (ec) fail("open", "cannot read its size: " + ec.message());

  uint8_t fixed[kSealedFixedHeaderBytes];
  const size_t got = std::fread(fixed, 1, sizeof fixed, file_.get());
  if (got < 8 || std::memcmp(fixed, kSealedMagic, 8) != 0)
    fail("magic", "not a Tempo sealed file (.tds)");
  if (got < sizeof fixed)
    fail("length", "truncated: " + std::to_string(actual) + " bytes, shorter than the header");
  const auto format = get<uint32_t>(fixed + 8);
  if (format != kSealedFormatVersion)
    fail("format version", "unsupported format version " + std::to_string(format) +
                               " (this build reads " + std::to_string(kSealedFormatVersion) + ")");
  header_.kind = static_cast<SealedKind>(get<uint32_t>(fixed + 12));
  std::memcpy(header_.file_id.data(), fixed + 16, 16);
  header_.version = get<uint64_t>(fixed + 32);
  header_.chunk_size = get<uint32_t>(fixed + 40);
  const auto reserved = get<uint32_t>(fixed + 44);
  header_.chunk_count = get<uint64_t>(fixed + 48);
  header_.payload_bytes = get<uint64_t>(fixed + 56);
  std::memcpy(header_.key_fingerprint.data(), fixed + 64, 8);
  const auto meta_len = get<uint32_t>(fixed + 72);
  if (meta_len > kMaxMetaBytes || meta_len > actual - sizeof fixed)
    fail("header", "metadata length " + std::to_string(meta_len) + " is impossible");
  Bytes h(fixed, fixed + sizeof fixed);
  h.resize(sizeof fixed + meta_len);
  Aes256Gcm::Tag tag;
  if (std::fread(h.data() + sizeof fixed, 1, meta_len, file_.get()) != meta_len ||
      std::fread(tag.data(), 1, kTag, file_.get()) != kTag)
    fail("length", "truncated inside the header");

  const auto fp = key_fingerprint(key);
  if (!equal_ct(fp, header_.key_fingerprint))
    fail("key", "the key does not match this file (key fingerprint " + to_hex(fp) +
                    ", file expects " + to_hex(header_.key_fingerprint) +
                    "): wrong key file, or the header was modified");
  gcm_ = std::make_unique<Aes256Gcm>(file_key(key, header_.file_id));
  if (!gcm_->open(header_nonce(), h, nullptr, 0, tag, nullptr))
    fail("header authentication", "the header tag does not verify: the header was modified");
  header_hash_ = sha256(h);

  // The header is authentic from here on; its fields are what the writer wrote.
  if (reserved != 0 || header_.chunk_size == 0 || header_.chunk_size > kMaxChunkSize ||
      header_.chunk_count != chunk_count_for(header_.payload_bytes, header_.chunk_size))
    fail("header", "inconsistent chunk size, chunk count and payload length");
  if (expected_kind && header_.kind != *expected_kind)
    fail("kind",
         "holds a " + kind_name(header_.kind) + ", expected a " + kind_name(*expected_kind));
  try {
    header_.meta = nlohmann::json::parse(h.begin() + sizeof fixed, h.end());
  } catch (const nlohmann::json::exception& e) {
    fail("header", std::string("malformed metadata: ") + e.what());
  }
  const uint64_t expected = h.size() + kTag + header_.payload_bytes + header_.chunk_count * kTag;
  if (actual < expected)
    fail("length", "truncated: " + std::to_string(actual) + " bytes, the header declares " +
                       std::to_string(expected));
  if (actual > expected)
    fail("length", std::to_string(actual - expected) +
                       " unexpected trailing bytes (the header "
                       "declares " +
                       std::to_string(expected) + ")");
}

SealedReader::~SealedReader() { std::fill(chunk_.begin(), chunk_.end(), 0); }

void SealedReader::open_chunk() {
  if (next_chunk_ >= header_.chunk_count) fail("length", "read past the end of the payload");
  const uint64_t start = next_chunk_ * header_.chunk_size;
  const size_t n =
      static_cast<size_t>(std::min<uint64_t>(header_.chunk_size, header_.payload_bytes - start));
  const bool final = next_chunk_ + 1 == header_.chunk_count;
  chunk_.resize(n + kTag);
  if (std::fread(chunk_.data(), 1, chunk_.size(), file_.get()) != chunk_.size())
    fail("length", "read error in chunk " + std::to_string(next_chunk_));
  Aes256Gcm::Tag tag;
  std::copy(chunk_.end() - kTag, chunk_.end(), tag.begin());
  const auto aad = chunk_aad(header_hash_, next_chunk_, final);
  if (!gcm_->open(chunk_nonce(next_chunk_, final), aad, chunk_.data(), n, tag, chunk_.data())) {
    std::fill(chunk_.begin(), chunk_.end(), 0);
    fail("chunk authentication",
         "chunk " + std::to_string(next_chunk_) + " of " + std::to_string(header_.chunk_count) +
             " does not verify (modified, reordered, duplicated or from another file)");
  }
  chunk_.resize(n);
  chunk_pos_ = 0;
  ++next_chunk_;
}

void SealedReader::read(void* out, size_t n) {
  if (n > header_.payload_bytes - consumed_)
    fail("length", "the payload is shorter than its declared content");
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    if (chunk_pos_ == chunk_.size()) open_chunk();
    const size_t take = std::min(n, chunk_.size() - chunk_pos_);
    std::memcpy(p, chunk_.data() + chunk_pos_, take);
    chunk_pos_ += take;
    p += take;
    n -= take;
    consumed_ += take;
  }
}

void SealedReader::finish() {
  // An empty payload still has its (empty, final) chunk to authenticate.
  while (next_chunk_ < header_.chunk_count) {
    open_chunk();
    if (!chunk_.empty()) fail("length", "payload bytes left unread");
  }
  if (consumed_ != header_.payload_bytes || chunk_pos_ != chunk_.size())
    fail("length", "payload bytes left unread");
}

SealedHeader read_sealed_header(const std::filesystem::path& path, const Key& key) {
  return SealedReader(path, key, std::nullopt).header();
}

}  // namespace tempo::tee
