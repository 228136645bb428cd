// CudaBackend's mixture of experts. Routing is one kernel. Expert compute:
//  * experts at decode sizes (up to kFewTokens tokens; FP8 ones that the FP8 GEMM reads up to
//    kFewMmaTokens, on tensor cores): one GEMV-shaped launch for gate+up+SiLU and one for down over the chosen
//    experts, reading the router's ids directly (moe_few.cu), so routing is followed by the
//    expert products with nothing in between;
//  * FP8 experts with 128 x 128 blocks on Hopper, at larger batches: a one-block kernel sorts the
//    (token, choice) pairs by expert on the device (offsets, active experts, both directions of
//    the permutation), the rows are gathered and quantized per 128 columns, and the grouped FP8
//    GEMM (moe_gemm_fp8.h) runs gate+up+SiLU and down as one launch each over all experts, on the
//    e4m3 weights as shipped;
//  * other decode-sized batches (at most kGroupedMaxPairsPerExpert pairs per expert on average):
//    the permutation, then one tensor-core launch for gate+up+SiLU over all experts and one for
//    down (moe_grouped.cu);
//  * other larger batches: the permutation's offsets are read back (one synchronization per MoE
//    layer) and each expert's products run as cuBLASLt GEMMs over its contiguous rows, which is
//    where tensor-core GEMMs beat the grouped kernels (those re-read an expert's weight rows for
//    every 8 of its tokens); FP8 weights are dequantized to bf16 first;
// only the last synchronizes with the host, so decode steps can be captured in a CUDA graph;
// and a combine kernel sums the weighted results back per token.
#include <algorithm>
#include <cstdint>
#include <functional>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/moe_gemm_fp8.h"
#include "backend/cuda/moe_kernels.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {
namespace {

// The grouped kernels stream each active expert's weights once per 8 of its tokens on tensor
// cores; cuBLASLt GEMMs read them once for all tokens but cost a launch per expert and a host
// sync. Up to 16 pairs per expert on average (V2-Lite: 64 experts x 16 / 6 = 170 tokens) the
// grouped pass wins, and those steps stay graph-capturable. H200, V2-Lite (session 34): a
// 128-token prompt (12 pairs an expert) 5,814 -> 6,749 prefill tok/s grouped; batch 32 with 4
// drafts a sequence (15) 2,267 -> 5,817 decode tok/s; but a 256-token prompt (24) 10,255 on the
// per-expert path against 7,706 grouped (each expert's weights read 3-4 times).
constexpr int kGroupedMaxPairsPerExpert = 16;

struct ExpertRows {
  const bf16* x;         // the layer input [T, hidden]
  MoePermutation perm;
  int n;                 // pairs
  int64_t hidden, inter;
};

// The prefill path: per-expert cuBLASLt products over each expert's contiguous rows of the
// gathered input; act and y as in the grouped path, xp and u are workspace. Only the pairs with an
// expert here have rows (host_offsets' last entry; expert parallelism leaves the others out), and
// the permutation's order past them is unwritten.
void per_expert_products(const ExpertRows& r, const std::vector<ExpertWeights>& experts, const int* host_offsets,
                         CublasLtGemm& gemm, const std::function<const bf16*(const Weight&)>& bf16_weight, bf16* xp,
                         bf16* act, bf16* u, float* y, cudaStream_t s) {
  const int n_experts = static_cast<int>(experts.size()), rows_in_all = host_offsets[n_experts];
  launch_gather_rows(r.x, r.perm.order, rows_in_all, r.hidden * static_cast<int64_t>(sizeof(bf16)), xp, s);
  for (int e = 0; e < n_experts; ++e) {
    const int rows = host_offsets[e + 1] - host_offsets[e];
    if (rows == 0) continue;
    const bf16* xs = xp + host_offsets[e] * r.hidden;
    gemm.matmul(xs, bf16_weight(experts[e].gate), act + host_offsets[e] * r.inter, DType::BF16, rows, r.inter, r.hidden);
    gemm.matmul(xs, bf16_weight(experts[e].up), u + host_offsets[e] * r.inter, DType::BF16, rows, r.inter, r.hidden);
  }
  launch_silu_mul(act, u, act, static_cast<int64_t>(rows_in_all) * r.inter, s);
  for (int e = 0; e < n_experts; ++e) {
    const int rows = host_offsets[e + 1] - host_offsets[e];
    if (rows == 0) continue;
    gemm.matmul(act + host_offsets[e] * r.inter, bf16_weight(experts[e].down), y + host_offsets[e] * r.hidden,
                DType::F32, rows, r.hidden, r.inter);
  }
}

// Workspace of the grouped FP8 path: quantized rows of x and of act, their scales, the M tiles.
struct Fp8Scratch {
  uint8_t* xq;
  float* x_scales;
  uint8_t* aq;
  float* a_scales;
  int4* tiles;
  int slots;
};

// The path of FP8 experts: the M tiles and the quantized gathered rows, gate+up with SiLU, act
// quantized per 128 columns, down; act as in the grouped path, y in bf16 (the rounding of
// DeepSeek's recipe, whose expert products return bf16; half the bytes of float rows).
void grouped_fp8_products(const ExpertRows& r, const ExpertTable& table, const Fp8Scratch& w, bf16* act, bf16* y,
                          cudaStream_t s) {
  const int n_experts = table.ex.experts;
  launch_moe_fp8_tiles(r.perm.offsets, n_experts, w.tiles, w.slots, s);
  launch_gather_quantize_fp8_act(r.x, r.perm.order, r.perm.offsets + n_experts, r.n, r.hidden, w.xq, w.x_scales, s);
  launch_moe_fp8_gate_up(table.ex, table.fp8_maps, {w.xq, w.x_scales, r.n, w.tiles, w.slots}, act, s);
  launch_quantize_fp8_act(act, r.n, r.n, r.inter, w.aq, w.a_scales, s);
  launch_moe_fp8_down(table.ex, table.fp8_maps, {w.aq, w.a_scales, r.n, w.tiles, w.slots}, y, s);
}

}  // namespace

