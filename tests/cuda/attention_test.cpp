// GQA and MLA attention of the CUDA backend against the CPU reference: several sequences per
// batch, shuffled block tables, new tokens after cached ones (chunked prefill), decode over long
// contexts (split over the sequence), head dims from the tiny fixtures' 8 up to 256.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

struct SeqSpec {
  int past;  // tokens already in the cache
  int len;   // new tokens in this step
};

constexpr int kBlock = 16;

// The sequences back to back, their cache blocks (of `block` slots) drawn from a shuffled pool
// of `blocks`.
ForwardBatch paged_batch(const std::vector<SeqSpec>& specs, int blocks, uint32_t seed, int block = kBlock) {
  std::vector<int> pool(blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937(seed));
  ForwardBatch b;
  b.block_size = block;
  size_t next = 0;
  for (const SeqSpec& sp : specs) {
    SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = sp.len;
    s.context_len = sp.past + sp.len;
    for (int i = 0; i < (s.context_len + block - 1) / block; ++i) s.block_table.push_back(pool.at(next++));
    for (int p = sp.past; p < s.context_len; ++p) {
      b.tokens.push_back(0);
      b.positions.push_back(p);
      b.slots.push_back(s.block_table[p / block] * block + p % block);
    }
    b.seqs.push_back(s);
  }
  return b;
}

int blocks_needed(const std::vector<SeqSpec>& specs, int block = kBlock) {
  int n = 0;
  for (const SeqSpec& s : specs) n += (s.past + s.len + block - 1) / block;
  return n + 3;  // a few never used
}

// v_dim 0: the values are as wide as the keys. The op runs `repeats` times on one backend, each
// output checked (decode merges its splits on counters that each launch leaves at zero).
void check_gqa(const std::vector<SeqSpec>& specs, int heads, int kv_heads, int dim, uint32_t seed, int v_dim = 0,
               int block = kBlock, int repeats = 1) {
  if (v_dim == 0) v_dim = dim;
  SCOPED_TRACE(::testing::Message() << heads << " heads over " << kv_heads << ", dims " << dim << "/" << v_dim
                                    << ", block " << block);
  GpuTest g;
  const int blocks = blocks_needed(specs, block), slots = blocks * block;
  ForwardBatch b = paged_batch(specs, blocks, seed, block);
  const int t = b.num_tokens();
  std::vector<float> q = random_values(t * heads * dim, 1.0f, seed + 1);
  std::vector<float> k = random_values(slots * kv_heads * dim, 1.0f, seed + 2);
  std::vector<float> v = random_values(slots * kv_heads * v_dim, 1.0f, seed + 3);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  std::vector<float> want(t * heads * v_dim);
  g.cpu->attention(b, host_view(q, {t, heads, dim}),
                   {host_view(k, {slots, kv_heads * dim}), host_view(v, {slots, kv_heads * v_dim})}, kv_heads, dim,
                   v_dim, scale, host_view(want, {t, heads, v_dim}));
  g.gpu->begin_forward(b);
  const Tensor gq = g.gpu_bf16(q, {t, heads, dim});
  const KvLayer gkv{g.gpu_bf16(k, {slots, kv_heads * dim}), g.gpu_bf16(v, {slots, kv_heads * v_dim})};
  for (int i = 0; i < repeats; ++i) {
    Tensor out = g.gpu_tensor(DType::BF16, {t, heads, v_dim});
    g.gpu->attention(b, gq, gkv, kv_heads, dim, v_dim, scale, out);
    expect_close(g.read(out), want, 2e-2f, "attention");
  }
}

void check_mla(const std::vector<SeqSpec>& specs, int heads, int lora, int rope, uint32_t seed, int block = kBlock) {
  SCOPED_TRACE(::testing::Message() << heads << " heads, latent " << lora << " + rope " << rope << ", block "
                                    << block);
  GpuTest g;
  const int blocks = blocks_needed(specs, block), slots = blocks * block, width = lora + rope;
  ForwardBatch b = paged_batch(specs, blocks, seed, block);
  const int t = b.num_tokens();
  std::vector<float> q_lat = random_values(t * heads * lora, 1.0f, seed + 1);
  std::vector<float> q_rope = random_values(t * heads * rope, 1.0f, seed + 2);
  std::vector<float> cache = random_values(slots * width, 1.0f, seed + 3);
  const float scale = 1.0f / std::sqrt(192.0f);
  std::vector<float> want(t * heads * lora);
  g.cpu->mla_attention(b, host_view(q_lat, {t, heads, lora}), host_view(q_rope, {t, heads, rope}),
                       host_view(cache, {slots, width}), lora, scale, host_view(want, {t, heads, lora}));
  g.gpu->begin_forward(b);
  Tensor out = g.gpu_tensor(DType::BF16, {t, heads, lora});
  g.gpu->mla_attention(b, g.gpu_bf16(q_lat, {t, heads, lora}), g.gpu_bf16(q_rope, {t, heads, rope}),
                       g.gpu_bf16(cache, {slots, width}), lora, scale, out);
  expect_close(g.read(out), want, 2e-2f, "mla_attention");
}

}  // namespace

TEST(GpuAttention, PrefillManySequencesAndHeadDims) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 100}, {37, 20}, {200, 1}, {0, 1}, {5, 64}};
  for (int dim : {8, 64, 128, 256}) check_gqa(specs, 8, 2, dim, 100 + dim);
  check_gqa(specs, 4, 4, 16, 7);  // no grouping
}

