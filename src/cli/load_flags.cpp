#include "cli/load_flags.h"

namespace dsinfer {

void add_load_flags(CLI::App& app, LoadOptions& o, bool dummy_weights) {
  app.add_option("--device", o.device, "cpu, cuda or cuda:N");
  app.add_flag("--enforce-eager", o.enforce_eager, "Decode op by op, without CUDA graphs");
  add_tensor_parallel_flags(app, o.tensor_parallel, o.model);
  add_model_flags(app, o.model);
  if (!dummy_weights) return;
  app.add_flag("--dummy-weights", o.dummy_weights, "Random weights at the real shapes (--model may name a catalog model)");
  app.add_option("--num-layers", o.num_layers, "Keep only the first N layers (with --dummy-weights)")
      ->check(CLI::Range(1, 1 << 20));
}

void add_tensor_parallel_flags(CLI::App& app, int& size, ModelOptions& o) {
  app.add_option("--tp,--tensor-parallel-size", size,
                 "Split the model over N devices from --device on (cuda:K..K+N-1; cpu: N host threads)")
      ->check(CLI::Range(1, 64));
  app.add_flag("--expert-parallel", o.expert_parallel,
               "With --tp: each device holds 1/N of the MoE's routed experts whole, not 1/N of every expert");
}

void add_model_flags(CLI::App& app, ModelOptions& o) {
  app.add_option_function<std::string>(
         "--mla-prefill", [&o](const std::string& s) { o.mla_prefill = parse_mla_prefill(s); },
         "DeepSeek MLA in steps with a prompt: auto, absorbed or expanded (default auto)")
      ->check(CLI::IsMember({"auto", "absorbed", "expanded"}));
  app.add_option_function<std::string>(
         "--quantization,-q", [&o](const std::string& s) { o.quantization = parse_quantization(s); },
         "fp8: linear weights stored in 16 or 32 bit load as FP8 e4m3 in 128x128 blocks (DeepSeek's format; "
         "half the bytes); none (default): as stored")
      ->check(CLI::IsMember({"none", "fp8"}));
  app.add_option_function<std::string>(
         "--kv-dtype", [&o](const std::string& s) { o.kv_dtype = parse_kv_cache_dtype(s); },
         "fp8: DeepSeek MLA's latent cache as e4m3 with a scale per 128 values and the rope key in bf16 "
         "(656 bytes a token and layer for V3 against 1152); auto (default): the activation dtype")
      ->check(CLI::IsMember({"auto", "fp8"}));
}

void add_block_size_flag(CLI::App& app, int& block_size) {
  app.add_option("--block-size", block_size,
                 "KV cache slots a block (0: the model's; 64 for DeepSeek MLA, whose GPU decode reads 64-key tiles, "
                 "16 otherwise)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
}

}  // namespace dsinfer
