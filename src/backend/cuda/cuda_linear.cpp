// CudaBackend's matrix products: linear through cuBLASLt (bf16 x bf16 -> bf16 or f32; FP8
// block-scaled weights on Hopper's FP8 tensor cores where the shape allows). head_matmul is in
// cuda_head_matmul.cpp.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

const bf16* CudaBackend::bf16_weight(const Weight& w) {
  if (w.w.dtype == DType::BF16) return w.w.ptr<bf16>();
  // FP8 (block-scaled), F16 and F32 weights: converted to bf16 right before their product.
  const int64_t rows = w.w.numel() / w.w.shape.back();
  bf16* out = static_cast<bf16*>(weight_ws_.get(static_cast<size_t>(w.w.numel()) * sizeof(bf16)));
  launch_weight_to_bf16(device_weight(w), rows, out, stream_);
  return out;
}

namespace {

// cuBLASLt's block-scaled FP8 kernels take token counts in multiples of 16: other counts get no
// algorithm (measured on H100, cuBLAS 13.1; M = 16, 32, 48 ran, 1, 3, 5, 9, 33, 130 did not).
constexpr int64_t kFp8TokenMultiple = 16;

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

}  // namespace

// DeepSeek's recipe: x quantized to e4m3 per token and 128 columns, then cuBLASLt FP8 products
// that apply both operands' scales per 128-deep slice of K in float32. The weight is read as
// stored (1 byte per value) instead of being widened to bf16 first. Tokens beyond the last
// multiple of 16 ("the tail") run as a product padded with zero tokens into a scratch output,
// whose real rows are then copied; when the whole product is small (copying its output costs
// less than reading the weight once more, 2 M N out_bytes <= N K) all tokens go that way.
bool CudaBackend::fp8_linear_native(const Tensor& x, const Weight& w, Tensor out, const Tensor* silu_up) {
  const int64_t m = x.rows(), k = x.shape.back(), n = w.out_features();
  if (!fp8_native_ || m == 0 || w.scale.empty() || reinterpret_cast<uintptr_t>(x.data) % 16 != 0 ||
      !fp8_block_shape_supported(n, k, w.block_rows, w.block_cols))
    return false;
  const int64_t out_bytes = static_cast<int64_t>(dtype_size(out.dtype));
  const int64_t rest = m % kFp8TokenMultiple;
  const int64_t direct = rest != 0 && 2 * m * out_bytes <= k ? 0 : m - rest;  // tokens straight into out
  const int64_t tail = m - direct, tail_pad = round_up(tail, kFp8TokenMultiple), rows = direct + tail_pad;
  const int64_t k_blocks = k / kFp8Block, n_blocks = n / kFp8Block, pitch = fp8_weight_scale_pitch(k);
  // cuBLASLt reads the weight scales as rows of `pitch` floats, 16-byte aligned: the checkpoint's
  // [N/128, K/128] grid is that already unless K/128 is not a multiple of 4 (then one small copy).
  const bool pad_scales = pitch != k_blocks || reinterpret_cast<uintptr_t>(w.scale.data) % 16 != 0;
  ScratchCarver carve;
  const size_t xq_at = carve.add(static_cast<size_t>(rows * k));
  const size_t xs_at = carve.add(static_cast<size_t>(k_blocks * rows) * sizeof(float));
  const size_t tail_at = carve.add(static_cast<size_t>(tail_pad * n * out_bytes));
  const size_t ws_at = pad_scales ? carve.add(static_cast<size_t>(n_blocks * pitch) * sizeof(float)) : 0;
  char* ws = static_cast<char*>(fp8_ws_.get(carve.total()));
  uint8_t* xq = reinterpret_cast<uint8_t*>(ws + xq_at);
  float* x_scale = reinterpret_cast<float*>(ws + xs_at);  // [K/128, direct] then [K/128, tail_pad]
  float* padded = reinterpret_cast<float*>(ws + ws_at);
  void* tail_out = ws + tail_at;
  const float* w_scale = pad_scales ? padded : w.scale.ptr<float>();
  const Fp8Operands direct_ops{w.w.data, w_scale, xq, x_scale};
  const Fp8Operands tail_ops{w.w.data, w_scale, xq + direct * k, x_scale + k_blocks * direct};
  if (!fp8_gemm_) fp8_gemm_ = std::make_unique<Fp8Gemm>(stream_);
  if (direct > 0 && !fp8_gemm_->supported(Fp8Scaling::Block, direct_ops, out.data, out.dtype, direct, n, k)) return false;
  if (tail > 0 && !fp8_gemm_->supported(Fp8Scaling::Block, tail_ops, tail_out, out.dtype, tail_pad, n, k)) return false;

  if (pad_scales) launch_pad_rows_f32(w.scale.ptr<float>(), n_blocks, k_blocks, pitch, padded, stream_);
  const bf16* xb = x.ptr<bf16>();
  const bf16* ub = silu_up ? silu_up->ptr<bf16>() : nullptr;
  auto quantize_rows = [&](int64_t from, int64_t rows_in, int64_t pad, float* scales) {
    if (ub)
      return launch_silu_mul_quantize_fp8_act(xb + from * k, ub + from * k, rows_in, pad, k, xq + from * k, scales,
                                              stream_);
    launch_quantize_fp8_act(xb + from * k, rows_in, pad, k, xq + from * k, scales, stream_);
  };
  if (direct > 0) {
    quantize_rows(0, direct, direct, x_scale);
    fp8_gemm_->matmul(Fp8Scaling::Block, direct_ops, out.data, out.dtype, direct, n, k);
  }
  if (tail > 0) {
    quantize_rows(direct, tail, tail_pad, x_scale + k_blocks * direct);
    fp8_gemm_->matmul(Fp8Scaling::Block, tail_ops, tail_out, out.dtype, tail_pad, n, k);
    // Output rows are contiguous, so the tail's real rows are one block of bytes.
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(out.data) + direct * n * out_bytes, tail_out, tail * n * out_bytes,
                               cudaMemcpyDeviceToDevice, stream_));
  }
  return true;
}

