// StepGraphs: decode steps replayed from recorded passes (CUDA graphs on a GPU), one recording
// per bucket of batch sizes, as vLLM and SGLang do. A decode batch (one new token and one logit
// row per sequence) is padded to its bucket with sequences that write no cache (slot -1) and
// attend to one position of block 0, then the bucket's recording replays against the new
// metadata: a step of hundreds of kernels becomes one launch. Every bucket allocates from one
// arena, sized by the largest bucket before the first recording, so recorded addresses stay valid.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "backend/arena.h"
#include "backend/backend.h"

namespace dsinfer {

class StepGraphs {
 public:
  // The model's ops for a batch whose metadata begin_forward has uploaded, with tensors from
  // `arena`; returns the logits.
  using Pass = std::function<Tensor(const ForwardBatch&, Arena&)>;

  // Buckets cover batches of 1 .. max_batch sequences.
  StepGraphs(Backend& backend, int max_batch);

  // The logits [sequences, vocab] of a decode batch, valid until the next call; nullopt for a
  // batch it does not take (prompt tokens, more sequences than the largest bucket, logit rows
  // other than one per sequence in order) or whose bucket could not be recorded.
  std::optional<Tensor> run(const ForwardBatch& batch, const Pass& pass);
  // Records every bucket now, on batches of padding alone (which write no cache), so the first
  // steps of each size do not pay for it. Returns how many were recorded (0: none can be).
  int record_all(const Pass& pass);

  // The bucket sizes for a largest batch (exposed for tests).
  static std::vector<int> bucket_sizes(int max_batch);
  static bool is_decode(const ForwardBatch& batch);

 private:
  enum class State { Fresh, Recorded, Failed };
  struct Bucket {
    int size = 0;
    State state = State::Fresh;
    Tensor logits;
  };

  Bucket* bucket_for(int seqs);
  // Records `bucket` over padded_, whose metadata is uploaded; false when the pass cannot be.
  bool record(Bucket& bucket, const Pass& pass);
  // padded_ = batch plus padding sequences up to `size`.
  void pad(const ForwardBatch& batch, int size);
  // One eager pass of the largest bucket, so the arena holds any bucket in one piece.
  void size_arena(const Pass& pass);

  Backend& backend_;
  Arena arena_;
  bool arena_sized_ = false;
  std::vector<Bucket> buckets_;
  ForwardBatch padded_;
};

}  // namespace dsinfer
