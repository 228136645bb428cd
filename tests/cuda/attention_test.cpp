// GQA and MLA attention of the CUDA backend against the CPU reference: several sequences per
// batch, shuffled block tables, new tokens after cached ones (chunked prefill), decode over long
// contexts (split over the sequence), head dims from the tiny fixtures' 8 up to 256.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "gpu_test_util.h"
#include "../mla_reference.h"
#include "../paged_batch.h"
#include "core/latent_fp8.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kBlock = 16;

// v_dim 0: the values are as wide as the keys. The op runs `repeats` times on one backend, each
// output checked (decode merges its splits on counters that each launch leaves at zero). Packed:
// the keys and values are each sequence's context back to back (KvLayer::packed), not pages.
void check_gqa(const std::vector<SeqSpec>& specs, int heads, int kv_heads, int dim, uint32_t seed, int v_dim = 0,
               int block = kBlock, int repeats = 1, bool packed = false) {
  if (v_dim == 0) v_dim = dim;
  SCOPED_TRACE(::testing::Message() << heads << " heads over " << kv_heads << ", dims " << dim << "/" << v_dim
                                    << ", block " << block << (packed ? ", packed" : ""));
  GpuTest g;
  const int blocks = blocks_needed(specs, block);
  ForwardBatch b = paged_batch(specs, blocks, seed, block);
  const int t = b.num_tokens();
  const int slots = packed ? static_cast<int>(b.context_starts().back()) : blocks * block;
  std::vector<float> q = random_values(t * heads * dim, 1.0f, seed + 1);
  std::vector<float> k = random_values(slots * kv_heads * dim, 1.0f, seed + 2);
  std::vector<float> v = random_values(slots * kv_heads * v_dim, 1.0f, seed + 3);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  std::vector<float> want(t * heads * v_dim);
  g.cpu->attention(b, host_view(q, {t, heads, dim}),
                   {host_view(k, {slots, kv_heads * dim}), host_view(v, {slots, kv_heads * v_dim}), packed}, kv_heads,
                   dim, v_dim, scale, host_view(want, {t, heads, v_dim}));
  g.gpu->begin_forward(b);
  const Tensor gq = g.gpu_bf16(q, {t, heads, dim});
  const KvLayer gkv{g.gpu_bf16(k, {slots, kv_heads * dim}), g.gpu_bf16(v, {slots, kv_heads * v_dim}), packed};
  for (int i = 0; i < repeats; ++i) {
    Tensor out = g.gpu_tensor(DType::BF16, {t, heads, v_dim});
    g.gpu->attention(b, gq, gkv, kv_heads, dim, v_dim, scale, out);
    expect_close(g.read(out), want, 2e-2f, "attention");
  }
}

