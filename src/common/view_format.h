// On-disk format of a worker's recorded view (docs/view-format.md is the specification).
#pragma once

#include <bit>
#include <cstdint>

namespace tempo::view {

static_assert(std::endian::native == std::endian::little,
              "the view format is little-endian and written with the host's byte order");

/// The log file inside a view directory.
inline constexpr const char* kFileName = "view.tvw";

/// File header: 8 magic bytes, then the format version and a reserved word (16 bytes in all).
inline constexpr char kFileMagic[8] = {'T', 'E', 'M', 'P', 'O', 'V', 'W', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t reserved;  ///< 0
};
static_assert(sizeof(FileHeader) == 16);

/// Record header, followed by `payload_bytes` of little-endian float32 data in row-major order.
inline constexpr char kRecordMagic[4] = {'T', 'V', 'R', '1'};
inline constexpr int kMaxRank = 6;
struct RecordHeader {
  char magic[4];           ///< "TVR1"
  uint32_t op;             ///< protocol::Op value
  uint64_t request_id;     ///< protocol::Request::id
  uint64_t handle;         ///< cache handle the operand was sent with (0: none)
  char role;               ///< 'a' or 'b': which operand of the request
  uint8_t rank;            ///< 0..6
  uint8_t reserved[6];     ///< 0
  int64_t dims[kMaxRank];  ///< dims[0..rank), the rest 0
  uint64_t payload_bytes;  ///< 4 · product of dims
};
static_assert(sizeof(RecordHeader) == 88, "RecordHeader must have no padding");

}  // namespace tempo::view