// Scratch for the skinny FP8 kernel's x, quantized first (gemv_fp8.h), where that pays, the
// tensor-core kernel runs (taking scratch it would not read could grow fp8_ws_, which drops the
// recorded graphs) and the products run on the main stream (fp8_ws_ is ordered by it; a branch's
// products quantize their x themselves).
Fp8Act CudaBackend::skinny_fp8_act(int64_t m, int64_t k, const GemvFp8Products& products) {
  if (stream_ != main_stream_ || !gemv_fp8_quantizes_first(m) || !gemv_fp8_takes_mma(k, products)) return {};
  return fp8_act_at(fp8_ws_.get(fp8_act_bytes(m, k)), m, k);
}

void CudaBackend::linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) {
  expect(x, DType::BF16, "linear", "input");
  if (out.dtype != DType::BF16) expect(out, DType::F32, "linear", "output");
  const int64_t m = x.rows(), k = x.shape.back(), n = w.out_features();
  if (w.w.shape.size() != 2 || w.in_features() != k || out.shape.back() != n || out.rows() != m ||
      (bias && bias->w.numel() != n))
    fail("linear: input ", shape_str(x.shape), " x weight ", shape_str(w.w.shape), " -> output ", shape_str(out.shape),
         " do not match");
  // A branch holds only the skinny kernel's products: the other paths use handles and scratch
  // bound to the main stream, so they first return there.
  const bool fp8 = w.w.dtype == DType::F8_E4M3;
  const bool fp8_skinny = fp8 && gemv_fp8_fits(m, k, x.data, device_weight(w));
  const bool skinny = fp8_skinny || (w.w.dtype == DType::BF16 && gemv_fits(m, n, k, x.data, w.w.data));
  if (!skinny) leave_branch();
  // 1-4 tokens of FP8 weights: a skinny FP8 kernel reads the weights as stored (gemv_fp8.h).
  if (fp8_skinny) {
    ++fp8_stats_.skinny;
    GemvFp8Products product;
    product.add(device_weight(w), bias ? device_weight(*bias) : DeviceWeight{}, out.data, n);
    return launch_gemv_fp8(x.ptr<bf16>(), skinny_fp8_act(m, k, product), product, out.dtype, m, k, sm_count_, stream_);
  }
  if (fp8) {
    if (fp8_linear_native(x, w, out)) {
      ++fp8_stats_.native;
      if (bias) launch_add_bias(out.data, out.dtype, m, device_weight(*bias), stream_);
      return;
    }
    ++fp8_stats_.dequantized;
  }
  // Decode-sized products of bf16 weights stream the weights through the skinny kernel.
  if (skinny) {
    GemvProducts one;
    one.add(w.w.ptr<bf16>(), bias ? device_weight(*bias) : DeviceWeight{}, out.data, n);
    return launch_gemv(x.ptr<bf16>(), one, out.dtype, m, k, sm_count_, stream_ == main_stream_, stream_);
  }
  // A bf16 bias on a bf16 output rides in the GEMM's epilogue; other combinations take a kernel.
  const bool fused = bias && bias->w.dtype == DType::BF16 && out.dtype == DType::BF16;
  gemm_->matmul(x.ptr<bf16>(), bf16_weight(w), out.data, out.dtype, m, n, k, fused ? bias->w.ptr<bf16>() : nullptr);
  if (bias && !fused) launch_add_bias(out.data, out.dtype, m, device_weight(*bias), stream_);
}

