#include "backend/forward_batch.h"

#include <algorithm>

namespace dsinfer {

int ForwardBatch::max_context() const {
  int m = 0;
  for (const SeqSlice& s : seqs) m = std::max(m, s.context_len);
  return m;
}

}  // namespace dsinfer
