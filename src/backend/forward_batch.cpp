#include "backend/forward_batch.h"

#include <algorithm>

namespace dsinfer {

int ForwardBatch::max_context() const {
  int m = 0;
  for (const SeqSlice& s : seqs) m = std::max(m, s.context_len);
  return m;
}

std::vector<int64_t> ForwardBatch::context_starts() const {
  std::vector<int64_t> starts(seqs.size() + 1, 0);
  for (size_t s = 0; s < seqs.size(); ++s) starts[s + 1] = starts[s] + seqs[s].context_len;
  return starts;
}

}  // namespace dsinfer