namespace {

// The routing's arguments checked (names the op on a mismatch) and in the kernels' form.
RouteParams checked_route(const char* op, const Tensor& logits, const Weight* bias, const MoeRouting& r,
                          const Tensor& ids, const Tensor& weights) {
  expect(logits, DType::F32, op, "logits");
  expect(ids, DType::I32, op, "ids");
  expect(weights, DType::F32, op, "weights");
  const int tokens = static_cast<int>(logits.dim(0)), experts = static_cast<int>(logits.dim(1));
  expect_shape(ids, {tokens, r.top_k}, op, "ids");
  expect_shape(weights, {tokens, r.top_k}, op, "weights");
  if (r.top_k < 1 || r.top_k > experts || experts > kMoeMaxExperts || (bias && bias->w.numel() != experts))
    fail(op, ": top-", r.top_k, " of ", experts, " experts (at most ", kMoeMaxExperts, ")",
         bias ? cat(", bias of ", bias->w.numel()) : "");
  if (r.group_limited && (r.n_group < 1 || r.n_group > 32 || experts % r.n_group || r.topk_group < 1 ||
                          r.topk_group > r.n_group))
    fail(op, ": ", experts, " experts in ", r.n_group, " groups (at most 32), keeping ", r.topk_group);
  return {r.top_k, r.n_group, r.topk_group, r.sigmoid, r.group_limited, r.group_by_top2_sum, r.normalize, r.scaling};
}

}  // namespace

void CudaBackend::moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) {
  const RouteParams p = checked_route("moe_route", logits, bias, r, ids, weights);
  DeviceWeight b;
  if (bias) b = device_weight(*bias);
  launch_moe_route(logits.ptr<float>(), static_cast<int>(logits.dim(0)), static_cast<int>(logits.dim(1)),
                   bias ? &b : nullptr, p, ids.ptr<int>(), weights.ptr<float>(), stream_);
}