// rope_cache_attention (decode steps fold rope and the cache writes into the decode kernel)
// against the CPU's rope_and_cache then attention: the output and both caches, which must hold
// the new rows at their slots. A slot of -1 (a recorded batch's padding) is written nowhere.
void check_gqa_rope(const std::vector<SeqSpec>& specs, int heads, int kv_heads, int dim, int v_dim, RopeStyle style,
                    uint32_t seed, int repeats = 1, bool pad_last = false) {
  SCOPED_TRACE(::testing::Message() << heads << " heads over " << kv_heads << ", dims " << dim << "/" << v_dim
                                    << (style == RopeStyle::Neox ? ", neox" : ", interleaved"));
  GpuTest g;
  const int blocks = blocks_needed(specs, kBlock), slots = blocks * kBlock;
  ForwardBatch b = paged_batch(specs, blocks, seed, kBlock);
  if (pad_last) b.slots.back() = -1;
  const int t = b.num_tokens();
  const std::vector<float> q = random_values(t * heads * dim, 1.0f, seed + 1);
  const std::vector<float> k = random_values(t * kv_heads * dim, 1.0f, seed + 2);
  std::vector<float> v = random_values(t * kv_heads * v_dim, 1.0f, seed + 3);
  const std::vector<float> k_cache = random_values(slots * kv_heads * dim, 1.0f, seed + 4);
  const std::vector<float> v_cache = random_values(slots * kv_heads * v_dim, 1.0f, seed + 5);
  std::vector<float> inv = rope_frequencies(dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim)), factor = 1.1f;
  std::vector<float> wq = q, wk = k, wkc = k_cache, wvc = v_cache, want(t * heads * v_dim);
  g.cpu->rope_cache_attention(b, host_view(wq, {t, heads, dim}), host_view(wk, {t, kv_heads, dim}),
                              host_view(v, {t, kv_heads, v_dim}),
                              {host_view(wkc, {slots, kv_heads * dim}), host_view(wvc, {slots, kv_heads * v_dim})},
                              RopeParams{host_view(inv, {dim / 2}), factor, style}, kv_heads, scale,
                              host_view(want, {t, heads, v_dim}));
  g.gpu->begin_forward(b);
  const RopeParams rope{g.gpu_f32(inv, {dim / 2}), factor, style};
  const KvLayer gkv{g.gpu_bf16(k_cache, {slots, kv_heads * dim}), g.gpu_bf16(v_cache, {slots, kv_heads * v_dim})};
  for (int i = 0; i < repeats; ++i) {
    Tensor gq = g.gpu_bf16(q, {t, heads, dim}), gk = g.gpu_bf16(k, {t, kv_heads, dim});
    Tensor out = g.gpu_tensor(DType::BF16, {t, heads, v_dim});
    g.gpu->rope_cache_attention(b, gq, gk, g.gpu_bf16(v, {t, kv_heads, v_dim}), gkv, rope, kv_heads, scale, out);
    expect_close(g.read(out), want, 2e-2f, "attention");
    expect_close(g.read(gkv.k), wkc, 1e-2f, "k cache");
    expect_close(g.read(gkv.v), wvc, 1e-2f, "v cache");
  }
}

// An FP8 row's values as an attention kernel's tiles hold them: f16 in the wgmma decode kernel
// (DeepSeek's shape, one token a sequence; an sm_90 device, as the GPU tests run on), each the
// exact e4m3 value times its scale rounded to f16, the product rounded to f16 (a scale below
// f16's normal range: times the scale x 2^10, then 2^-10, dequantize16_f16); bf16 in the
// mma.sync kernel. The rope values are bf16 either way.
void tile_values(const LatentFp8Layout& l, const uint8_t* row, bool f16_tiles, float* x) {
  const auto f16 = [](float v) { return f16_to_f32(f32_to_f16(v)); };
  dequantize_latent_row(l, row, x);
  for (int g = 0; f16_tiles && g < l.groups; ++g) {
    float scale;
    std::memcpy(&scale, row + l.scale_offset + 4 * g, 4);
    const float tiny = scale < 0x1p-14f ? 0x1p-10f : 1.0f, s16 = f16(scale / tiny);
    for (int c = g * kLatentFp8Group; c < std::min(l.lora, (g + 1) * kLatentFp8Group); ++c)
      x[c] = f16(f16(fp8e4m3_to_f32(row[c]) * s16) * tiny);
  }
  for (int c = 0; !f16_tiles && c < l.lora; ++c) x[c] = bf16_to_f32(f32_to_bf16(x[c]));
}

