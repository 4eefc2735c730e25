#include "master/train/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace tempo::train {

namespace {
constexpr size_t kBufferSize = size_t{1} << 20;

std::filesystem::path directory_of(const std::filesystem::path& p) {
  const auto dir = p.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}
}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  if (target_.filename().empty())
    throw std::runtime_error("atomic write: \"" + target_.string() + "\" names no file");
  // Appended piecewise: GCC 12 reports a false -Wrestrict on `"." + std::string`.
  temp_ = directory_of(target_).string();
  temp_ += "/.";
  temp_ += target_.filename().string();
  temp_ += ".tmp.XXXXXX";
  fd_ = ::mkostemp(temp_.data(), O_CLOEXEC);  // mode 0600
  if (fd_ < 0) {
    const int err = errno;
    throw std::runtime_error("atomic write of " + target_.string() + ": cannot create " + temp_ +
                             ": " + std::strerror(err));
  }
  buffer_.reserve(kBufferSize);
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

void AtomicFile::fail(const std::string& what, int err) {
  discard();
  throw std::runtime_error("atomic write of " + target_.string() + ": " + what + ": " +
                           std::strerror(err));
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw std::logic_error("atomic write of " + target_.string() + ": file is closed");
  const char* p = static_cast<const char*>(data);
  if (buffer_.size() + n <= kBufferSize) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  flush_buffer();
  if (n < kBufferSize) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("write", errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::flush_buffer() {
  const char* p = buffer_.data();
  size_t n = buffer_.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("write", errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
  buffer_.clear();
}

void AtomicFile::commit() {
  if (fd_ < 0 || committed_)
    throw std::logic_error("atomic write of " + target_.string() + ": commit on a closed file");
  flush_buffer();
  if (::fsync(fd_) != 0) fail("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close", errno);
  if (::rename(temp_.c_str(), target_.c_str()) != 0) fail("rename", errno);
  committed_ = true;
  temp_.clear();
  // The rename is durable only once the directory entry is on disk.
  const std::string dir = directory_of(target_).string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    const int err = errno;
    throw std::runtime_error("atomic write of " + target_.string() + ": open directory " + dir +
                             ": " + std::strerror(err));
  }
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0)
    throw std::runtime_error("atomic write of " + target_.string() + ": fsync directory " + dir +
                             ": " + std::strerror(err));
}

void write_file_atomically(const std::filesystem::path& target, const std::string& bytes) {
  AtomicFile f(target);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace tempo::train