void CudaBackend::moe_local_ids(Tensor ids, int first, int count) {
  expect(ids, DType::I32, "moe_local_ids", "ids");
  launch_moe_local_ids(ids.ptr<int>(), ids.numel(), first, count, stream_);
}

// Decode sizes with bf16 router weights: one launch (moe.cu); otherwise the product and the
// routing as two ops.
void CudaBackend::moe_gate_route(const Tensor& x, const Weight& gate, const Weight* bias, const MoeRouting& r,
                                 Tensor logits, Tensor ids, Tensor weights) {
  const int tokens = static_cast<int>(x.dim(0)), hidden = static_cast<int>(x.dim(1));
  if (x.dtype != DType::BF16 || gate.w.dtype != DType::BF16 || gate.in_features() != hidden ||
      !moe_gate_route_fits(tokens, hidden, x.data, gate.w.data))
    return Backend::moe_gate_route(x, gate, bias, r, logits, ids, weights);
  const int experts = static_cast<int>(gate.out_features());
  expect_shape(logits, {tokens, experts}, "moe_gate_route", "logits");
  const RouteParams p = checked_route("moe_gate_route", logits, bias, r, ids, weights);
  DeviceWeight b;
  if (bias) b = device_weight(*bias);
  leave_branch();  // the counter is one: never two launches at once
  launch_moe_gate_route(x.ptr<bf16>(), gate.w.ptr<bf16>(), tokens, hidden, experts, bias ? &b : nullptr, p,
                        logits.ptr<float>(), ids.ptr<int>(), weights.ptr<float>(), static_cast<int*>(route_counter_.data()),
                        stream_);
}

void CudaBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                              const std::vector<ExpertWeights>& experts, Tensor out) {
  const ExpertOutputs e = expert_outputs(x, ids, weights, experts, out);
  e.combine([&](const auto* y) {
    launch_moe_combine(y, e.inverse, weights.ptr<float>(), x.dim(0), ids.dim(1), x.dim(1), out.ptr<bf16>(), stream_);
  });
}

// At every batch size where the rows allow: the combine, the shared experts' add and the residual
// step in one launch (docs/cuda.md).
void CudaBackend::moe_experts_residual(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                       const std::vector<ExpertWeights>& experts, const SharedExperts& shared,
                                       Tensor out, const ResidualNorm& r) {
  const auto rows_like_x = [&](const Tensor& t) {
    return t.dtype == DType::BF16 && t.device.kind == DeviceKind::CUDA && t.shape == x.shape;
  };
  const Tensor* shared_out = shared.out;
  const bool one_launch = rows_like_x(r.x) && rows_like_x(r.normed) && (!shared_out || rows_like_x(*shared_out)) &&
                          r.norm->w.numel() == x.shape.back() &&
                          moe_combine_residual_fits(x.shape.back(), {r.x.data, r.normed.data, out.data,
                                                                     shared_out ? shared_out->data : nullptr});
  if (shared.weights && shared.out) fail("moe_experts_residual: shared experts given both as output and as weights");
  if (!one_launch && shared.weights)
    fail("moe_experts_residual: fused shared experts need the one-launch residual step (bf16 rows of ",
         shape_str(x.shape), ", 8-byte aligned)");
  if (!one_launch) return Backend::moe_experts_residual(x, ids, weights, experts, shared, out, r);
  const ExpertOutputs e = expert_outputs(x, ids, weights, experts, out, shared.weights);
  if (shared_out) join_branch();  // as the ops in sequence do, with or without pairs
  e.combine([&](const auto* y) {
    CombineResidual step{shared_out ? shared_out->ptr<bf16>() : nullptr, r.x.ptr<bf16>(), device_weight(*r.norm),
                         r.eps, r.normed.ptr<bf16>()};
    step.shared_parts = e.shared_parts;
    step.shared_chunks = e.shared_chunks;
    launch_moe_combine_residual(y, e.inverse, weights.ptr<float>(), x.dim(0), ids.dim(1), x.dim(1), step,
                                out.ptr<bf16>(), stream_);
  });
}