// key_doublings(p): the cache row of each sequence's position p is scaled by 2^key_doublings(p)
// (exact in bf16, so both backends still see the same inputs).
// fp8: the GPU reads the rows as FP8 latent rows (--kv-dtype fp8), the CPU the values they hold.
// q_range: the queries' values lie in [-q_range, q_range].
void check_mla(const std::vector<SeqSpec>& specs, int heads, int lora, int rope, uint32_t seed, int block = kBlock,
               int repeats = 1, int (*key_doublings)(int) = nullptr, bool fp8 = false, float q_range = 1.0f) {
  SCOPED_TRACE(::testing::Message() << heads << " heads, latent " << lora << " + rope " << rope << ", block "
                                    << block << (fp8 ? ", fp8 rows" : ""));
  GpuTest g;
  const int blocks = blocks_needed(specs, block), slots = blocks * block, width = lora + rope;
  ForwardBatch b = paged_batch(specs, blocks, seed, block);
  const int t = b.num_tokens();
  std::vector<float> q_lat = random_values(t * heads * lora, q_range, seed + 1);
  std::vector<float> q_rope = random_values(t * heads * rope, q_range, seed + 2);
  std::vector<float> cache = random_values(slots * width, 1.0f, seed + 3);
  if (key_doublings)
    for (const SeqSlice& s : b.seqs)
      for (int p = 0; p < s.context_len; ++p) {
        const int64_t row = static_cast<int64_t>(s.block_table[p / block]) * block + p % block;
        for (int c = 0; c < width; ++c) cache[row * width + c] = std::ldexp(cache[row * width + c], key_doublings(p));
      }
  const LatentFp8Layout l = latent_fp8_layout(lora, rope);
  std::vector<uint8_t> rows(fp8 ? static_cast<size_t>(slots) * l.row_bytes : 0);
  // The kernels attend over the FP8 rows' values in their tensor-core tiles' type, as they do over
  // a bf16 cache's (its values here are bf16 already): so does the reference. Keys that grow past
  // 2^8 (MlaDecodeDeepSeekShapesOverFp8Rows) make the softmax that sensitive to the rounding: over
  // the unrounded values the largest output moves by 0.36 of the largest |output| (bf16 tiles).
  const bool decode = std::all_of(specs.begin(), specs.end(), [](const SeqSpec& s) { return s.len == 1; });
  for (int r = 0; fp8 && r < slots; ++r) {
    uint8_t* row = rows.data() + static_cast<int64_t>(r) * l.row_bytes;
    quantize_latent_row(l, cache.data() + static_cast<int64_t>(r) * width, row);
    tile_values(l, row, decode && lora == 512 && rope == 64, cache.data() + static_cast<int64_t>(r) * width);
  }
  const float scale = 1.0f / std::sqrt(192.0f);
  std::vector<float> want(t * heads * lora);
  g.cpu->mla_attention(b, host_view(q_lat, {t, heads, lora}), host_view(q_rope, {t, heads, rope}),
                       host_view(cache, {slots, width}), lora, scale, host_view(want, {t, heads, lora}));
  g.gpu->begin_forward(b);
  const Tensor gq_lat = g.gpu_bf16(q_lat, {t, heads, lora}), gq_rope = g.gpu_bf16(q_rope, {t, heads, rope});
  const Tensor gcache = fp8 ? g.gpu_tensor(DType::U8, {slots, l.row_bytes}) : g.gpu_bf16(cache, {slots, width});
  if (fp8) g.gpu->copy_to_device(rows.data(), gcache);
  // With W_UV after it (at decode sizes its product merges the splits itself, mla_output.cu).
  const int v = std::min(lora, 128);
  std::vector<float> w_uv = random_values(heads * v * lora, 1.0f, seed + 4);
  std::vector<float> want_uv(t * heads * v);
  g.cpu->head_matmul(host_view(want, {t, heads, lora}), host_view(w_uv, {heads, v, lora}), false,
                     host_view(want_uv, {t, heads, v}));
  const Tensor gw_uv = g.gpu_bf16(w_uv, {heads, v, lora});
  for (int i = 0; i < repeats; ++i) {
    Tensor out = g.gpu_tensor(DType::BF16, {t, heads, lora});
    g.gpu->mla_attention(b, gq_lat, gq_rope, gcache, lora, scale, out);
    expect_close(g.read(out), want, 2e-2f, "mla_attention");
    Tensor out_uv = g.gpu_tensor(DType::BF16, {t, heads, v});
    g.gpu->mla_attention_uv(b, gq_lat, gq_rope, gcache, lora, scale, gw_uv, out, out_uv);
    expect_close(g.read(out_uv), want_uv, 2e-2f, "mla_attention_uv");
  }
}

