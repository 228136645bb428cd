#include "model/step_graphs.h"

#include <algorithm>

namespace dsinfer {

StepGraphs::StepGraphs(Backend& backend, int max_batch, int block_size)
    : backend_(backend), block_size_(block_size), arena_(backend) {
  const std::vector<int> sizes = bucket_sizes(max_batch);
  const int max_tokens = std::max(max_batch, kMinDraftTokens);
  for (int width = 1; width <= kMaxWidth; ++width)
    for (int size : sizes)
      if (width == 1 || size * width <= max_tokens) {
        buckets_.emplace_back();
        buckets_.back().size = size;
        buckets_.back().width = width;
      }
}

// 1, 2, 4, then every multiple of 8: padding wastes at most 7 rows, whose cost at decode sizes
// is small next to reading the weights once.
std::vector<int> StepGraphs::bucket_sizes(int max_batch) {
  std::vector<int> sizes;
  for (int s : {1, 2, 4})
    if (s < max_batch) sizes.push_back(s);
  for (int s = 8; s < max_batch; s += 8) sizes.push_back(s);
  if (max_batch >= 1) sizes.push_back(max_batch);
  return sizes;
}

int StepGraphs::step_width(const ForwardBatch& batch) {
  if (batch.seqs.empty() || batch.logit_rows.size() != batch.tokens.size()) return 0;
  int next = 0, widest = 0;
  for (const SeqSlice& q : batch.seqs) {
    if (q.query_start != next || q.query_len < 1 || q.query_len > kMaxWidth) return 0;
    next += q.query_len;
    widest = std::max(widest, q.query_len);
  }
  if (next != batch.num_tokens()) return 0;
  for (int r = 0; r < static_cast<int>(batch.logit_rows.size()); ++r)
    if (batch.logit_rows[r] != r) return 0;
  return widest;
}

ForwardBatch StepGraphs::padded(const ForwardBatch& batch, int seqs, int width) {
  ForwardBatch p;
  p.block_size = batch.block_size;
  std::vector<int> padding_rows;
  auto push = [&](int token, int position, int slot, bool real) {
    (real ? p.logit_rows : padding_rows).push_back(p.num_tokens());
    p.tokens.push_back(token);
    p.positions.push_back(position);
    p.slots.push_back(slot);
  };
  for (const SeqSlice& q : batch.seqs) {
    const int start = p.num_tokens(), last = q.query_start + q.query_len - 1;
    for (int t = q.query_start; t <= last; ++t) push(batch.tokens[t], batch.positions[t], batch.slots[t], true);
    // Padding at the sequence's last position attends to what its last token does and writes nothing.
    for (int i = q.query_len; i < width; ++i) push(0, batch.positions[last], -1, false);
    p.seqs.push_back(SeqSlice{start, width, q.context_len, q.block_table});
  }
  // Padding sequences: `width` tokens at the first positions of block 0, writing nothing.
  const int block_size = std::max(batch.block_size, 1);
  for (int s = static_cast<int>(batch.seqs.size()); s < seqs; ++s) {
    const int start = p.num_tokens();
    for (int i = 0; i < width; ++i) push(0, i, -1, false);
    p.seqs.push_back(SeqSlice{start, width, width, std::vector<int>((width + block_size - 1) / block_size, 0)});
  }
  p.logit_rows.insert(p.logit_rows.end(), padding_rows.begin(), padding_rows.end());
  return p;
}

StepGraphs::Bucket* StepGraphs::bucket_for(int seqs, int width) {
  for (Bucket& b : buckets_)
    if (b.width == width && b.size >= seqs) return &b;
  return nullptr;
}

void StepGraphs::pad_only(const Bucket& bucket) {
  ForwardBatch none;
  none.block_size = block_size_;
  padded_ = padded(none, bucket.size, bucket.width);
  backend_.begin_forward(padded_);
}

void StepGraphs::size_arena(const Pass& pass) {
  const Bucket* largest = nullptr;
  for (const Bucket& b : buckets_)
    if (b.width == 1 && (!largest || b.size > largest->size)) largest = &b;
  pad_only(*largest);
  arena_.reset();
  pass(padded_, arena_);
  arena_.reset();  // merges what the pass took into one block, which stays put from now on
  arena_sized_ = true;
}

void StepGraphs::warm_up(const Pass& pass) {
  const size_t capacity = arena_.capacity();
  arena_.reset();
  pass(padded_, arena_);
  arena_.reset();
  if (arena_.capacity() != capacity)  // the arena moved: every recording reads the old one
    for (Bucket& b : buckets_)
      if (b.state == State::Recorded) b.state = State::Fresh;
}

bool StepGraphs::capture(Bucket& bucket, const Pass& pass) {
  // From the arena's start, as its warm-up ran: captures back to back would each take scratch
  // past the one before, and a capture cannot allocate more (session 36: every draft bucket and
  // the larger decode buckets ran op by op).
  arena_.reset();
  if (!backend_.record(bucket.key(), [&] { bucket.out = pass(padded_, arena_); })) {
    // An op that cannot be recorded at this many tokens (a MoE layer's per-expert path reads
    // its offsets back) fails every bucket of the width at least as large.
    for (Bucket& b : buckets_)
      if (b.width == bucket.width && b.size >= bucket.size) b.state = State::Failed;
    return false;
  }
  bucket.state = State::Recorded;
  return true;
}

int StepGraphs::record_all(const Pass& pass, bool drafts) {
  if (!backend_.can_record()) return 0;
  // Every warm-up before any recording: a scratch buffer one bucket's pass grows would make the
  // recordings before it stale. The arena then holds the largest bucket in one piece.
  auto wanted = [&](const Bucket& b) { return b.width == 1 || drafts; };
  for (const Bucket& b : buckets_)
    if (wanted(b)) {
      pad_only(b);
      warm_up(pass);
    }
  arena_sized_ = true;
  // The smallest of each width first: a failure fails the larger ones too, so a model that
  // cannot be recorded at all fails once a width.
  int recorded = 0;
  for (Bucket& b : buckets_) {
    if (!wanted(b) || b.state == State::Failed) continue;
    pad_only(b);
    recorded += capture(b, pass) ? 1 : 0;
  }
  return recorded;
}

std::optional<StepOutput> StepGraphs::run(const ForwardBatch& batch, const Pass& pass) {
  const int width = step_width(batch);
  if (!backend_.can_record() || width == 0 || batch.block_size != block_size_) return std::nullopt;
  for (const SeqSlice& q : batch.seqs)
    if (q.context_len < width) return std::nullopt;  // too short to hold its padding
  Bucket* bucket = bucket_for(static_cast<int>(batch.seqs.size()), width);
  if (!bucket || bucket->state == State::Failed) return std::nullopt;
  if (!arena_sized_) size_arena(pass);
  padded_ = padded(batch, bucket->size, width);
  backend_.begin_forward(padded_);
  if (bucket->state != State::Recorded || !backend_.replay(bucket->key())) {
    warm_up(pass);
    if (!capture(*bucket, pass)) return std::nullopt;
  }
  // The real rows come first in the padded batch's logit rows.
  const int64_t rows = batch.num_tokens();
  return StepOutput{bucket->out.logits.slice_rows(0, rows), bucket->out.hidden.slice_rows(0, rows)};
}

}  // namespace dsinfer
