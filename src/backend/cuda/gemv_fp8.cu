// Skinny products of block-scaled FP8 weights for decode: out[M, N] = x[M, K] W[N, K]^T (+ bias)
// for 1-4 rows of bf16 x and e4m3 W with per-block float scales (DeepSeek's 128 x 128). At these
// sizes the product is bound by the weight bytes, so it streams them as stored, like gemv.cu:
// one warp per weight row, 16-byte streaming loads (16 weights each), eight in flight per lane,
// x read through L1; each piece's 16 products are summed in float and added times its block's
// scale. x stays bf16: no quantizing pass and no tensor-core product padded to 16 tokens. As in
// gemv.cu, a launch with fewer rows than two waves of resident warps splits each long row over 2
// or 4 warps, whose parts add in shared memory: V3's o_proj and down (7168 rows of 16-18 KB, 1.5
// waves of blocks a warp a row) ran at 2.4-2.5 TB/s, against 2.7-2.9 for gate and up (18432 rows).
// Products whose K and scale blocks are whole groups of 128 take the tensor-core kernel instead
// (gemv_fp8_mma.cu, DeepSeek's recipe: x quantized per 128); this one takes the others. (V3's
// small q_a + kv_a and q_b traced faster here, yet the step lost 1 % with them here: session 53.)
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/fp8_mma_tile.cuh"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/skinny_product.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 4, kUnroll = 8, kMaxSplits = 4;
constexpr int kPiece = 16;  // e4m3 weights per 16-byte load

// Warp w of block b of product p takes part w % splits of row (b - first_block[p]) * (kWarps /
// splits) + w / splits: pieces [begin, end) of its 16-byte pieces. kMany: the launch holds
// several products; with one, p is 0 at compile time and the kernel keeps its registers.
template <int M, typename Out, bool kMany>
__global__ void __launch_bounds__(kWarps * 32) gemv_fp8_kernel(const bf16* x, GemvFp8Products products, int k,
                                                               int splits) {
  int p = 0;
  if constexpr (kMany) p = products.product_of(blockIdx.x);
  const DeviceWeight& w = products.w[p];
  const int n = products.n[p], warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = (static_cast<int>(blockIdx.x) - products.first_block[p]) * (kWarps / splits) + warp / splits;
  const int all_pieces = k / kPiece, per_part = ceil_div(all_pieces, splits), pieces_per_block = w.block_cols / kPiece;
  const int begin = min(all_pieces, warp % splits * per_part), end = min(all_pieces, begin + per_part);
  const bool live = row < n;
  const int pieces = live ? end - begin : 0;
  const int64_t w_row = live ? row : 0;
  const uint4* wr = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(w.data) + w_row * k) + begin;
  const float* scale_row = w.scale + w_row / w.block_rows * w.scale_cols;
  const uint4* xs = reinterpret_cast<const uint4*>(x) + 2 * begin;
  // No kernel writes weights: the first batch streams in while the previous kernel runs.
  uint4 wv[kUnroll];
  load_batch(wv, wr, lane, pieces);
  dependent_kernel_start();
  float acc[M] = {};
  for (int c = lane; c < pieces; c += 32 * kUnroll) {
    if (c != lane) load_batch(wv, wr, c, pieces);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int piece = c + 32 * u;
      if (piece >= pieces) continue;
      const float scale = __ldg(scale_row + (begin + piece) / pieces_per_block);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4* xp = xs + static_cast<int64_t>(m) * (k / 8) + 2 * piece;
        acc[m] += scale * dot16(wv[u], __ldg(xp), __ldg(xp + 1));
      }
    }
  }
  sum_split_parts<kWarps, M>(acc, splits);
  if (!live || lane != 0 || warp % splits != 0) return;
  const DeviceWeight& bias = products.bias[p];
  Out* out = static_cast<Out*>(products.out[p]);
#pragma unroll
  for (int m = 0; m < M; ++m)
    out[static_cast<int64_t>(m) * n + row] = static_cast<Out>(acc[m] + (bias.data ? weight_at(bias, 0, row) : 0.0f));
}

template <int M, bool kMany>
void launch_m(const bf16* x, const GemvFp8Products& products, DType out_dtype, int blocks, int k, int splits,
              cudaStream_t s) {
  const auto kernel = out_dtype == DType::F32 ? gemv_fp8_kernel<M, float, kMany> : gemv_fp8_kernel<M, bf16, kMany>;
  launch_dependent("gemv_fp8_kernel", kernel, blocks, kWarps * 32, 0, s, x, products, k, splits);
}

}  // namespace