// 100 one-token sequences over contexts of 1 to 300 keys: enough blocks to run unsplit.
std::vector<SeqSpec> hundred_decode_seqs() {
  std::vector<SeqSpec> specs;
  for (int s = 0; s < 100; ++s) specs.push_back({(s * 37) % 300, 1});
  return specs;
}

}  // namespace

TEST(GpuAttention, PrefillManySequencesAndHeadDims) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 100}, {37, 20}, {200, 1}, {0, 1}, {5, 64}};
  for (int dim : {8, 64, 128, 256}) check_gqa(specs, 8, 2, dim, 100 + dim);
  check_gqa(specs, 4, 4, 16, 7);  // no grouping
}

// MLA's expanded prefill: one kv head per query head, keys 192 and values 128 wide (V2/V3), over
// contexts packed back to back; also a grouped shape, and a step of one-token queries.
TEST(GpuAttention, PrefillOverPackedContexts) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 100}, {37, 20}, {200, 1}, {0, 1}, {5, 64}};
  check_gqa(specs, 16, 16, 192, 31, 128, kBlock, 1, true);
  check_gqa(specs, 8, 2, 64, 32, 0, kBlock, 1, true);
  check_gqa({{30, 1}, {70, 1}}, 4, 4, 192, 33, 128, kBlock, 1, true);
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

// Steps of 2-8 query tokens a sequence (speculative decoding's verification, short prompt
// chunks) attend as one-token sequences through the decode kernel: causal within the step, each
// token over its own context, sequences of different lengths and tables, a sequence of one token.
TEST(GpuAttention, ShortQueriesOverCachedContextsAsOneTokenSequences) {
  SKIP_WITHOUT_GPU();
  check_gqa({{600, 5}, {0, 2}, {1100, 8}, {33, 3}, {70, 1}}, 28, 4, 128, 81);  // Qwen2-7B's heads
  check_gqa({{2500, 5}, {0, 8}}, 32, 8, 128, 82);                               // Llama-8B's
  check_gqa({{15, 4}, {16, 4}, {17, 4}}, 8, 2, 64, 83, 0, 7);                  // block boundaries, blocks of 7
  check_gqa({{300, 6}, {5, 2}}, 4, 4, 256, 84);                                 // no grouping, wide heads
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
// blocks of 7 slots, element copies, values narrower than keys, two head chunks of a group, and
// sequences with no token in the step between others (their blocks leave at once).
TEST(GpuAttention, DecodeSplitsMergedInTheKernel) {
  SKIP_WITHOUT_GPU();
  check_gqa({{575, 1}}, 28, 4, 128, 21, 0, kBlock, 3);
  check_gqa({{0, 1}, {63, 1}, {64, 1}, {1000, 1}, {130, 1}}, 28, 4, 128, 22, 0, kBlock, 3);
  check_gqa({{300, 1}, {1500, 1}, {5, 1}}, 14, 2, 128, 23, 0, 7, 2);  // cache blocks of 7 slots
  check_gqa({{900, 1}, {40, 1}}, 6, 3, 12, 24, 0, kBlock, 2);         // 12: element copies
  check_gqa({{700, 1}, {2000, 1}}, 8, 2, 192, 25, 128, kBlock, 2);    // v_dim < head_dim
  check_gqa({{3000, 1}, {17, 1}}, 40, 2, 64, 26, 0, kBlock, 2);       // two head chunks of 20
  check_gqa({{400, 0}, {130, 1}, {64, 0}, {999, 1}}, 28, 4, 128, 28, 0, kBlock, 2);
}

// Batches whose blocks alone fill the GPU (1.5 blocks an SM on an H100/H200) run without splits,
// each block writing its rows directly: contexts from 1 key to several tiles, the 7B shape and
// element copies.
TEST(GpuAttention, DecodeLargeBatchesRunUnsplit) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = hundred_decode_seqs();
  check_gqa(specs, 28, 4, 128, 27, 0, kBlock, 2);
  check_gqa(specs, 6, 3, 12, 28);  // 12: element copies
}

