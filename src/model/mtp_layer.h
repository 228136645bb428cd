// MtpLayer: DeepSeek-V3's multi-token-prediction module (the checkpoint's layer
// num_hidden_layers, which config.json's num_nextn_predict_layers declares), as speculative
// decoding's drafter. At position i it joins the embedding of the token that follows i with the
// main model's final hidden state there, x = eh_proj [enorm(embed(t[i+1])) ; hnorm(h[i])], runs one
// decoder layer (MLA and MoE, with a cache of its own) over x, and normalizes the result with
// shared_head.norm; the model's head then gives logits for t[i+2]. The embedding and the head are
// the main model's, as the V3 report shares them (the checkpoint's copies are not loaded). Drafts
// further ahead chain the layer, as vLLM and SGLang do: its output at i stands in for the main
// model's hidden state at i + 1, which the drafts have not got yet.
#pragma once
#include <memory>
#include <string>

#include "model/layer.h"
#include "model/weight_loader.h"

namespace dsinfer {

class MtpLayer {
 public:
  // `prefix`: "model.layers.N."; `attention` and `ffn` are the decoder layer's blocks (the family
  // builds them, as for its own layers).
  MtpLayer(WeightLoader& w, const std::string& prefix, int hidden, std::unique_ptr<AttentionBlock> attention,
           std::unique_ptr<FeedForward> ffn);
  struct Output {
    Tensor hidden;  // the layer's output [T, hidden]: a chained pass's `hidden` input
    Tensor normed;  // shared_head.norm of it, for the head
  };
  // `embedded`: the next tokens' embeddings, `hidden`: the main model's final hidden states at
  // their positions, or the layer's own output at the position before ([T, hidden] each).
  Output forward(LayerContext& ctx, const Tensor& embedded, const Tensor& hidden, float eps);

 private:
  Weight enorm_, hnorm_, eh_proj_, input_norm_, post_attention_norm_, head_norm_;
  std::unique_ptr<AttentionBlock> attention_;
  std::unique_ptr<FeedForward> ffn_;
};

}  // namespace dsinfer
