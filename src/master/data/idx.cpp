#include "master/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include "master/data/file_error.h"

namespace tempo::data {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
// Sanity bound on the declared size: no IDX dataset we load comes close.
constexpr int64_t kMaxBytes = int64_t{1} << 34;
// Buffers grow by at most this much ahead of the data actually read, so a header that declares
// a huge count cannot make us allocate gigabytes before the truncation is noticed.
constexpr int64_t kGrowBytes = int64_t{1} << 26;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

/// A gzFile that closes itself; reads plain files transparently.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr)
      throw FileError(path, std::string("cannot open: ") +
                                (errno != 0 ? std::strerror(errno) : "out of memory"));
    gzbuffer(file_, 1 << 18);
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to n bytes; returns how many were read (fewer only at the end of the data).
  /// A stream that ends early counts as end of data (the caller reports the truncation);
  /// corrupt compressed data throws.
  int64_t read(void* dst, int64_t n) {
    auto* out = static_cast<uint8_t*>(dst);
    int64_t done = 0;
    while (done < n) {
      const auto chunk =
          static_cast<unsigned>(std::min<int64_t>(n - done, std::numeric_limits<int>::max() / 2));
      const int got = gzread(file_, out + done, chunk);
      if (got <= 0) {
        int code = Z_OK;
        std::string msg = gzerror(file_, &code);
        if (msg.starts_with(path_ + ": ")) msg.erase(0, path_.size() + 2);  // zlib adds the path
        // zlib reports a compressed stream cut short as Z_BUF_ERROR after returning what it
        // could decompress: that is a truncated file, which the caller reports with counts.
        if (code == Z_BUF_ERROR) {
          cut_short_ = true;
          break;
        }
        if (code != Z_OK)
          throw FileError(path_, (code == Z_ERRNO ? "read error: " : "corrupt gzip data: ") + msg);
        break;  // end of data
      }
      done += got;
    }
    return done;
  }

  uint32_t read_be32(std::string_view what) {
    uint8_t b[4];
    const int64_t got = read(b, 4);
    if (got != 4) throw FileError(path_, "truncated: header ends before the " + std::string(what));
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  /// Reads up to n bytes into out (resized to what was read), growing it in bounded steps.
  void read_into(std::vector<uint8_t>& out, int64_t n) {
    out.clear();
    int64_t done = 0;
    while (done < n) {
      const int64_t want = std::min(n - done, kGrowBytes);
      out.resize(static_cast<size_t>(done + want));
      const int64_t got = read(out.data() + done, want);
      done += got;
      if (got < want) break;
    }
    out.resize(static_cast<size_t>(done));
  }

  /// Throws when anything follows the declared data (a wrong or concatenated file).
  void expect_end(const std::string& declared) {
    uint8_t b;
    if (read(&b, 1) != 0)
      throw FileError(path_, "holds more data than its header declares (" + declared + ")");
  }

  /// True once the compressed stream ended before its end marker.
  bool cut_short() const { return cut_short_; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
  bool cut_short_ = false;
};

void check_magic(const std::string& path, uint32_t magic, uint32_t expected) {
  if (magic != expected)
    throw FileError(path, "bad magic " + hex32(magic) + " (expected " + hex32(expected) +
                              ": IDX unsigned-byte data with " + std::to_string(expected & 0xff) +
                              " dimension(s))");
}

}  // namespace

std::string resolve_gz_or_raw(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return path;
  constexpr std::string_view kGz = ".gz";
  if (path.ends_with(kGz)) {
    std::string raw = path.substr(0, path.size() - kGz.size());
    if (std::filesystem::exists(raw, ec)) return raw;
  }
  return path;
}

IdxImages read_idx_images(const std::string& path) {
  GzReader in(path);
  check_magic(path, in.read_be32("magic number"), kImagesMagic);
  IdxImages out;
  const uint32_t count = in.read_be32("image count");
  const uint32_t rows = in.read_be32("row count");
  const uint32_t cols = in.read_be32("column count");
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
    throw FileError(path,
                    "implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
  const int64_t image_bytes = int64_t{rows} * cols;
  const int64_t bytes = image_bytes * count;
  if (bytes > kMaxBytes)
    throw FileError(path, "declares " + std::to_string(count) + " images of " +
                              std::to_string(rows) + "x" + std::to_string(cols) +
                              ", more than the loader accepts");
  out.count = count;
  out.rows = static_cast<int>(rows);
  out.cols = static_cast<int>(cols);
  in.read_into(out.pixels, bytes);
  const auto got = static_cast<int64_t>(out.pixels.size());
  if (got != bytes)
    throw FileError(path, "truncated: expected " + std::to_string(count) + " images, file holds " +
                              std::to_string(got / image_bytes) + " (" + std::to_string(got) +
                              " of " + std::to_string(bytes) + " pixel bytes)" +
                              (in.cut_short() ? "; the gzip stream is cut short" : ""));
  in.expect_end(std::to_string(count) + " images");
  return out;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  GzReader in(path);
  check_magic(path, in.read_be32("magic number"), kLabelsMagic);
  const uint32_t count = in.read_be32("label count");
  std::vector<uint8_t> labels;
  in.read_into(labels, count);
  const auto got = static_cast<int64_t>(labels.size());
  if (got != int64_t{count})
    throw FileError(path, "truncated: expected " + std::to_string(count) + " labels, file holds " +
                              std::to_string(got));
  in.expect_end(std::to_string(count) + " labels");
  return labels;
}

}  // namespace tempo::data