// rope_cache_attention: decode batches (the fused kernel: new keys in a tile issued before the
// dependent wait and in later ones, split and unsplit, two head chunks of a group, values
// narrower than keys, both rope styles, a padding token), a prefill step and head dims the fused
// kernel does not take (the two ops).
TEST(GpuAttention, RopeCacheAttentionEqualsRopeAndCacheThenAttention) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> decode = {{0, 1}, {63, 1}, {64, 1}, {700, 1}, {2500, 1}};
  for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
    check_gqa_rope(decode, 28, 4, 128, 128, style, 81, 2);
    check_gqa_rope(decode, 40, 2, 64, 64, style, 82, 1, true);  // two head chunks of 20; a padding token
    check_gqa_rope({{900, 1}, {40, 1}}, 8, 2, 192, 128, style, 83);
  }
  check_gqa_rope(hundred_decode_seqs(), 28, 4, 128, 128, RopeStyle::Neox, 84, 2);  // unsplit
  check_gqa_rope({{0, 40}, {90, 3}}, 8, 2, 64, 64, RopeStyle::Neox, 85);   // prefill: the two ops
  check_gqa_rope({{30, 1}, {500, 1}}, 6, 3, 24, 24, RopeStyle::Neox, 86);  // 24 % 16 != 0: the two ops
}

TEST(GpuAttention, MlaPrefill) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 70}, {30, 5}, {0, 1}};
  check_mla(specs, 128, 512, 64, 21);
  check_mla(specs, 16, 512, 64, 22);
  check_mla(specs, 4, 16, 8, 23);  // ds3-tiny
  check_mla(specs, 40, 32, 8, 24);
}

// --kv-dtype fp8: FP8 rows become bf16 tiles in prompts (the mma.sync kernel) and f16 ones in
// decode (the wgmma kernel at V3's shape, long contexts split over the sequence), at V3's shape
// with 128 and 16 heads, pages of 16 and 64 slots, and the tiny fixtures' shapes (the mma.sync
// kernel: one partial scale group, rows padded to 16 bytes).
TEST(GpuAttention, MlaOverFp8Rows) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> prompts = {{0, 70}, {30, 5}, {0, 1}};
  const std::vector<SeqSpec> decode = {{0, 1}, {63, 1}, {100, 1}, {3000, 1}};
  for (int block : {16, 64}) {
    check_mla(prompts, 128, 512, 64, 91, block, 1, nullptr, true);
    check_mla(decode, 128, 512, 64, 92, block, 1, nullptr, true);
    check_mla(decode, 16, 512, 64, 93, block, 1, nullptr, true);
  }
  check_mla(prompts, 4, 16, 8, 94, kBlock, 1, nullptr, true);  // ds3-tiny
  check_mla(decode, 4, 32, 8, 95, kBlock, 1, nullptr, true);   // ds2-lite-tiny
}

