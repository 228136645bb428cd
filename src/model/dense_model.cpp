// The dense families: LlamaForCausalLM (R1-Distill-Llama, llama3 rope) and Qwen2ForCausalLM
// (R1-Distill-Qwen, qkv bias): GQA attention + SiLU MLP in every layer.
#include "model/causal_lm.h"
#include "model/dense_mlp.h"
#include "model/gqa_attention.h"

namespace dsinfer {
namespace {

class DenseModel final : public CausalLM {
 public:
  DenseModel(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store, const ModelOptions& o)
      : CausalLM(c, backend, std::move(store), o) {
    WeightLoader w = loader();
    load_common(w);
    for (int l = 0; l < config_.num_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      layers_[l].attention = std::make_unique<GqaAttention>(w, p + "self_attn.", config_, rope_, shard_);
      layers_[l].ffn = std::make_unique<DenseMlp>(w, p + "mlp.", config_.hidden_size, config_.intermediate_size, shard_);
      layer_loaded(l);
    }
  }
};

}  // namespace

std::unique_ptr<Model> make_dense_model(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store,
                                        const ModelOptions& options) {
  return std::make_unique<DenseModel>(c, backend, std::move(store), options);
}

}  // namespace dsinfer
