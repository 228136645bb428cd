// The FP8 skinny kernel's rule for splitting a tile's K over warps (gemv_fp8_mma_splits), at
// DeepSeek-V3's decode shapes on an H100's 132 SMs: the counts that bench-gemm's skinny rows
// measured fastest under forced splits of 1, 2, 4 and 8 (session 56). A host function: no GPU.
#include <gtest/gtest.h>

#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {
namespace {

// Resident warps: 3 blocks of 8 an SM at 1 token (80 registers), 2 at 2-4 tokens (96-98).
constexpr int64_t kOneToken = 132 * 3 * 8, kFewTokens = 132 * 2 * 8;
constexpr int64_t tiles(int64_t rows) { return (rows + 15) / 16; }

TEST(GemvFp8MmaSplits, V3ShapesTakeTheMeasuredFastestCounts) {
  // o_proj (7168 x 16384) and the dense down (7168 x 18432): 448 tiles in one wave of 4 splits.
  for (int64_t slots : {kOneToken, kFewTokens}) {
    EXPECT_EQ(gemv_fp8_mma_splits(tiles(7168), 16384, slots), 4);
    EXPECT_EQ(gemv_fp8_mma_splits(tiles(7168), 18432, slots), 4);
    // q_a + kv_a (2112 x 7168): 132 tiles, 8 splits of 7 groups.
    EXPECT_EQ(gemv_fp8_mma_splits(tiles(2112), 7168, slots), 8);
  }
  // Dense gate + up (36864 x 7168): 4 splits at every count of tokens; at 2-4 tokens the wave rule
  // alone took 8 (9 waves of 7 groups a warp: 189 against 136 us at 4 tokens).
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(36864), 7168, kOneToken), 4);
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(36864), 7168, kFewTokens), 4);
  // q_b (24576 x 1536, 12 groups): 2 splits in one wave at 1 token; at 2-4 tokens one warp a tile
  // in one wave, where the wave rule alone took 4 splits in 3 (41.5 against 24.4 us at 4 tokens).
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(24576), 1536, kOneToken), 2);
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(24576), 1536, kFewTokens), 1);
}

// Without a fixed cost the rule is the wave count alone (kernels.h's example: 128 blocks on 132
// slots take 1 split, not 2); with one, fewer and longer parts can win over more waves.
TEST(FewestWaveSplits, WholeWavesTimesEachPartsWork) {
  const auto halvings = [](int s) { return 8 % s == 0; };
  EXPECT_EQ(fewest_wave_splits(128, 132, 8, halvings), 1);
  EXPECT_EQ(fewest_wave_splits(33, 132, 8, halvings), 4);
  // 2304 units on 2112 slots: 8 splits (9 waves of 1/8) beat 4 (5 of 1/4) without a fixed cost,
  // and lose to them with a cost of 5/56 a part (V3's gate + up at 4 tokens).
  EXPECT_EQ(fewest_wave_splits(2304, 2112, 8, halvings), 8);
  EXPECT_EQ(fewest_wave_splits(2304, 2112, 8, halvings, 5.0 / 56), 4);
}

TEST(GemvFp8MmaSplits, EachWarpTakesAStepOfTwoGroupsAtLeast) {
  // K of 256 (2 groups): one warp a tile however few the tiles.
  EXPECT_EQ(gemv_fp8_mma_splits(1, 256, kOneToken), 1);
  // K of 512 (4 groups): at most 2 warps a tile.
  EXPECT_EQ(gemv_fp8_mma_splits(1, 512, kOneToken), 2);
}

}  // namespace
}  // namespace dsinfer::cuda