// The wgmma decode kernel over FP8 rows (its copy warpgroup stages each tile's e4m3 values and
// converts them in place, to f16): MlaDecodeDeepSeekShapes' contexts, pages (TMA boxes of 16 to
// 64 rows) and head counts, one sequence over many splits, 70 sequences run unsplit whose keys
// grow past the rescale slack (MlaDecodeRescalesWhereTheMaxGrows), tiny keys, and queries beyond
// f16's range.
TEST(GpuAttention, MlaDecodeDeepSeekShapesOverFp8Rows) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 1}, {62, 1}, {63, 1}, {64, 1}, {127, 1}, {999, 1}, {4095, 1}};
  for (int block : {16, 48, 64, 128}) {
    check_mla(specs, 128, 512, 64, 141, block, 1, nullptr, true);
    check_mla(specs, 16, 512, 64, 142, block, 1, nullptr, true);
  }
  // 80 heads: three tokens take a full and a partial block of 64; one token, narrow, five of 16,
  // and 72 heads four and a partial one.
  check_mla({{2, 1}, {130, 1}, {40, 1}}, 80, 512, 64, 143, kBlock, 1, nullptr, true);
  check_mla({{130, 1}}, 72, 512, 64, 149, kBlock, 1, nullptr, true);
  // Up to 16 heads S^T and O^T over a narrow Q (dead heads, here 11 of 16, zeros in Q); one
  // sequence over many splits and 70 unsplit ones at 16 heads too.
  check_mla(specs, 5, 512, 64, 148, 48, 1, nullptr, true);
  for (int heads : {128, 16})
    for (int ctx : {1, 65, 4096}) check_mla({{ctx - 1, 1}}, heads, 512, 64, 144 + ctx + heads, 64, 2, nullptr, true);
  std::vector<SeqSpec> many;
  for (int i = 0; i < 70; ++i) many.push_back({575 + (i * 37) % 200, 1});
  for (int heads : {128, 16})
    check_mla(many, heads, 512, 64, 145 + heads, 64, 1, [](int p) { return std::min(p / 64, 8); }, true);
  // Keys under 2^-12: their scales are below f16's normal range (the second multiply).
  check_mla(specs, 16, 512, 64, 146, 64, 1, [](int) { return -12; }, true);
  // Queries up to 2^17, past f16's range (Q scaled by 2^-3 into it), over keys under 2^-17.
  check_mla(specs, 128, 512, 64, 147, 64, 1, [](int) { return -17; }, true, 131072.0f);
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
// heads (two blocks of 64), V2-Lite's 16 and V3's over 16 GPUs, 8 (one partly empty block), 80
// (a full and a partial block of 64) and, at one token, 72 (four blocks of 16 and a partial one:
// narrow Q); unsplit (enough tokens for a wave: bf16 rows written directly) at 128 and at 16 heads.
TEST(GpuAttention, MlaDecodeDeepSeekShapes) {
  SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> specs = {{0, 1}, {62, 1}, {63, 1}, {64, 1}, {999, 1}, {4095, 1}};
  for (int block : {16, 48, 64, 128}) {
    check_mla(specs, 128, 512, 64, 41, block);
    check_mla(specs, 16, 512, 64, 42, block);
  }
  check_mla(specs, 8, 512, 64, 46);
  check_mla({{2, 1}, {130, 1}, {40, 1}}, 80, 512, 64, 43);
  check_mla({{130, 1}}, 72, 512, 64, 48);
  // One sequence: many splits of one tile each, most of them past its end, in blocks of 16 of the
  // 128 heads (narrow Q at 1-2 tokens: kMlaNarrowTokens).
  for (int ctx : {1, 65, 4096}) check_mla({{ctx - 1, 1}}, 128, 512, 64, 44 + ctx, 64);
  // Enough blocks (70 tokens x 2 head blocks) for one wave: no splits, bf16 written directly.
  std::vector<SeqSpec> many;
  for (int i = 0; i < 70; ++i) many.push_back({(i * 37) % 300, 1});
  check_mla(many, 128, 512, 64, 45);
  for (int i = 70; i < 140; ++i) many.push_back({(i * 37) % 300, 1});
  check_mla(many, 16, 512, 64, 47);
}

// The wgmma decode kernel keeps a row's running max until a tile's exceeds it by 2^8 (O's rescale
// is skipped until then): keys whose magnitude doubles from one 64-key tile to the next for the
// first nine tiles move every row's max by more than that on several tiles within a block (the
// random keys alone rarely do), at V3's 128 heads and at 16; 140 blocks, a wave without splits
// (MlaDecodeDeepSeekShapes), so each block reads a whole context of 9-13 tiles.
TEST(GpuAttention, MlaDecodeRescalesWhereTheMaxGrows) {
  SKIP_WITHOUT_GPU();
  const auto doublings = [](int p) { return std::min(p / 64, 8); };
  for (int heads : {128, 16}) {
    std::vector<SeqSpec> specs;
    for (int i = 0; i < (heads == 128 ? 70 : 140); ++i) specs.push_back({575 + (i * 37) % 200, 1});
    check_mla(specs, heads, 512, 64, 70 + heads, 64, 1, doublings);
  }
}

