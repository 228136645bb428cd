// Arena: scratch tensors of one forward pass, carved from large device buffers and
// reused on the next pass (reset), so steady-state steps allocate nothing. A layer's scratch is
// handed back when the layer ends (mark / rewind), so a pass holds one layer's worth at a time:
// what the planner's activation estimate counts. Ops queue in order on one device line, so a
// rewound tensor is rewritten only after everything queued before has used it.
#pragma once
#include <vector>

#include "backend/backend.h"

namespace dsinfer {

class Arena {
 public:
  explicit Arena(Backend& backend) : backend_(backend) {}
  Tensor tensor(DType dtype, Shape shape);
  void reset();
  // Where the next tensor would go; rewind(mark()) frees every tensor taken after the mark.
  struct Mark {
    std::vector<size_t> used;  // per chunk
  };
  Mark mark() const;
  void rewind(const Mark& m);
  size_t capacity() const;

 private:
  struct Chunk {
    Buffer buffer;
    size_t used = 0;
  };
  Backend& backend_;
  std::vector<Chunk> chunks_;
};

}  // namespace dsinfer
