#include "backend/arena.h"

#include <algorithm>

namespace dsinfer {

Tensor Arena::tensor(DType dtype, Shape shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.device = backend_.device();
  size_t bytes = (t.nbytes() + 255) / 256 * 256;  // keep every tensor 256-byte aligned
  for (Chunk& c : chunks_) {
    if (c.buffer.bytes() - c.used >= bytes) {
      t.data = static_cast<char*>(c.buffer.data()) + c.used;
      c.used += bytes;
      return t;
    }
  }
  size_t chunk = std::max<size_t>(bytes, size_t{64} << 20);
  chunks_.push_back({backend_.alloc(chunk), bytes});
  t.data = chunks_.back().buffer.data();
  return t;
}

void Arena::reset() {
  // Merge into one chunk of the total size, so the next pass fits in a single allocation.
  if (chunks_.size() > 1) {
    size_t total = capacity();
    chunks_.clear();
    chunks_.push_back({backend_.alloc(total), 0});
  }
  for (Chunk& c : chunks_) c.used = 0;
}

Arena::Mark Arena::mark() const {
  Mark m;
  for (const Chunk& c : chunks_) m.used.push_back(c.used);
  return m;
}

// Chunks added after the mark are emptied but kept: the next layer reuses them.
void Arena::rewind(const Mark& m) {
  for (size_t i = 0; i < chunks_.size(); ++i) chunks_[i].used = i < m.used.size() ? m.used[i] : 0;
}

size_t Arena::capacity() const {
  size_t total = 0;
  for (const Chunk& c : chunks_) total += c.buffer.bytes();
  return total;
}

}  // namespace dsinfer