// The wgmma decode kernel, launched three times on one backend (its partial buffers reused) over
// contexts whose live splits are 1, a few and all of the plan's (the empty ones write only their
// lse), and a batch whose sequences have different numbers of live splits.
TEST(GpuAttention, MlaDecodeOverEveryCountOfLiveSplits) {
  SKIP_WITHOUT_GPU();
  for (int ctx : {1, 64, 65, 575, 8192}) check_mla({{ctx - 1, 1}}, 16, 512, 64, 50 + ctx, 64, 3);
  check_mla({{0, 1}, {4000, 1}, {129, 1}}, 128, 512, 64, 51, 16, 3);
}

// A decode step's query and cache row by mla_rope_cache_absorb, then the wgmma decode kernel
// right behind it: the kernel launches before the absorb has written the newest rows (dependent
// launch), so it must not read them before its wait. Their slots hold a poison value before each
// step: a stale read shows at once (position 0's only key is its own).
namespace {
void check_decode_after_absorb(int heads) {
  SCOPED_TRACE(::testing::Message() << heads << " heads");
  const int nope = 128, rope = 64, lora = 512, width = lora + rope;
  const std::vector<SeqSpec> specs = {{0, 1}, {63, 1}, {64, 1}, {200, 1}};
  GpuTest g;
  const int blocks = blocks_needed(specs, kBlock), slots = blocks * kBlock;
  const ForwardBatch b = paged_batch(specs, blocks, 61, kBlock);
  const int t = b.num_tokens();
  std::vector<float> q = random_values(t * heads * (nope + rope), 1.0f, 62), kv = random_values(t * width, 1.0f, 63);
  std::vector<float> w_uk = random_values(heads * nope * lora, 0.05f, 64), inv = rope_frequencies(rope);
  HostWeight norm(random_values(lora, 1.0f, 65), {lora}, DType::BF16);
  std::vector<float> cache = random_values(static_cast<size_t>(slots) * width, 1.0f, 66);
  for (int slot : b.slots) std::fill_n(cache.begin() + static_cast<int64_t>(slot) * width, width, 1.0e4f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(nope + rope)), eps = 1e-6f;

  std::vector<float> wq = q, wcache = cache, q_nope(t * heads * nope), q_rope(t * heads * rope),
                     q_lat(t * heads * lora), want(t * heads * lora);
  g.cpu->mla_rope_cache_absorb(b, host_view(wq, {t, heads, nope + rope}), host_view(kv, {t, width}), norm.weight, eps,
                               RopeParams{host_view(inv, {rope / 2}), 1.0f, RopeStyle::Neox},
                               host_view(w_uk, {heads, nope, lora}), host_view(q_nope, {t, heads, nope}),
                               host_view(q_rope, {t, heads, rope}), host_view(q_lat, {t, heads, lora}),
                               host_view(wcache, {slots, width}));
  g.cpu->mla_attention(b, host_view(q_lat, {t, heads, lora}), host_view(q_rope, {t, heads, rope}),
                       host_view(wcache, {slots, width}), lora, scale, host_view(want, {t, heads, lora}));

  g.gpu->begin_forward(b);
  const Weight gnorm = g.gpu->upload_weight(norm.weight, g.keep);
  const Tensor gw_uk = g.gpu_bf16(w_uk, {heads, nope, lora}), gkv = g.gpu_bf16(kv, {t, width});
  const RopeParams p{g.gpu_f32(inv, {rope / 2}), 1.0f, RopeStyle::Neox};
  for (int step = 0; step < 5; ++step) {
    Tensor gcache = g.gpu_bf16(cache, {slots, width});  // the poison back in the new rows' slots
    Tensor gq = g.gpu_bf16(q, {t, heads, nope + rope});
    Tensor gq_nope = g.gpu_tensor(DType::BF16, {t, heads, nope}), gq_rope = g.gpu_tensor(DType::BF16, {t, heads, rope});
    Tensor gq_lat = g.gpu_tensor(DType::BF16, {t, heads, lora}), out = g.gpu_tensor(DType::BF16, {t, heads, lora});
    g.gpu->mla_rope_cache_absorb(b, gq, gkv, gnorm, eps, p, gw_uk, gq_nope, gq_rope, gq_lat, gcache);
    g.gpu->mla_attention(b, gq_lat, gq_rope, gcache, lora, scale, out);
    expect_close(g.read(out), want, 2e-2f, "step " + std::to_string(step));
  }
}
}  // namespace