// The prefill kernel's rows are (token, head) pairs of a kv head's group: long prompts (many
// 64-key tiles, the diagonal inside a block), chunks continuing a cached prefix, groups of 1, 7
// and 8 (the rows a block's tokens fill exactly or not), a group wider than a block's 128 rows,
// values narrower than keys, head dims that allow no 16-byte copies, odd cache block sizes.
TEST(GpuAttention, PrefillLongPromptsChunksAndGroups) {
  SKIP_WITHOUT_GPU();
  check_gqa({{0, 1030}}, 28, 4, 128, 51);                           // Qwen2-7B, one long prompt
  check_gqa({{1100, 300}, {0, 45}, {64, 64}, {7, 1}}, 28, 4, 128, 52);  // chunks after cached prefixes
  for (int group : {1, 7, 8}) {
    check_gqa({{0, 300}, {250, 20}, {3, 2}}, 2 * group, 2, 64, 53 + group);
    check_gqa({{0, 200}, {129, 70}}, group, 1, 128, 63 + group);
  }
  check_gqa({{0, 40}, {90, 3}}, 160, 1, 64, 71);          // two head chunks of a 160-head group
  check_gqa({{0, 150}, {70, 30}}, 8, 2, 192, 72, 128);    // v_dim < head_dim
  check_gqa({{0, 90}, {33, 17}}, 6, 3, 12, 73);           // 12: element copies, not cp.async
  check_gqa({{0, 333}, {100, 50}}, 14, 2, 128, 74, 0, 7);  // cache blocks of 7 slots
}

TEST(GpuAttention, DecodeLongContextsSplitOverTheSequence) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 1}, {36, 1}, {700, 1}, {2500, 1}};
  check_gqa(specs, 28, 4, 128, 11);  // Qwen2-7B: 7 query heads per kv head
  check_gqa(specs, 32, 8, 64, 12);
  check_gqa(specs, 4, 2, 8, 13);      // the tiny fixtures' shape
  check_gqa({{4000, 1}}, 20, 1, 128, 14);  // 20 heads sharing one kv head: several head chunks
}

// Decode merges its splits in the kernel (the last split of a row to finish): repeated launches
// on one backend (the counters reset themselves), one short sequence (most splits empty), cache
// blocks of 7 slots, element copies, values narrower than keys, two head chunks of a group.
TEST(GpuAttention, DecodeSplitsMergedInTheKernel) {
  SKIP_WITHOUT_GPU();
  check_gqa({{575, 1}}, 28, 4, 128, 21, 0, kBlock, 3);
  check_gqa({{0, 1}, {63, 1}, {64, 1}, {1000, 1}, {130, 1}}, 28, 4, 128, 22, 0, kBlock, 3);
  check_gqa({{300, 1}, {1500, 1}, {5, 1}}, 14, 2, 128, 23, 0, 7, 2);  // cache blocks of 7 slots
  check_gqa({{900, 1}, {40, 1}}, 6, 3, 12, 24, 0, kBlock, 2);         // 12: element copies
  check_gqa({{700, 1}, {2000, 1}}, 8, 2, 192, 25, 128, kBlock, 2);    // v_dim < head_dim
  check_gqa({{3000, 1}, {17, 1}}, 40, 2, 64, 26, 0, kBlock, 2);       // two head chunks of 20
}

TEST(GpuAttention, MlaPrefill) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 70}, {30, 5}, {0, 1}};
  check_mla(specs, 128, 512, 64, 21);
  check_mla(specs, 16, 512, 64, 22);
  check_mla(specs, 4, 16, 8, 23);  // ds3-tiny
  check_mla(specs, 40, 32, 8, 24);
}

TEST(GpuAttention, MlaDecodeLongContexts) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 1}, {100, 1}, {3000, 1}};
  check_mla(specs, 128, 512, 64, 31);
  check_mla(specs, 16, 512, 64, 32);
  check_mla(specs, 4, 32, 8, 33);  // ds2-lite-tiny
}

// The wgmma decode kernel (DeepSeek's latent 512 + rope 64): contexts around the 64-key tile
// edges and long ones, several sequences of different lengths in one batch, blocks of 16, 48
// (pages across tile edges), 64 and 128 slots (TMA boxes of 16, 16, 64 and 64 rows); V3's 128
// heads (two blocks of 64), V2-Lite's 16 (one partly empty block) and 80 (a full and a partial
// block).
TEST(GpuAttention, MlaDecodeDeepSeekShapes) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 1}, {62, 1}, {63, 1}, {64, 1}, {999, 1}, {4095, 1}};
  for (int block : {16, 48, 64, 128}) {
    check_mla(specs, 128, 512, 64, 41, block);
    check_mla(specs, 16, 512, 64, 42, block);
  }
  check_mla({{2, 1}, {130, 1}}, 80, 512, 64, 43);
  // One sequence: many splits of one tile each, most of them past its end.
  for (int ctx : {1, 65, 4096}) check_mla({{ctx - 1, 1}}, 128, 512, 64, 44 + ctx, 64);
  // Enough blocks (70 tokens x 2 head blocks) for one wave: no splits, bf16 written directly.
  std::vector<SeqSpec> many;
  for (int i = 0; i < 70; ++i) many.push_back({(i * 37) % 300, 1});
  check_mla(many, 128, 512, 64, 45);
}
