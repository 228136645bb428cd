// Bytes of every weight and KV-cache format, and the KV bytes per token of each model.
#include <gtest/gtest.h>

#include "core/error.h"
#include "plan/kv_cache.h"
#include "plan/model_catalog.h"
#include "plan/params.h"
#include "plan/precision.h"
#include "plan/tensor_inventory.h"
#include "plan/weight_totals.h"

namespace dsinfer::plan {
namespace {

// MLA's kv_b_proj [128 x 256, 512] lives on the GPU as W_UK and W_UV in 16 bit whatever the
// checkpoint's format (the engine folds it at load): 2 bytes a value in FP8 too, and it still
// counts as a product. V3's layer 0, products split over tensor parallelism: q_b 24576 x 1536
// + kv_b 32768 x 512 + o 7168 x 16384 + gate, up, down 3 x 7168 x 18432 = 568,328,192 parameters.
TEST(PlanPrecision, MlaKvBProjectionStaysSixteenBit) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  int found = 0;
  for (const TensorGroup& t : layer_tensors(v3, 0)) {
    if (t.name != "model.layers.N.self_attn.kv_b_proj.weight") continue;
    ++found;
    EXPECT_EQ(t.role, TensorRole::Absorbed);
    for (WeightDtype d : {WeightDtype::FP8Block, WeightDtype::Int8Channel, WeightDtype::Int4Group, WeightDtype::BF16})
      EXPECT_EQ(tensor_bytes(t, {d}), int64_t(2) * 32768 * 512) << to_string(d);
    EXPECT_EQ(tensor_bytes(t, {WeightDtype::F32}), int64_t(4) * 32768 * 512);
  }
  EXPECT_EQ(found, 1);
  const WeightTotals w = WeightTotals::build(v3, {WeightDtype::FP8Block});
  EXPECT_EQ(w.layers[0].matmul_params[Shard::Split], 568328192.0);
}

TEST(PlanPrecision, LinearWeightBytes) {
  // An expert's down_proj [7168, 2048]: 14,680,064 elements.
  const int64_t n = 7168 * 2048;
  EXPECT_EQ(linear_weight_bytes({WeightDtype::BF16}, 7168, 2048), 2 * n);
  EXPECT_EQ(linear_weight_bytes({WeightDtype::F16}, 7168, 2048), 2 * n);
  EXPECT_EQ(linear_weight_bytes({WeightDtype::F32}, 7168, 2048), 4 * n);
  EXPECT_EQ(linear_weight_bytes({WeightDtype::FP8Block}, 7168, 2048), n + 56 * 16 * 4);  // 128x128 fp32 scales
  EXPECT_EQ(linear_weight_bytes({WeightDtype::Int8Channel}, 7168, 2048), n + 7168 * 4);  // fp32 per row
  EXPECT_EQ(linear_weight_bytes({WeightDtype::Int4Group}, 7168, 2048), n / 2 + 7168 * 16 * 2);  // fp16 per 128
  // Partial blocks round up: kv_a_proj_with_mqa [576, 7168] has 5 x 56 scale blocks.
  EXPECT_EQ(linear_weight_bytes({WeightDtype::FP8Block}, 576, 7168), 576 * 7168 + 5 * 56 * 4);
}

TEST(PlanPrecision, KvVectorBytes) {
  EXPECT_EQ(kv_vector_bytes(KvDtype::BF16, 576), 1152);
  EXPECT_EQ(kv_vector_bytes(KvDtype::FP8, 576), 576);
  EXPECT_EQ(kv_vector_bytes(KvDtype::Int8, 576), 18 * 34);  // q8_0: 32 bytes + fp16 scale per 32
  EXPECT_EQ(kv_vector_bytes(KvDtype::Int4, 576), 18 * 18);  // q4_0: 16 bytes + fp16 scale per 32
  EXPECT_EQ(kv_vector_bytes(KvDtype::Int4, 24), 18);        // a partial group still takes a block
}

TEST(PlanPrecision, ParseNamesTheChoices) {
  EXPECT_EQ(parse_weight_dtype("fp8"), WeightDtype::FP8Block);
  EXPECT_EQ(parse_kv_dtype("int4"), KvDtype::Int4);
  try {
    parse_weight_dtype("fp4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16, fp16, fp8, int8, int4 or as-stored"), std::string::npos);
  }
  EXPECT_THROW(parse_kv_dtype("fp16x"), Error);
}

