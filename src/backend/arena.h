// Arena: scratch tensors of one forward pass, carved from large device buffers and
// reused on the next pass (reset), so steady-state steps allocate nothing.
#pragma once
#include <vector>

#include "backend/backend.h"

namespace dsinfer {

class Arena {
 public:
  explicit Arena(Backend& backend) : backend_(backend) {}
  Tensor tensor(DType dtype, Shape shape);
  void reset();
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