// Where the routed experts take the few-token kernels, shared experts of their dtype (bf16 or
// FP8) whose width is a whole number of routed experts' run in the same two launches
// (moe_few.cu): no branch, no launches of their own, and their gate/up rows stream during the
// router's wait (worth 3-4 % at V2-Lite batch 1 on an H200 against waiting for the router as the
// routed rows do). Fusing measured faster than the branch at one token (+4-5 %) and, since
// gate/up's shared rows are spread over the routed grid, at two (session 28: batch 2 671.4 ->
// 689.8 tok/s); at 3-4 tokens the branch, whose products run beside the router on tensor cores,
// stays ahead (-1 %, -6 % fused). DSINFER_FUSED_SHARED=N fuses them up to N tokens (0: never).
bool CudaBackend::fuses_shared_experts(const Tensor& ids, const std::vector<ExpertWeights>& experts,
                                       const ExpertWeights& shared) {
  static const int max_tokens = switch_value("DSINFER_FUSED_SHARED", 2);
  if (ids.shape.size() != 2 || ids.dim(0) > max_tokens || experts.empty()) return false;
  const ExpertTable& table = expert_tables_.get(experts);
  const int tokens = static_cast<int>(ids.dim(0)), k = static_cast<int>(ids.dim(1));
  if (expert_path(table, tokens, tokens * k, true) != ExpertPath::few) return false;
  return shared_chunks(table.ex, shared) > 0 && moe_combine_residual_fits(table.ex.hidden, {});
}

// The routed experts' widths the shared experts span (SharedChunks), or 0 where the few-token
// kernels cannot run them: matrices on the GPU of the routed experts' dtype, bf16 or FP8 (in the
// same blocks, each chunk of whole scale blocks), a whole number (1 to kMaxSharedChunks) of routed
// experts wide, 16-byte aligned, rows of a whole number of 16-byte pieces.
int CudaBackend::shared_chunks(const GroupedExperts& ex, const ExpertWeights& shared) {
  const int64_t hidden = ex.hidden, inter = ex.inter, width = shared.gate.w.shape.empty() ? 0 : shared.gate.out_features();
  const bool fp8 = ex.dtype == DType::F8_E4M3;
  const auto matrix = [&](const Weight& w, int64_t rows, int64_t cols) {
    return w.w.dtype == ex.dtype && w.w.device.kind == DeviceKind::CUDA && w.w.shape == Shape{rows, cols} &&
           aligned16(w.w.data) &&
           (!fp8 || (!w.scale.empty() && w.block_rows == ex.block_rows && w.block_cols == ex.block_cols));
  };
  const bool whole_blocks = !fp8 || width == inter || (inter % ex.block_rows == 0 && inter % ex.block_cols == 0);
  const bool fits = (ex.dtype == DType::BF16 || fp8) && moe_few_takes(ex) && inter > 0 && inter % 8 == 0 &&
                    width % inter == 0 && width / inter >= 1 && width / inter <= kMaxSharedChunks && whole_blocks &&
                    matrix(shared.gate, width, hidden) && matrix(shared.up, width, hidden) &&
                    matrix(shared.down, hidden, width);
  return fits ? static_cast<int>(width / inter) : 0;
}

namespace {

// False with DSINFER_FP8_FEW=0: FP8 experts that the FP8 GEMM reads take it at decode sizes too,
// for measuring what the few-token kernels buy there.
bool fp8_few_enabled() {
  static const bool on = switched_on("DSINFER_FP8_FEW");
  return on;
}

}  // namespace