// 1-4 tokens through several FP8 weights, as V3's q_a and kv_a: one skinny launch, not one each
// (at batch 1 each launch of these small products is mostly its start and drain: 8.0 and 6.5 us
// for 11 and 4 MB, H100). False, launching nothing, where one of them does not fit.
bool CudaBackend::fp8_many(const Tensor& x, const std::vector<LinearOut>& outs) {
  if (x.dtype != DType::BF16 || outs.size() < 2 || outs.size() > static_cast<size_t>(kGemvFp8MaxProducts)) return false;
  const DType out_dtype = outs.front().out.dtype;
  if (out_dtype != DType::BF16 && out_dtype != DType::F32) return false;
  const int64_t m = x.rows(), k = x.shape.back();
  GemvFp8Products products;
  for (const LinearOut& o : outs) {
    const Weight& w = *o.weight;
    if (w.w.dtype != DType::F8_E4M3 || w.w.shape.size() != 2 || w.in_features() != k || o.out.rows() != m ||
        o.out.dtype != out_dtype || o.out.shape.back() != w.out_features() ||
        (o.bias && o.bias->w.numel() != w.out_features()) || !gemv_fp8_fits(m, k, x.data, device_weight(w)))
      return false;
    products.add(device_weight(w), o.bias ? device_weight(*o.bias) : DeviceWeight{}, o.out.data, w.out_features());
  }
  fp8_stats_.skinny += products.count;
  launch_gemv_fp8(x.ptr<bf16>(), skinny_fp8_act(m, k, products), products, out_dtype, m, k, sm_count_, stream_);
  return true;
}

// Decode-sized products of one input (q/k/v, gate/up) share one skinny launch when every weight
// is bf16 (or, at 1-4 tokens, every weight FP8: fp8_many); otherwise each runs as its own linear.
void CudaBackend::linear_many(const Tensor& x, const std::vector<LinearOut>& outs) {
  const int64_t m = x.rows(), k = x.shape.back();
  if (fp8_many(x, outs)) return;
  int64_t widest = 0;  // the largest product decides the path (gemv_fits)
  for (const LinearOut& o : outs) widest = std::max(widest, o.weight->out_features());
  bool one_launch = x.dtype == DType::BF16 && !outs.empty() && outs.size() <= kGemvMaxProducts;
  for (const LinearOut& o : outs)
    one_launch = one_launch && o.weight->w.dtype == DType::BF16 && o.weight->w.shape.size() == 2 &&
                 o.weight->in_features() == k && o.out.dtype == outs.front().out.dtype && o.out.rows() == m &&
                 o.out.shape.back() == o.weight->out_features() && (!o.bias || o.bias->w.numel() == o.out.shape.back()) &&
                 gemv_fits(m, widest, k, x.data, o.weight->w.data);
  if (!one_launch) {
    if (!stacked_product(x, outs)) Backend::linear_many(x, outs);
    return;
  }
  expect(x, DType::BF16, "linear_many", "input");
  if (outs.front().out.dtype != DType::BF16) expect(outs.front().out, DType::F32, "linear_many", "output");
  GemvProducts products;
  for (const LinearOut& o : outs)
    products.add(o.weight->w.ptr<bf16>(), o.bias ? device_weight(*o.bias) : DeviceWeight{}, o.out.data,
                 o.out.shape.back());
  launch_gemv(x.ptr<bf16>(), products, outs.front().out.dtype, m, k, sm_count_, stream_ == main_stream_, stream_);
}

