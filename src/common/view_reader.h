// Reads a worker's recorded view (every tensor it received), for the master-side attack tools.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/blinded_tensor.h"
#include "common/shape.h"
#include "common/worker_protocol.h"

namespace tempo {

/// One tensor as the worker received it.
struct ViewEntry {
  uint64_t request_id = 0;
  protocol::Op op = protocol::Op::kMatMul;
  char role = 'a';              ///< 'a' or 'b': which operand of the request
  protocol::Handle handle = 0;  ///< handle it was sent with (0: not cached)
  Shape shape;
  uint64_t payload_offset = 0;  ///< byte offset of the float32 data in the log file
};

/// Indexes a view log (docs/view-format.md) and loads its tensors on demand.
/// A record cut short at the end of the file (a worker killed mid-write) is left out and
/// reported by truncated(); any other inconsistency throws std::runtime_error.
class ViewReader {
 public:
  /// `path` is a view directory (as given to --record-view) or the log file itself.
  explicit ViewReader(const std::string& path);

  const std::vector<ViewEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const ViewEntry& operator[](size_t i) const { return entries_[i]; }
  /// True when the log ended inside a record.
  bool truncated() const { return truncated_; }
  const std::string& file() const { return file_; }

  /// Reads the data of entry i.
  BlindedTensor load(size_t i) const;

 private:
  std::string file_;
  std::vector<ViewEntry> entries_;
  bool truncated_ = false;
};

}  // namespace tempo