// V2-Lite's heads (one head block a token) and V3's (two head blocks a token, each loading the
// same tiles on its own).
TEST(GpuAttention, MlaDecodeReadsTheRowsTheAbsorbWritesJustBefore) {
  SKIP_WITHOUT_GPU();
  for (int heads : {16, 128}) check_decode_after_absorb(heads);
}

// The absorbed path on the GPU (per-head products with W_UK and W_UV, the MLA kernels, the split
// merge) against the expanded form transformers computes, at V2-Lite's head shape over
// DeepSeek's 512 + 64 latent (the wgmma decode kernel) and at ds3-tiny's (the mma.sync kernel):
// decode over contexts of 1 to 300 keys and a chunk of a prompt after cached tokens.
TEST(GpuAttention, MlaAbsorbedEqualsTheExpandedForm) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::vector<SeqSpec>> batches = {{{299, 1}, {64, 1}, {0, 1}, {130, 1}}, {{20, 12}}};
  for (const MlaShape s : {MlaShape{16, 128, 64, 128, 512}, MlaShape{4, 16, 8, 16, 32}})
    for (const std::vector<SeqSpec>& specs : batches) {
      SCOPED_TRACE(::testing::Message() << s.heads << " heads, latent " << s.lora << ", " << specs.size()
                                        << " sequences");
      GpuTest g;
      const int blocks = blocks_needed(specs, kBlock), slots = blocks * kBlock, width = s.lora + s.rope;
      const ForwardBatch b = paged_batch(specs, blocks, 51, kBlock);
      const int64_t t = b.num_tokens();
      const std::vector<float> q_nope = random_values(t * s.heads * s.nope, 1.0f, 52);
      const std::vector<float> q_rope = random_values(t * s.heads * s.rope, 1.0f, 53);
      const std::vector<float> cache = random_values(static_cast<size_t>(slots) * width, 1.0f, 54);
      const std::vector<float> kv_b = random_values(static_cast<size_t>(s.heads) * (s.nope + s.v) * s.lora, 0.05f, 55);
      const float scale = 1.0f / std::sqrt(static_cast<float>(s.nope + s.rope));
      const std::vector<float> want = mla_expanded(b, s, q_nope, q_rope, cache, kv_b, scale);
      std::vector<float> w_uk, w_uv;
      split_kv_b(s, kv_b, w_uk, w_uv);
      g.gpu->begin_forward(b);
      Tensor q_lat = g.gpu_tensor(DType::BF16, {t, s.heads, s.lora}), out_lat = g.gpu_tensor(DType::BF16, {t, s.heads, s.lora});
      Tensor out = g.gpu_tensor(DType::BF16, {t, s.heads, s.v});
      g.gpu->head_matmul(g.gpu_bf16(q_nope, {t, s.heads, s.nope}), g.gpu_bf16(w_uk, {s.heads, s.nope, s.lora}), true, q_lat);
      g.gpu->mla_attention(b, q_lat, g.gpu_bf16(q_rope, {t, s.heads, s.rope}), g.gpu_bf16(cache, {slots, width}), s.lora,
                           scale, out_lat);
      g.gpu->head_matmul(out_lat, g.gpu_bf16(w_uv, {s.heads, s.v, s.lora}), false, out);
      expect_close(g.read(out), want, 2e-2f, "absorbed MLA against the expanded form");
    }
}