// Decode-sized gate and up of bf16 weights: one skinny launch that ends in the activation, so
// neither product's output goes to memory and the SiLU launch (a step in the layer's chain of
// dependent kernels) is gone.
void CudaBackend::linear_silu_mul(const Tensor& x, const Weight& gate, const Weight& up, Tensor act, Tensor up_out) {
  const int64_t m = x.rows(), k = x.shape.back(), n = gate.out_features();
  const bool fits = x.dtype == DType::BF16 && act.dtype == DType::BF16 && gate.w.dtype == DType::BF16 &&
                    up.w.dtype == DType::BF16 && gate.w.shape == up.w.shape && gate.w.shape.size() == 2 &&
                    gate.in_features() == k && act.rows() == m && act.shape.back() == n &&
                    gemv_fits(m, n, k, x.data, gate.w.data) && gemv_fits(m, n, k, x.data, up.w.data);
  if (!fits || !launch_gemv_silu(x.ptr<bf16>(), gate.w.ptr<bf16>(), up.w.ptr<bf16>(), act.ptr<bf16>(), m, n, k,
                                 sm_count_, stream_ == main_stream_, stream_))
    Backend::linear_silu_mul(x, gate, up, act, up_out);
}

namespace {
// DSINFER_FP8_SILU_PASS=0 keeps silu_mul's launch before an FP8 down, for measurement.
bool silu_pass_on() {
  static const bool on = switched_on("DSINFER_FP8_SILU_PASS");
  return on;
}
}  // namespace

