// Tensor parallelism in the model: a Shard is one rank's place in a group of backends
// (make_backend_group), a Part the slice of a checkpoint tensor that rank loads. Megatron's split:
// column-parallel products (q/k/v, gate/up) keep 1/size of their output rows, row-parallel ones
// (o, down) the matching 1/size of their input columns, and the row-parallel outputs are summed
// over the group (Backend::all_reduce_sum).
#pragma once
#include <cstdint>
#include <string>

namespace dsinfer {

struct Shard {
  int rank = 0, size = 1;
};

// `count` rows or columns of a tensor from `begin`; count < 0 is the whole tensor.
struct Part {
  enum class Axis { Rows, Cols } axis = Axis::Rows;
  int64_t begin = 0, count = -1;
};

// total / s.size, or an error naming `what` when total does not split evenly.
int64_t shard_share(int64_t total, const Shard& s, const std::string& what);
// Rank s.rank's `share` rows (columns) of a split tensor; the whole tensor when s.size is 1.
Part shard_rows(int64_t share, const Shard& s);
Part shard_cols(int64_t share, const Shard& s);

}  // namespace dsinfer
