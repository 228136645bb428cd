#include "model/step_graphs.h"

#include <algorithm>

namespace dsinfer {

StepGraphs::StepGraphs(Backend& backend, int max_batch) : backend_(backend), arena_(backend) {
  for (int size : bucket_sizes(max_batch)) {
    buckets_.emplace_back();
    buckets_.back().size = size;
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

bool StepGraphs::is_decode(const ForwardBatch& batch) {
  if (batch.seqs.empty() || batch.logit_rows.size() != batch.seqs.size()) return false;
  for (size_t s = 0; s < batch.seqs.size(); ++s) {
    const SeqSlice& q = batch.seqs[s];
    if (q.query_len != 1 || q.query_start != static_cast<int>(s) || batch.logit_rows[s] != static_cast<int>(s))
      return false;
  }
  return true;
}

StepGraphs::Bucket* StepGraphs::bucket_for(int seqs) {
  for (Bucket& b : buckets_)
    if (b.size >= seqs) return &b;
  return nullptr;
}

void StepGraphs::pad(const ForwardBatch& batch, int size) {
  padded_.block_size = batch.block_size;
  padded_.tokens = batch.tokens;
  padded_.positions = batch.positions;
  padded_.slots = batch.slots;
  padded_.seqs = batch.seqs;
  padded_.logit_rows = batch.logit_rows;
  for (int s = batch.num_tokens(); s < size; ++s) {
    padded_.tokens.push_back(0);
    padded_.positions.push_back(0);
    padded_.slots.push_back(-1);
    padded_.seqs.push_back(SeqSlice{s, 1, 1, {0}});
    padded_.logit_rows.push_back(s);
  }
}

void StepGraphs::size_arena(const Pass& pass) {
  pad(ForwardBatch(), buckets_.back().size);
  backend_.begin_forward(padded_);
  arena_.reset();
  pass(padded_, arena_);
  arena_.reset();  // merges what the pass took into one block, which stays put from now on
  arena_sized_ = true;
}

bool StepGraphs::record(Bucket& bucket, const Pass& pass) {
  // A warm-up pass first: it grows any scratch buffer the recording will use.
  const size_t capacity = arena_.capacity();
  arena_.reset();
  pass(padded_, arena_);
  arena_.reset();
  if (arena_.capacity() != capacity)  // the arena moved: every recording reads the old one
    for (Bucket& b : buckets_)
      if (b.state == State::Recorded) b.state = State::Fresh;
  if (!backend_.record(bucket.size, [&] { bucket.logits = pass(padded_, arena_); })) {
    // The model has an op that cannot be recorded: every bucket would fail alike.
    for (Bucket& b : buckets_) b.state = State::Failed;
    return false;
  }
  bucket.state = State::Recorded;
  return true;
}

int StepGraphs::record_all(const Pass& pass) {
  if (!backend_.can_record()) return 0;
  if (!arena_sized_) size_arena(pass);
  int recorded = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend(); ++it) {
    pad(ForwardBatch(), it->size);
    backend_.begin_forward(padded_);
    if (!record(*it, pass)) return 0;
    ++recorded;
  }
  return recorded;
}

std::optional<Tensor> StepGraphs::run(const ForwardBatch& batch, const Pass& pass) {
  if (!backend_.can_record() || !is_decode(batch)) return std::nullopt;
  Bucket* bucket = bucket_for(static_cast<int>(batch.seqs.size()));
  if (!bucket || bucket->state == State::Failed) return std::nullopt;
  if (!arena_sized_) size_arena(pass);
  pad(batch, bucket->size);
  backend_.begin_forward(padded_);
  if ((bucket->state != State::Recorded || !backend_.replay(bucket->size)) && !record(*bucket, pass))
    return std::nullopt;
  return bucket->logits.slice_rows(0, static_cast<int64_t>(batch.seqs.size()));
}

}  // namespace dsinfer
