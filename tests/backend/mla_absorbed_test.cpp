// The absorbed MLA path of the CPU reference backend (W_UK folded into the query, attention over
// the latent cache, W_UV applied after) against the expanded form transformers computes (per-head
// keys and values from the latent through kv_b_proj), for decode and chunked-prefill batches.
#include <gtest/gtest.h>

#include <random>

#include "../float_compare.h"
#include "../mla_reference.h"
#include "../paged_batch.h"
#include "backend/backend.h"
#include "core/latent_fp8.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

std::vector<float> uniform(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor view(std::vector<float>& v, Shape shape) { return Tensor{DType::F32, std::move(shape), v.data(), {}}; }

// The CPU's absorbed path over `cache` (F32 values or FP8 rows): q_lat = q_nope . W_UK per head,
// the MLA attention, then W_UV; equal to the expanded form `want` within 1e-4 of its largest value.
void expect_absorbed_equals(Backend& cpu, const ForwardBatch& b, const MlaShape& s, std::vector<float>& q_nope,
                            std::vector<float>& q_rope, const Tensor& cache, const std::vector<float>& kv_b,
                            float scale, const std::vector<float>& want) {
  const int64_t t = b.num_tokens();
  std::vector<float> w_uk, w_uv;
  split_kv_b(s, kv_b, w_uk, w_uv);
  std::vector<float> q_lat(t * s.heads * s.lora), out_lat(q_lat.size()), got(t * s.heads * s.v);
  cpu.begin_forward(b);
  cpu.head_matmul(view(q_nope, {t, s.heads, s.nope}), view(w_uk, {s.heads, s.nope, s.lora}), true,
                  view(q_lat, {t, s.heads, s.lora}));
  cpu.mla_attention(b, view(q_lat, {t, s.heads, s.lora}), view(q_rope, {t, s.heads, s.rope}), cache, s.lora, scale,
                    view(out_lat, {t, s.heads, s.lora}));
  cpu.head_matmul(view(out_lat, {t, s.heads, s.lora}), view(w_uv, {s.heads, s.v, s.lora}), false,
                  view(got, {t, s.heads, s.v}));
  const float max_ref = max_abs(want);
  EXPECT_LE(max_abs_diff(want, got), 1e-4f * max_ref) << "max |ref| " << max_ref;
  EXPECT_GT(max_ref, 0.1f);
}

}  // namespace

TEST(MlaAbsorbed, EqualsTheExpandedForm) {
  auto cpu = make_cpu_backend();
  const int block = 16;
  for (const MlaShape s : {MlaShape{4, 16, 8, 12, 32}, MlaShape{3, 24, 16, 24, 48}}) {
    SCOPED_TRACE(::testing::Message() << s.heads << " heads, nope " << s.nope << ", rope " << s.rope << ", v " << s.v
                                      << ", latent " << s.lora);
    // A prompt, two decode steps over cached tokens and a chunk of a prompt after a cached part.
    const std::vector<SeqSpec> specs = {{0, 7}, {40, 1}, {100, 1}, {17, 5}};
    const int blocks = blocks_needed(specs, block), slots = blocks * block, t_count = 7 + 1 + 1 + 5;
    const ForwardBatch b = paged_batch(specs, blocks, 3, block);
    ASSERT_EQ(b.num_tokens(), t_count);
    const int64_t t = t_count;
    std::vector<float> q_nope = uniform(t * s.heads * s.nope, 1.0f, 1), q_rope = uniform(t * s.heads * s.rope, 1.0f, 2);
    std::vector<float> cache = uniform(static_cast<size_t>(slots) * (s.lora + s.rope), 1.0f, 3);
    std::vector<float> kv_b = uniform(static_cast<size_t>(s.heads) * (s.nope + s.v) * s.lora, 0.3f, 4);
    const float scale = 0.2f;
    const std::vector<float> want = mla_expanded(b, s, q_nope, q_rope, cache, kv_b, scale);
    expect_absorbed_equals(*cpu, b, s, q_nope, q_rope, view(cache, {slots, s.lora + s.rope}), kv_b, scale, want);
  }
}

// Over an FP8 latent cache (--kv-dtype fp8): the same absorbed path reads the rows' bytes, and
// equals the expanded form over the rows they decode to (so the attention adds no error of its
// own to the format's).
TEST(MlaAbsorbed, OverFp8RowsEqualsTheExpandedFormOfTheirValues) {
  auto cpu = make_cpu_backend();
  const int block = 16;
  const MlaShape s{4, 16, 8, 12, 160};  // two scale groups, the second partial
  const std::vector<SeqSpec> specs = {{0, 7}, {40, 1}, {17, 5}};
  const int blocks = blocks_needed(specs, block), slots = blocks * block;
  const ForwardBatch b = paged_batch(specs, blocks, 3, block);
  const int64_t t = b.num_tokens();
  const LatentFp8Layout l = latent_fp8_layout(s.lora, s.rope);
  std::vector<float> q_nope = uniform(t * s.heads * s.nope, 1.0f, 1), q_rope = uniform(t * s.heads * s.rope, 1.0f, 2);
  std::vector<float> cache = uniform(static_cast<size_t>(slots) * (s.lora + s.rope), 1.0f, 3);
  std::vector<uint8_t> rows(static_cast<size_t>(slots) * l.row_bytes);
  for (int r = 0; r < slots; ++r) {
    for (int c = 128; c < s.lora; ++c) cache[r * (s.lora + s.rope) + c] *= 50.0f;  // its own scale
    quantize_latent_row(l, cache.data() + r * (s.lora + s.rope), rows.data() + r * l.row_bytes);
    dequantize_latent_row(l, rows.data() + r * l.row_bytes, cache.data() + r * (s.lora + s.rope));
  }
  std::vector<float> kv_b = uniform(static_cast<size_t>(s.heads) * (s.nope + s.v) * s.lora, 0.3f, 4);
  const float scale = 0.2f;
  const std::vector<float> want = mla_expanded(b, s, q_nope, q_rope, cache, kv_b, scale);
  const Tensor fp8_cache{DType::U8, {slots, l.row_bytes}, rows.data(), {}};
  expect_absorbed_equals(*cpu, b, s, q_nope, q_rope, fp8_cache, kv_b, scale, want);
  // dequantize_latent gives the same values.
  std::vector<float> back(static_cast<size_t>(slots) * (s.lora + s.rope));
  cpu->dequantize_latent(fp8_cache, s.lora, view(back, {slots, s.lora + s.rope}));
  EXPECT_EQ(back, cache);
}