CudaBackend::ExpertPath CudaBackend::expert_path(const ExpertTable& table, int tokens, int pairs,
                                                 bool x_aligned) const {
  // Up to 4 tokens the few-token kernels stream the chosen experts' weights as stored, FP8 ones
  // too (with bf16 x, as the skinny FP8 product does): no permutation, gather, M tiles or
  // quantizing passes, two launches where the FP8 GEMM took six, and no tiles padded to 192 rows
  // (V3 4 layers, H100, session 50: batch 1 +1.6 %, with the FP8 shared expert fused +3.2 %).
  // Where the FP8 GEMM is the other choice, only up to kFewFp8Tokens tokens, or as many as the
  // tensor-core few-token kernels take (moe_few_mma_takes).
  const bool few = table.grouped && x_aligned && tokens <= kFewTokens && pairs <= kFewMaxPairs &&
                   moe_few_takes(table.ex);
  const bool fp8_gemm = table.fp8_maps && fp8_native_ && x_aligned && moe_fp8_gemm_device(device_index_);
  const bool few_fp8 = (tokens <= kFewFp8Tokens || moe_few_mma_takes(table.ex, tokens)) && fp8_few_enabled();
  if (few && (!fp8_gemm || few_fp8)) return ExpertPath::few;
  // Otherwise FP8 experts take the FP8 GEMM where it runs: it reads each active expert's weights
  // once on the tensor cores, where the grouped kernels widen FP8 to bf16 in registers (V3, 4
  // layers, H100: 7.6 against 18.9 ms a step at batch 128).
  if (fp8_gemm) return ExpertPath::fp8_gemm;
  if (!table.grouped || !x_aligned) return ExpertPath::per_expert;
  if (pairs <= kGroupedMaxPairsPerExpert * table.ex.experts) return ExpertPath::grouped;
  return ExpertPath::per_expert;
}

