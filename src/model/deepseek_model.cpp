// The DeepSeek families: DeepseekV3ForCausalLM (V3 / R1) and DeepseekV2ForCausalLM (V2 / V2-Lite):
// MLA attention in every layer; dense MLP in the first first_k_dense_replace layers, MoE after;
// V3's multi-token-prediction layer after them, loaded on request (ModelOptions::mtp).
#include "core/error.h"
#include "model/causal_lm.h"
#include "model/dense_mlp.h"
#include "model/mla_attention.h"
#include "model/moe.h"

namespace dsinfer {
namespace {

class DeepseekModel final : public CausalLM {
 public:
  DeepseekModel(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store, const ModelOptions& o)
      : CausalLM(c, backend, std::move(store), o), options_(o) {
    WeightLoader w = loader();
    load_common(w, o.mtp);
    for (int l = 0; l < config_.num_layers; ++l) {
      const std::string p = layer_prefix(l);
      layers_[l].attention = attention(w, p);
      layers_[l].ffn = ffn(w, p, l);
      layer_loaded(l);
    }
    if (o.mtp) load_mtp(w);
  }

 private:
  static std::string layer_prefix(int l) { return "model.layers." + std::to_string(l) + "."; }

  std::unique_ptr<AttentionBlock> attention(WeightLoader& w, const std::string& p) {
    return std::make_unique<MlaAttention>(w, p + "self_attn.", config_, rope_, options_.mla_prefill, shard_);
  }

  std::unique_ptr<FeedForward> ffn(WeightLoader& w, const std::string& p, int l) {
    if (config_.is_moe_layer(l)) return std::make_unique<Moe>(w, p + "mlp.", config_, shard_, options_.expert_parallel);
    return std::make_unique<DenseMlp>(w, p + "mlp.", config_.hidden_size, config_.intermediate_size, shard_);
  }

  // The first MTP layer (V3 and R1 ship one), after the main layers.
  void load_mtp(WeightLoader& w) {
    const int l = config_.num_layers;
    const std::string p = layer_prefix(l);
    if (config_.num_nextn_predict_layers < 1 || !w.has(p + "eh_proj.weight"))
      fail("this ", config_.architecture, " has no multi-token-prediction layer to draft with: config.json declares ",
           config_.num_nextn_predict_layers, " (num_nextn_predict_layers) and the checkpoint ",
           w.has(p + "eh_proj.weight") ? "holds" : "lacks", " ", p + "eh_proj.weight");
    mtp_ = std::make_unique<MtpLayer>(w, p, config_.hidden_size, attention(w, p), ffn(w, p, l));
  }

  ModelOptions options_;
};

}  // namespace

std::unique_ptr<Model> make_deepseek_model(const ModelConfig& c, Backend& backend,
                                          std::shared_ptr<const TensorStore> store, const ModelOptions& options) {
  return std::make_unique<DeepseekModel>(c, backend, std::move(store), options);
}

}  // namespace dsinfer