// FP8 gate, up and down (on the main stream: the scratch is ordered by it): the pass that
// quantizes down's x computes the activation (silu(gate) * up rounded to bf16, as silu_mul), so
// silu_mul's launch is gone; the same bits.
// - 2-4 tokens, where down's x is quantized first (gemv_fp8_quantizes_first) on the tensor-core
//   kernel: launch_gemv_fp8_silu, one step less in the layer's chain of dependent kernels. H100,
//   2 rounds: the 7B FP8 batch 3 / 4 +0.7 / +0.8 %, V3 8 layers batch 4 +0.7 % (session 60);
//   session 61, with x quantized first from 2 tokens: the 7B batch 2 542-547 -> 568-571 tok/s
//   (+4.6 %), V3 8 layers batch 2 601 -> 607 (one round; 596 with the ops one by one). At one
//   token the fold gains nothing and quantizing first loses (the 7B -3 %): there the ops run
//   one by one.
// - More tokens, on the block-scaled FP8 GEMM (fp8_linear_native): its quantizing pass reads gate
//   and up instead of the activation silu_mul would write (at 4096 tokens of the 7B, 155 MB
//   written and read again a layer): the 7B's 4096-token prefill 53.0 -> 54.4k tok/s (+2.6 %, 2
//   rounds, session 61). V3 8 layers' 1024-token prefill took 1.1 % longer in one round, where its
//   three dense layers' bytes predict 0.4 % less: within that call's noise, unconfirmed.
void CudaBackend::gated_mlp(const Tensor& x, const Weight& gate, const Weight& up, const Weight& down, Tensor act,
                            Tensor up_out, Tensor out) {
  const int64_t m = act.rows(), k = act.shape.back();
  const bool fp8 = gate.w.dtype == DType::F8_E4M3 && up.w.dtype == DType::F8_E4M3 && down.w.dtype == DType::F8_E4M3;
  // up_out is read by 16-byte loads beside act (whose own alignment the products check).
  const bool shapes = act.dtype == DType::BF16 && up_out.dtype == DType::BF16 && up_out.shape == act.shape &&
                      aligned16(up_out.data) && down.w.shape.size() == 2 && down.in_features() == k &&
                      out.rows() == m && out.shape.back() == down.out_features() &&
                      (out.dtype == DType::BF16 || out.dtype == DType::F32);
  if (!fp8 || !shapes || !silu_pass_on()) return Backend::gated_mlp(x, gate, up, down, act, up_out, out);
  linear_many(x, {{&gate, nullptr, act}, {&up, nullptr, up_out}});
  if (gemv_fp8_fits(m, k, act.data, device_weight(down))) {
    GemvFp8Products product;
    product.add(device_weight(down), DeviceWeight{}, out.data, down.out_features());
    // Taken after gate and up, whose own x may take the same scratch.
    const Fp8Act a = skinny_fp8_act(m, k, product);
    if (a.q != nullptr) {
      ++fp8_stats_.skinny;
      return launch_gemv_fp8_silu(act.ptr<bf16>(), up_out.ptr<bf16>(), a, product, out.dtype, m, k, sm_count_,
                                  stream_);
    }
  } else {
    leave_branch();  // the GEMM's handles and scratch are bound to the main stream
    if (fp8_linear_native(act, down, out, &up_out)) {
      ++fp8_stats_.native;
      return;
    }
  }
  // The ops one by one, as the default runs them.
  silu_mul(act, up_out, act);
  linear(act, down, nullptr, out);
}

// bf16 weights that upload_weights placed back to back (and their biases, likewise) are one
// [sum N, K] matrix: one product into scratch, then each output's columns copied out. At 64
// tokens q/k/v took three cuBLASLt products, two of them 512 rows wide (latency-bound, with
// split-K reductions).
bool CudaBackend::stacked_product(const Tensor& x, const std::vector<LinearOut>& outs) {
  if (outs.size() < 2 || x.dtype != DType::BF16) return false;
  const int64_t m = x.rows(), k = x.shape.back();
  const bool biased = outs.front().bias != nullptr;
  int64_t n = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const LinearOut& o = outs[i];
    const Weight& w = *o.weight;
    if (w.w.dtype != DType::BF16 || w.w.shape.size() != 2 || w.in_features() != k || o.out.dtype != DType::BF16 ||
        o.out.rows() != m || o.out.shape.back() != w.out_features() || (o.bias != nullptr) != biased ||
        (biased && (o.bias->w.dtype != DType::BF16 || o.bias->w.numel() != w.out_features())))
      return false;
    if (i > 0) {
      const LinearOut& prev = outs[i - 1];
      const auto follows = [](const Tensor& a, const Tensor& b) {
        return static_cast<const char*>(a.data) + a.nbytes() == static_cast<const char*>(b.data);
      };
      if (!follows(prev.weight->w, w.w) || (biased && !follows(prev.bias->w, o.bias->w))) return false;
    }
    n += w.out_features();
  }
  Weight stacked = *outs.front().weight;
  stacked.w.shape = {n, k};
  Weight stacked_bias;
  if (biased) {
    stacked_bias = *outs.front().bias;
    stacked_bias.w.shape = {n};
  }
  Tensor all{DType::BF16, {m, n}, stacked_ws_.get(static_cast<size_t>(m * n) * sizeof(bf16)), device()};
  linear(x, stacked, biased ? &stacked_bias : nullptr, all);
  int col = 0;
  for (const LinearOut& o : outs) {
    const int width = static_cast<int>(o.out.shape.back());
    copy_columns(all, col, o.out.reshape({m, width}), 0, width);
    col += width;
  }
  return true;
}

}  // namespace dsinfer::cuda