bool gemv_fp8_fits(int64_t m, int64_t k, const void* x, const DeviceWeight& w) {
  return m >= 1 && m <= kGemvFp8MaxRows && w.dtype == DType::F8_E4M3 && w.scale && k % kPiece == 0 &&
         w.block_cols % kPiece == 0 && w.block_rows >= 1 && k <= (int64_t{1} << 30) && aligned16(x) &&
         aligned16(w.data);
}

namespace {
std::string splits_name(int splits) { return std::to_string(splits) + (splits == 1 ? " split" : " splits"); }
bool mma_on() {
  static const bool mma = switched_on("DSINFER_FP8_GEMV_MMA");
  return mma;
}
// Fewest tokens whose x the tensor-core kernel reads quantized by a pass of its own
// (gemv_fp8_mma.cu's header); DSINFER_FP8_GEMV_QUANTIZE_FROM=N moves it (5: never), for measurement.
int quantize_from() {
  static const int from = switch_value("DSINFER_FP8_GEMV_QUANTIZE_FROM", 2);
  return from;
}

// Where an Fp8Act's scales start: after its e4m3 rows, 16-byte aligned.
int64_t fp8_act_scales_at(int64_t m, int64_t k) { return int64_t{ceil_div(m * k, int64_t{16})} * 16; }
}  // namespace

size_t fp8_act_bytes(int64_t m, int64_t k) {
  return static_cast<size_t>(fp8_act_scales_at(m, k) + m * (k / kActGroup) * static_cast<int64_t>(sizeof(float)));
}

Fp8Act fp8_act_at(void* scratch, int64_t m, int64_t k) {
  auto* q = static_cast<uint8_t*>(scratch);
  return {q, reinterpret_cast<float*>(q + fp8_act_scales_at(m, k))};
}

bool gemv_fp8_quantizes_first(int64_t m) { return mma_on() && m >= quantize_from(); }

bool gemv_fp8_takes_mma(int64_t k, const GemvFp8Products& products) {
  bool all = mma_on();
  for (int p = 0; p < products.count; ++p) all = all && gemv_fp8_mma_fits(k, products.w[p]);
  return all;
}

std::string gemv_fp8_kernel_name(int64_t m, int64_t n, int64_t k, const DeviceWeight& w, int sm_count) {
  if (mma_on() && gemv_fp8_mma_fits(k, w)) {
    const bool quantized = gemv_fp8_quantizes_first(m);
    const GemvFp8MmaPlan plan =
        gemv_fp8_mma_device_plan(m, ceil_div(n, int64_t{kFp8Tile}), k, false, DType::BF16, sm_count, quantized);
    return std::string(plan.deep ? "deep, " : "wide, ") + splits_name(plan.splits) + (quantized ? ", x first" : "");
  }
  return "CUDA cores, " + splits_name(skinny_splits(n, static_cast<int>(k) / kPiece, sm_count, kMaxSplits, kUnroll));
}

void launch_gemv_fp8(const bf16* x, Fp8Act act, GemvFp8Products products, DType out_dtype, int64_t m, int64_t k,
                     int sm_count, cudaStream_t s) {
  int64_t rows = 0;
  for (int p = 0; p < products.count; ++p) rows += products.n[p];
  if (rows == 0) return;
  if (gemv_fp8_takes_mma(k, products)) {
    if (act.q != nullptr) launch_quantize_fp8_act_chained(x, m, k, act.q, act.scale, s);
    return launch_gemv_fp8_mma(x, act, products, out_dtype, m, k, sm_count, s);
  }
  const int ki = static_cast<int>(k);
  const int splits = skinny_splits(rows, ki / kPiece, sm_count, kMaxSplits, kUnroll);
  const int blocks = products.place_blocks(kWarps / splits);
  with_rows(m, [&](auto r) {
    if (products.count > 1) return launch_m<r.value, true>(x, products, out_dtype, blocks, ki, splits, s);
    launch_m<r.value, false>(x, products, out_dtype, blocks, ki, splits, s);
  });
}

void launch_gemv_fp8_silu(const bf16* gate, const bf16* up, Fp8Act act, GemvFp8Products products, DType out_dtype,
                          int64_t m, int64_t k, int sm_count, cudaStream_t s) {
  if (act.q == nullptr || !gemv_fp8_takes_mma(k, products))
    fail("gemv_fp8_silu: ", m, " x ", k, " needs scratch and products on the tensor-core kernel");
  launch_silu_mul_quantize_fp8_act_chained(gate, up, m, k, act.q, act.scale, s);
  launch_gemv_fp8_mma(gate, act, products, out_dtype, m, k, sm_count, s);
}

}  // namespace dsinfer::cuda
