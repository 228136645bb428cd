// Online FP8 quantization (--quantization fp8): which weights it takes, that a quantized model
// computes what its linear weights quantized and dequantized compute, and that its bytes are
// the ones `dsinfer plan --weights-dtype fp8` counts.
#include "model/weight_quantization.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "../fp8_checkpoint_util.h"
#include "backend/backend.h"
#include "core/error.h"
#include "model/model.h"
#include "model/score.h"
#include "plan/precision.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

const char* const kFixtures[] = {"qwen2-tiny", "llama-tiny", "ds2-lite-tiny", "ds3-tiny"};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

ModelConfig fixture_config(const std::string& fixture) {
  return ModelConfig::from_json(read_json_file(fixture_dir(fixture) + "/config.json"));
}

}  // namespace

// Every projection of every layer kind (attention, MLA's down-projections and q_b, dense MLPs,
// routed and shared experts) and nothing else: not the embedding, the head, the router, a norm,
// or MLA's kv_b_proj, which the model folds at load into W_UK and W_UV kept in 16 bit (the plan
// counts it so): quantizing it would only round it.
TEST(WeightQuantization, TakesTheLinearWeightsOfEveryFixture) {
  for (const char* fixture : kFixtures) {
    const LinearWeightNames linear(fixture_config(fixture));
    const TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
    int taken = 0;
    for (const std::string& name : store.names()) {
      const bool projection = (ends_with(name, "_proj.weight") || ends_with(name, "_proj_with_mqa.weight")) &&
                              !ends_with(name, "kv_b_proj.weight");
      EXPECT_EQ(linear.contains(name), projection) << fixture << ": " << name;
      taken += projection;
    }
    EXPECT_GT(taken, 0) << fixture;
  }
  const LinearWeightNames v3(fixture_config("ds3-tiny"));
  EXPECT_TRUE(v3.contains("model.layers.12.mlp.experts.255.down_proj.weight"));
  EXPECT_FALSE(v3.contains("model.layers.12.mlp.gate.weight"));
  EXPECT_FALSE(v3.contains("model.layers.3.self_attn.kv_b_proj.weight"));
  EXPECT_TRUE(v3.contains("model.layers.3.self_attn.q_b_proj.weight"));
  EXPECT_FALSE(v3.contains("model.layers12.mlp.experts.3.down_proj.weight"));
}

// The quantizer's blocks: values within e4m3's rounding of the originals, the largest |value| of
// each block on 448, partial blocks at both edges.
TEST(WeightQuantization, QuantizesInBlocksOf128) {
  const int64_t rows = 200, cols = 300;
  std::vector<float> w(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) w[i] = std::sin(0.37f * i) * (1 + i % 7) * 0.01f;
  Buffer storage;
  const Weight q = quantize_weight_fp8(Weight{Tensor{DType::F32, {rows, cols}, w.data(), Device{}}, {}, 0, 0}, storage);
  ASSERT_EQ(q.w.dtype, DType::F8_E4M3);
  ASSERT_EQ(q.scale.shape, (Shape{2, 3}));
  EXPECT_EQ(q.block_rows, 128);
  std::vector<float> row(cols);
  float block_max[2][3] = {};
  for (int64_t r = 0; r < rows; ++r) {
    weight_row_to_f32(q, r, row.data());
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_NEAR(row[c], w[r * cols + c], std::fabs(w[r * cols + c]) / 16 + 1e-6f) << r << "," << c;
      float& m = block_max[r / 128][c / 128];
      m = std::max(m, std::fabs(fp8e4m3_to_f32(static_cast<const uint8_t*>(q.w.data)[r * cols + c])));
    }
  }
  for (auto& band : block_max)
    for (float m : band) EXPECT_EQ(m, 448.0f);
}

// Each fixture loaded with --quantization fp8 computes, on the CPU, exactly what the fixture with
// its linear weights quantized and dequantized to F32 computes; its weights take the bytes the
// planner counts for FP8 linear weights.
TEST(WeightQuantization, ModelComputesItsDequantizedTwinAndTakesThePlannedBytes) {
  for (const char* fixture : kFixtures) {
    const fs::path root = fs::temp_directory_path() / cat("dsinfer_quantize_", fixture, "_", ::getpid());
    const LinearWeightNames linear(fixture_config(fixture));
    make_fp8_checkpoints(fixture, 128, root / "fp8", root / "ref",
                         [&](const std::string& name) { return linear.contains(name); });
    auto backend = make_cpu_backend();
    ModelOptions quantize;
    quantize.quantization = Quantization::Fp8;
    const ModelDir dir = ModelDir::open(fixture_dir(fixture));
    auto quantized = load_model(dir, *backend, quantize);
    auto twin = load_model(ModelDir::open((root / "ref").string()), *backend);
    const std::vector<int> ids = fixture_ref(fixture)["sequences"][0]["input_ids"].get<std::vector<int>>();
    const std::vector<float> a = score_tokens(*quantized, *backend, ids), b = score_tokens(*twin, *backend, ids);
    ASSERT_EQ(a.size(), b.size());
    float max_ref = 0, max_err = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(b[i]));
      max_err = std::max(max_err, std::fabs(a[i] - b[i]));
    }
    EXPECT_LE(max_err, 1e-5f * max_ref) << fixture;
    EXPECT_TRUE(quantized->config().fp8_checkpoint) << fixture;

    // The bytes: each linear weight's stored bytes become what the planner counts for it in FP8
    // (MLA's kv_b_proj is not held as loaded: the model keeps its per-head reshaping).
    auto plain = load_model(dir, *backend);
    const TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
    const plan::WeightFormat fp8{plan::WeightDtype::FP8Block, 128, 128};
    int64_t change = 0;
    for (const std::string& name : store.names()) {
      const Tensor& t = store.get(name).view;
      if (linear.contains(name) && !ends_with(name, "kv_b_proj.weight"))
        change += plan::linear_weight_bytes(fp8, t.dim(0), t.dim(1)) - static_cast<int64_t>(t.nbytes());
    }
    EXPECT_EQ(static_cast<int64_t>(quantized->weight_bytes()) - static_cast<int64_t>(plain->weight_bytes()), change)
        << fixture;
    fs::remove_all(root);
  }
}

TEST(WeightQuantization, NamesItsChoices) {
  EXPECT_EQ(parse_quantization("fp8"), Quantization::Fp8);
  EXPECT_EQ(parse_quantization("none"), Quantization::None);
  try {
    parse_quantization("int4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none or fp8"), std::string::npos) << e.what();
  }
}
