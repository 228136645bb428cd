#include "model/shard.h"

#include "core/error.h"

namespace dsinfer {

int64_t shard_share(int64_t total, const Shard& s, const std::string& what) {
  if (total % s.size)
    fail("tensor parallelism: ", total, " ", what, " do not split evenly over ", s.size, " ranks");
  return total / s.size;
}

Part shard_rows(int64_t share, const Shard& s) {
  return s.size == 1 ? Part{} : Part{Part::Axis::Rows, s.rank * share, share};
}

Part shard_cols(int64_t share, const Shard& s) {
  return s.size == 1 ? Part{} : Part{Part::Axis::Cols, s.rank * share, share};
}

}  // namespace dsinfer