CudaBackend::ExpertOutputs CudaBackend::expert_outputs(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                                       const std::vector<ExpertWeights>& experts, const Tensor& out,
                                                       const ExpertWeights* shared) {
  expect(x, DType::BF16, "moe_experts", "input");
  expect(ids, DType::I32, "moe_experts", "ids");
  expect(weights, DType::F32, "moe_experts", "weights");
  expect(out, DType::BF16, "moe_experts", "output");
  const int tokens = static_cast<int>(x.dim(0)), k = static_cast<int>(ids.dim(1));
  const int64_t hidden = x.dim(1);
  expect_shape(out, x.shape, "moe_experts", "output");
  expect_shape(weights, ids.shape, "moe_experts", "weights");
  if (ids.dim(0) != tokens) fail("moe_experts: ", tokens, " tokens but ids ", shape_str(ids.shape));
  const int n = tokens * k;
  if (n == 0) return {};
  const ExpertTable& table = expert_tables_.get(experts);
  const int n_experts = table.ex.experts;
  const int64_t inter = table.ex.inter;
  if (table.ex.hidden != hidden)
    fail("moe_experts: input ", shape_str(x.shape), " but experts of hidden size ", table.ex.hidden);
  const ExpertPath path = expert_path(table, tokens, n, aligned16(x.data));
  const bool fp8_gemm = path == ExpertPath::fp8_gemm, few = path == ExpertPath::few;
  const bool grouped = path == ExpertPath::grouped, per_expert = path == ExpertPath::per_expert;
  const int slots = fp8_gemm ? moe_fp8_tile_slots(n, n_experts) : 0;
  SharedChunks chunks;
  if (shared) {
    chunks.chunks = shared_chunks(table.ex, *shared);
    if (!few || chunks.chunks == 0)
      fail("moe_experts: shared experts to fuse, but ", tokens, " tokens of top-", k,
           " over these experts do not take the few-token kernels, or the shared matrices (",
           shape_str(shared->gate.w.shape), ", ", dtype_name(shared->gate.w.dtype),
           ") are not of the routed experts' dtype and a whole number of them wide (fuses_shared_experts)");
    chunks.gate = shared->gate.w.data;
    chunks.up = shared->up.w.data;
    chunks.down = shared->down.w.data;
    if (table.ex.dtype == DType::F8_E4M3) {
      chunks.gate_scale = shared->gate.scale.ptr<float>();
      chunks.up_scale = shared->up.scale.ptr<float>();
      chunks.down_scale = shared->down.scale.ptr<float>();
      chunks.down_scale_cols = shared->down.scale.shape.back();
    }
  }
  const int64_t rows = n + static_cast<int64_t>(chunks.chunks) * tokens;  // of act and y

  ScratchCarver carve;
  const size_t off_at = carve.add((n_experts + 1) * sizeof(int)), active_at = carve.add((n_experts + 1) * sizeof(int)),
               order_at = carve.add(2 * static_cast<size_t>(n) * sizeof(int)),
               act_at = carve.add(rows * inter * sizeof(bf16)), y_at = carve.add(rows * hidden * sizeof(float));
  const size_t xp_at = per_expert ? carve.add(n * hidden * sizeof(bf16)) : 0;
  const size_t u_at = per_expert ? carve.add(n * inter * sizeof(bf16)) : 0;
  auto fp8_piece = [&](size_t bytes) { return fp8_gemm ? carve.add(bytes) : 0; };
  const size_t xq_at = fp8_piece(n * hidden), xs_at = fp8_piece(n * hidden / 128 * sizeof(float));
  const size_t aq_at = fp8_piece(n * inter), as_at = fp8_piece(n * inter / 128 * sizeof(float));
  const size_t tiles_at = fp8_piece(slots * sizeof(int4));
  char* ws = static_cast<char*>(moe_ws_.get(carve.total()));
  MoePermutation perm;
  perm.offsets = reinterpret_cast<int*>(ws + off_at);
  perm.active = reinterpret_cast<int*>(ws + active_at);
  perm.active_count = perm.active + n_experts;
  perm.order = reinterpret_cast<int*>(ws + order_at);
  perm.inverse = perm.order + n;
  bf16* act = reinterpret_cast<bf16*>(ws + act_at);
  float* y = reinterpret_cast<float*>(ws + y_at);

  if (few) {  // act and y by pair, so the combine needs no inverse permutation
    if (moe_few_mma_takes(table.ex, tokens)) {
      launch_moe_few_mma_gate_up(table.ex, ids.ptr<int>(), n, k, x.ptr<bf16>(), chunks, act, sm_count_, stream_);
      launch_moe_few_mma_down(table.ex, ids.ptr<int>(), n, k, act, chunks, y, sm_count_, stream_);
    } else {
      launch_moe_few_gate_up(table.ex, ids.ptr<int>(), n, k, x.ptr<bf16>(), chunks, act, stream_);
      launch_moe_few_down(table.ex, ids.ptr<int>(), n, k, act, chunks, y, stream_);
    }
    return {y, nullptr, nullptr, chunks.chunks ? y + n * hidden : nullptr, chunks.chunks};
  }
  launch_moe_permute(ids.ptr<int>(), tokens, k, n_experts, perm, stream_);
  if (grouped) {
    const int max_active = std::min(n_experts, n);
    launch_moe_gate_up(table.ex, perm, max_active, x.ptr<bf16>(), act, stream_);
    launch_moe_down(table.ex, perm, max_active, act, y, stream_);
  } else if (fp8_gemm) {
    const Fp8Scratch w{reinterpret_cast<uint8_t*>(ws + xq_at), reinterpret_cast<float*>(ws + xs_at),
                       reinterpret_cast<uint8_t*>(ws + aq_at), reinterpret_cast<float*>(ws + as_at),
                       reinterpret_cast<int4*>(ws + tiles_at), slots};
    bf16* y16 = reinterpret_cast<bf16*>(y);
    grouped_fp8_products({x.ptr<bf16>(), perm, n, hidden, inter}, table, w, act, y16, stream_);
    return {nullptr, perm.inverse, y16};
  } else {
    int* host_offsets = static_cast<int*>(staging_.get((n_experts + 1) * sizeof(int)));
    CUDA_CHECK(cudaMemcpyAsync(host_offsets, perm.offsets, (n_experts + 1) * sizeof(int), cudaMemcpyDeviceToHost,
                               stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    per_expert_products({x.ptr<bf16>(), perm, n, hidden, inter}, experts, host_offsets, *gemm_,
                        [this](const Weight& w) { return bf16_weight(w); }, reinterpret_cast<bf16*>(ws + xp_at), act,
                        reinterpret_cast<bf16*>(ws + u_at), y, stream_);
  }
  return {y, perm.inverse};
}

}  // namespace dsinfer::cuda
