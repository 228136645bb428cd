// The FP8 skinny kernel's rules for splitting a tile's K over warps (gemv_fp8_mma_splits) and for
// its form (gemv_fp8_mma_plan), at DeepSeek-V3's and the R1-Distill 7B's decode shapes on an H100's
// 132 SMs: what bench-gemm's skinny rows measured fastest (sessions 56 and 57). Host functions: no
// GPU.
#include <gtest/gtest.h>

#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {
namespace {

// Resident warps on an H100's 132 SMs: the wide form 3 blocks of 8 an SM (80 registers), the deep
// one 2 (94-100); before session 57 one kernel took 3 at 1 token and 2 at 2-4.
constexpr int64_t kWide = 132 * 3 * 8, kDeep = 132 * 2 * 8;
constexpr int64_t tiles(int64_t rows) { return (rows + 15) / 16; }

// Splits are taken in the wide form's slots (gemv_fp8_mma_plan).
TEST(GemvFp8MmaSplits, V3ShapesTakeTheMeasuredFastestCounts) {
  // o_proj (7168 x 16384) and the dense down (7168 x 18432): 448 tiles in one wave of 4 splits.
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(7168), 16384, kWide), 4);
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(7168), 18432, kWide), 4);
  // q_a + kv_a (2112 x 7168): 132 tiles, 8 splits of 7 groups.
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(2112), 7168, kWide), 8);
  // Dense gate + up (36864 x 7168): 4 splits; in 2112 slots the wave rule alone took 8 (9 waves of
  // 7 groups a warp: 189 against 136 us at 4 tokens, session 56).
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(36864), 7168, kWide), 4);
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(36864), 7168, kDeep), 4);
  // q_b (24576 x 1536, 12 groups): 2 splits in one wave of 3168 slots.
  EXPECT_EQ(gemv_fp8_mma_splits(tiles(24576), 1536, kWide), 2);
}

// The form of each product whose two forms bench-gemm timed (H100, session 57, us at 1 / 2 / 4
// tokens, wide against deep): the faster one at every count of tokens.
TEST(GemvFp8MmaPlan, TakesTheFormMeasuredFasterAtV3AndQwen7bShapes) {
  struct Case {
    const char* what;
    int64_t n, k;
    bool deep;
    int splits;
  };
  const Case cases[] = {
      {"V3 o_proj (48.4 / 56.1 / 78.1 against 42.8 / 47.4 / 61.1)", 7168, 16384, true, 4},
      {"V3 dense down (55.7 / 64.5 / 88.0 against 47.6 / 52.9 / 69.6)", 7168, 18432, true, 4},
      {"V3 q_a + kv_a (q_a alone: 12.2 / 15.2 / 20.8 against 11.4 / 13.7 / 19.5)", 2112, 7168, true, 8},
      {"V3 dense gate + up (92.8 / 96.9 / 116.7 against 96.7 / 103.1 / 136.5)", 36864, 7168, false, 4},
      {"V3 q_b (15.5 / 17.3 / 22.5 against 17.4 / 19.9 / 24.3)", 24576, 1536, false, 2},
      {"7B gate + up (52.3 / 56.6 / 71.6 against 56.3 / 60.3 / 80.7)", 37888, 3584, false, 1},
      {"7B q/k/v (9.6 / 10.4 / 13.0 against 12.4 / 15.8 / 21.7)", 4608, 3584, false, 8},
      {"7B down (32.2 / 39.2 / 56.0 against 27.9 / 32.6 / 46.0)", 3584, 18944, true, 8},
  };
  for (const Case& c : cases) {
    const GemvFp8MmaPlan plan = gemv_fp8_mma_plan(tiles(c.n), c.k, kWide, kDeep);
    EXPECT_EQ(plan.deep, c.deep) << c.what;
    EXPECT_EQ(plan.splits, c.splits) << c.what;
  }
  // Where both forms hold the same warps (a GPU whose registers fit no more wide blocks) the deep
  // one runs every launch that fits one wave.
  EXPECT_TRUE(gemv_fp8_mma_plan(tiles(4608), 3584, kDeep, kDeep).deep);
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
  EXPECT_EQ(gemv_fp8_mma_splits(1, 256, kWide), 1);
  // K of 512 (4 groups): at most 2 warps a tile.
  EXPECT_EQ(gemv_fp8_mma_splits(1, 512, kWide), 2);
}

}  // namespace
}  // namespace dsinfer::cuda
