// The DeepSeek families: DeepseekV3ForCausalLM (V3 / R1) and DeepseekV2ForCausalLM (V2 / V2-Lite):
// MLA attention in every layer; dense MLP in the first first_k_dense_replace layers, MoE after.
#include "model/causal_lm.h"
#include "model/dense_mlp.h"
#include "model/mla_attention.h"
#include "model/moe.h"

namespace dsinfer {
namespace {

class DeepseekModel final : public CausalLM {
 public:
  DeepseekModel(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store, const ModelOptions& o)
      : CausalLM(c, backend, std::move(store), o.shard) {
    WeightLoader w = loader();
    load_common(w);
    for (int l = 0; l < config_.num_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      layers_[l].attention = std::make_unique<MlaAttention>(w, p + "self_attn.", config_, rope_, o.mla_prefill, shard_);
      if (config_.is_moe_layer(l))
        layers_[l].ffn = std::make_unique<Moe>(w, p + "mlp.", config_, shard_, o.expert_parallel);
      else
        layers_[l].ffn =
            std::make_unique<DenseMlp>(w, p + "mlp.", config_.hidden_size, config_.intermediate_size, shard_);
      layer_loaded(l);
    }
  }
};

}  // namespace

std::unique_ptr<Model> make_deepseek_model(const ModelConfig& c, Backend& backend,
                                          std::shared_ptr<const TensorStore> store, const ModelOptions& options) {
  return std::make_unique<DeepseekModel>(c, backend, std::move(store), options);
}

}  // namespace dsinfer
