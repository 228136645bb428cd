// The memory floor `dsinfer bench-gemm` reports for the grouped FP8 MoE GEMM (gemm_bench.h):
// the bytes each launch must move, at DeepSeek-V3's MoE shape, counted here by hand.
#include <gtest/gtest.h>

#include "backend/cuda/gemm_bench.h"

using dsinfer::cuda::MoeBenchRow;

TEST(MoeBenchBytes, V3ShapeCountsWeightsRowsAndOutputs) {
  MoeBenchRow r;  // 4096 tokens x top-8 of 256 experts, hidden 7168, inter 2048
  r.active_experts = 256;
  const double rows = 4096.0 * 8;
  // gate+up: 256 x (4096 x 7168 weight bytes + 32 x 56 block scales of 4 bytes); rows x (7168 +
  // 56 x 4) read; rows x 2048 bf16 written.
  EXPECT_DOUBLE_EQ(r.gate_up_bytes(), 256 * (4096.0 * 7168 + 32 * 56 * 4) + rows * (7168 + 56 * 4) + rows * 2048 * 2);
  // down: 256 x (7168 x 2048 + 56 x 16 x 4); rows x (2048 + 16 x 4); rows x 7168 bf16.
  EXPECT_DOUBLE_EQ(r.down_bytes(), 256 * (7168.0 * 2048 + 56 * 16 * 4) + rows * (2048 + 16 * 4) + rows * 7168 * 2);
  EXPECT_NEAR(r.gate_up_bytes() / 1e9, 7.894, 0.001);
  EXPECT_NEAR(r.down_bytes() / 1e9, 4.298, 0.001);
}

TEST(MoeBenchBytes, OnlyActiveExpertsWeightsCountAndTheFloorIsBytesOverBandwidth) {
  MoeBenchRow r;
  r.shape = {64, 6, 64, 2048, 1408};  // V2-Lite's MoE at 64 tokens
  r.active_experts = 10;
  const double ten = r.down_bytes();
  r.active_experts = 11;
  EXPECT_DOUBLE_EQ(r.down_bytes() - ten, 2048.0 * 1408 + 16 * 11 * 4);
  r.copy_bandwidth = 4e12;
  EXPECT_DOUBLE_EQ(r.floor_ms(4e9), 1.0);
}
