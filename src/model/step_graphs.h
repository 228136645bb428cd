// StepGraphs: decode steps replayed from recorded passes (CUDA graphs on a GPU), one recording
// per bucket of batch sizes, as vLLM and SGLang do. A decode batch (one new token and one logit
// row per sequence) is padded to its bucket with sequences that write no cache (slot -1) and
// attend to the first positions of block 0, then the bucket's recording replays against the new
// metadata: a step of hundreds of kernels becomes one launch. Every bucket allocates from one
// arena, sized by the largest bucket before the first recording, so recorded addresses stay valid.
//
// Speculative decoding's verification steps (a sequence's token and up to 7 drafts, each with a
// logit row) take buckets of their own, keyed by sequences and width, the most tokens a sequence
// of the step has (2-8; not rounded up: each padding token of a MoE model is more expert work):
// each sequence is padded to the width with tokens at its last position that write no cache,
// and the real tokens' logit rows come first, in order, so a replay's first rows are the batch's.
// They hold up to as many tokens as the largest decode bucket, or kMinDraftTokens, so their
// arena is about the decode buckets' (the engine's memory plan reserves no more).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "backend/arena.h"
#include "backend/backend.h"

namespace dsinfer {

// What a step leaves: the logits of its logit rows and the final hidden states (after the final
// norm) of the same rows, which the MTP layer starts from.
struct StepOutput {
  Tensor logits, hidden;
};

class StepGraphs {
 public:
  // The model's ops for a batch whose metadata begin_forward has uploaded, with tensors from
  // `arena`.
  using Pass = std::function<StepOutput(const ForwardBatch&, Arena&)>;

  // Tokens a sequence of a recorded step may have: its own and up to 7 drafts.
  static constexpr int kMaxWidth = 8;
  // Verification buckets hold at least this many tokens, whatever the largest decode batch.
  static constexpr int kMinDraftTokens = 64;

  // Buckets cover batches of 1 .. max_batch sequences over a cache of `block_size` slots a block
  // (a recording holds it: batches of another block size run op by op).
  StepGraphs(Backend& backend, int max_batch, int block_size);

  // The output of a decode or verification batch (each token a logit row, in order), valid until
  // the next call;
  // nullopt for a batch it does not take (a sequence with more than kMaxWidth tokens or without
  // a logit row for each, rows out of order, more sequences than the largest bucket) or whose
  // bucket could not be recorded.
  std::optional<StepOutput> run(const ForwardBatch& batch, const Pass& pass);
  // Records every decode bucket now (`drafts`: every verification bucket too), on batches of
  // padding alone (which write no cache), so the first steps of each size do not pay for it.
  // Returns how many were recorded (0: none can be).
  int record_all(const Pass& pass, bool drafts = false);

  // The bucket sizes for a largest batch (exposed for tests).
  static std::vector<int> bucket_sizes(int max_batch);
  // Tokens a sequence of the batch's bucket holds: 1 for a decode step, the most a sequence has
  // (up to kMaxWidth) for a step whose every token has a logit row, in order; 0 for any other.
  static int step_width(const ForwardBatch& batch);
  // `batch` padded to `seqs` sequences of `width` tokens (what a replay of that bucket runs).
  static ForwardBatch padded(const ForwardBatch& batch, int seqs, int width);

 private:
  enum class State { Fresh, Recorded, Failed };
  struct Bucket {
    int size = 0, width = 1;
    State state = State::Fresh;
    StepOutput out;
    int key() const { return size * 16 + width; }
  };

  Bucket* bucket_for(int seqs, int width);
  // A pass over padded_, whose metadata is uploaded, outside any recording: it grows the scratch
  // buffers a recording will use (a buffer that moves later makes recordings stale).
  void warm_up(const Pass& pass);
  // Records `bucket` over padded_, whose metadata is uploaded; false when the pass cannot be
  // recorded, and then no bucket of its width as large or larger is tried again.
  bool capture(Bucket& bucket, const Pass& pass);
  // padded_ for a bucket of padding alone.
  void pad_only(const Bucket& bucket);
  // One eager pass of the largest decode bucket, so the arena holds any decode bucket in one
  // piece (before a first run without record_all, which warms every bucket up itself).
  void size_arena(const Pass& pass);

  Backend& backend_;
  int block_size_;
  Arena arena_;
  bool arena_sized_ = false;
  std::vector<Bucket> buckets_;
  ForwardBatch padded_;
};

}  // namespace dsinfer
