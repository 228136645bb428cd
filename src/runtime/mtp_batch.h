// The batch of DeepSeek's multi-token-prediction layer after an engine step (speculative
// decoding's drafts from the model itself, Model::mtp_forward). Each sequence's positions the step
// kept (its new tokens less rejected drafts) run again through the MTP layer, each with the token
// that follows it (the next prompt token, an accepted draft or the token just sampled) and the
// main model's hidden state there; so the layer's cache covers every position the main cache
// does, and the last position of a sequence that decodes next guesses the token after its next.
// Each draft after that chains the layer from its own output; the entries those passes write,
// past the sequence's tokens, are written again by the pass of the step that computes them.
#pragma once
#include <vector>

#include "backend/forward_batch.h"
#include "runtime/sequence.h"

namespace dsinfer {

struct MtpSeq {
  Sequence* seq;
  int first = 0;        // the first position the step computed
  int kept = 0;         // positions from `first` the step kept (seq->tokens holds the token after each)
  int step_row = 0;     // the row of position `first` among the step's tokens
  bool drafts = false;  // the sequence decodes next: its last position gets a logit row
};

struct MtpBatch {
  ForwardBatch batch;
  std::vector<int> hidden_rows;     // per token: its position's row among the step's tokens
  std::vector<Sequence*> drafting;  // the sequence of each logit row
};

MtpBatch mtp_batch(const std::vector<MtpSeq>& seqs, int block_size);

// The next link of a chain of drafts: each sequence's last draft (Sequence::mtp_drafts) at the
// position before it, from the layer's output at row i of the pass before, whose logit rows were
// `rows` (null: a row that drafted nothing). A sequence whose position has no cache block yet
// stops: a chain stays within the blocks its sequence holds.
MtpBatch mtp_chain_batch(const std::vector<Sequence*>& rows, int block_size);

}  // namespace dsinfer
