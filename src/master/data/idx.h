// Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or raw.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tempo::data {

/// The pixels of an IDX3 ubyte file (magic 0x00000803): count images of rows x cols bytes.
struct IdxImages {
  int64_t count = 0;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

/// Reads an IDX3 ubyte image file. The file may be gzip-compressed or not (zlib reads both).
/// Throws FileError naming `path` when the file cannot be opened, the magic or the dimensions
/// are wrong, the data is truncated or corrupt, or bytes follow the declared data.
IdxImages read_idx_images(const std::string& path);

/// Reads an IDX1 ubyte label file (magic 0x00000801), gzip-compressed or not. Errors as above.
std::vector<uint8_t> read_idx_labels(const std::string& path);

/// `path` if that file exists, else `path` without its ".gz" suffix if that one exists, else
/// `path` (so that the error names the preferred file).
std::string resolve_gz_or_raw(const std::string& path);

}  // namespace tempo::data