TEST(PlanKvCache, BytesPerToken) {
  const ModelConfig v3 = load_plan_model("deepseek-v3").config;
  EXPECT_EQ(kv_bytes_per_token(v3, KvDtype::BF16), 61 * 576 * 2);  // 70,272
  EXPECT_EQ(kv_bytes_per_token(v3, KvDtype::BF16), 70272);
  // The engine's FP8 latent row: 512 e4m3 + 4 float32 scales + 64 bf16 rope values.
  EXPECT_EQ(kv_bytes_per_token(v3, KvDtype::FP8), 61 * (512 + 16 + 128));  // 40,016
  EXPECT_EQ(kv_bytes_per_token(v3, KvDtype::Int8), 61 * 18 * 34);
  EXPECT_EQ(kv_bytes_per_token(v3, KvDtype::Int4), 61 * 18 * 18);
  const ModelConfig q7 = load_plan_model("deepseek-r1-distill-qwen-7b").config;
  EXPECT_EQ(kv_bytes_per_token(q7, KvDtype::BF16), 2 * 28 * 4 * 128 * 2);  // 57,344
  EXPECT_EQ(kv_bytes_per_token(q7, KvDtype::BF16), 57344);
  EXPECT_EQ(kv_bytes_per_token(q7, KvDtype::Int4), 28 * 2 * 4 * 4 * 18);
  EXPECT_EQ(kv_bytes_per_token(load_plan_model("deepseek-r1-distill-llama-70b").config, KvDtype::BF16), 327680);
  EXPECT_EQ(kv_bytes_per_token(load_plan_model("deepseek-v2-lite").config, KvDtype::BF16), 27 * 576 * 2);
}

TEST(PlanKvCache, PerGpuUnderTensorParallel) {
  const ModelConfig v3 = load_plan_model("deepseek-v3").config;
  // The MLA latent is shared by all heads: every GPU of the TP group holds the whole row.
  EXPECT_EQ(kv_bytes_per_token_per_layer(v3, KvDtype::BF16, 8), 1152);
  const ModelConfig q7 = load_plan_model("deepseek-r1-distill-qwen-7b").config;
  EXPECT_EQ(kv_bytes_per_token_per_layer(q7, KvDtype::BF16, 2), 2 * 2 * 128 * 2);
  // 4 KV heads on 8 GPUs: each GPU holds one (replicated), not half of one.
  EXPECT_EQ(kv_bytes_per_token_per_layer(q7, KvDtype::BF16, 8), 2 * 1 * 128 * 2);
}

TEST(PlanKvCache, CapacityInWholeBlocks) {
  EXPECT_EQ(kv_cache_max_tokens(1000000, 1000, 16), 992);  // 62 blocks of 16
  EXPECT_EQ(kv_cache_max_tokens(15999, 1000, 16), 0);
  EXPECT_EQ(kv_cache_max_tokens(-5, 1000, 16), 0);
  EXPECT_EQ(kv_cache_max_tokens(1000000, 1000, 32), 992);
  EXPECT_EQ(kv_cache_max_sequences(992, 100, 16), 8);  // 7 blocks each -> 62 / 7
  EXPECT_EQ(kv_cache_max_sequences(992, 112, 16), 8);
  EXPECT_EQ(kv_cache_max_sequences(960, 100, 64), 7);  // 2 blocks of 64 each -> 15 / 2
  const double gib80 = 80.0 * (1 << 30);
  EXPECT_EQ(kv_cache_bytes_available(gib80, 0.9, 50000000000, 1000000000), int64_t(gib80 * 0.9) - 51000000000);
  EXPECT_LT(kv_cache_bytes_available(gib80, 0.5, int64_t(gib80), 0), 0);
}

TEST(PlanWeights, WhatStaysIn16Bit) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  // Quantizing to int4 leaves embeddings, norms, router and its fp32 bias alone.
  for (const TensorGroup& t : all_tensors(v3)) {
    if (t.role == TensorRole::Linear) continue;
    const int64_t expect = t.role == TensorRole::RouterBias ? 4 * t.elements() : 2 * t.elements();
    EXPECT_EQ(tensor_bytes(t, {WeightDtype::Int4Group}), expect) << t.name;
    EXPECT_EQ(tensor_bytes(t, {WeightDtype::FP8Block}), expect) << t.name;
  }
}

TEST(PlanWeights, BytesByFormat) {
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  const ParamCounts p = count_params(q7);
  EXPECT_EQ(weight_bytes(q7, {WeightDtype::BF16}), 2 * p.total);
  EXPECT_EQ(weight_bytes(q7, {WeightDtype::F32}), 4 * p.total);
  const PlanModel v3 = load_plan_model("deepseek-v3");
  const int64_t bf16 = weight_bytes(v3, {WeightDtype::BF16});
  // Everything in bf16 but the 58 fp32 e_score_correction_bias vectors.
  EXPECT_EQ(bf16, 2 * count_params(v3).total + 58 * 256 * 2);
  const int64_t fp8 = weight_bytes(v3, v3.stored), int4 = weight_bytes(v3, {WeightDtype::Int4Group});
  EXPECT_EQ(v3.stored.dtype, WeightDtype::FP8Block);
  EXPECT_GT(fp8, bf16 / 2);
  EXPECT_LT(fp8, bf16 / 2 + bf16 / 50);
  EXPECT_LT(int4, fp8 * 6 / 10);
}

}  // namespace
}  // namespace dsinfer::plan
