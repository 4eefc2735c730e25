// Crash-safe file replacement: readers see either the old file or the complete new one.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace tempo::train {

/// Writes a new version of `target` through a temporary file in the same directory.
///
/// commit() flushes, fsyncs the temporary file, renames it over `target` and fsyncs the
/// directory, so after a crash the path holds the old or the new content, never a mix. Until
/// commit() succeeds `target` is untouched; on any failure (a throwing write(), a failed commit(),
/// or destruction without commit()) the temporary file is removed. Errors throw
/// std::runtime_error naming the file and the failed system call.
/// The file is created with mode 0600: checkpoints hold the model's weights.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes (buffered; large writes go straight to the file).
  void write(const void* data, size_t n);
  /// Makes the new content visible under the target path. Call at most once.
  void commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  void flush_buffer();
  [[noreturn]] void fail(const std::string& what, int err);
  void discard() noexcept;

  std::filesystem::path target_;
  std::string temp_;
  int fd_ = -1;
  std::vector<char> buffer_;
  bool committed_ = false;
};

/// Replaces `target` with `bytes` atomically (see AtomicFile).
void write_file_atomically(const std::filesystem::path& target, const std::string& bytes);

}  // namespace tempo::train
