// Data movement and pointwise kernels: embedding lookup, residual add, SiLU gating, row
// gathers, KV-cache writes, weight dequantization and dtype conversions.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 256;

// Grid for a grid-stride loop over n elements.
unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 8192)); }

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
                               i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void embedding_kernel(const int* tokens, DeviceWeight table, int64_t first_id, int64_t rows, bf16* out) {
  dependent_kernel_start();
  const int64_t t = blockIdx.x, h = table.cols, row = tokens[t] - first_id;
  const bool held = row >= 0 && row < rows;
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
    out[t * h + i] = __float2bfloat16(held ? weight_at(table, row, i) : 0.0f);
}

__global__ void add_kernel(bf16* x, const bf16* y, int64_t n) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) x[i] = __float2bfloat16(__bfloat162float(x[i]) + __bfloat162float(y[i]));
}

__global__ void silu_mul_kernel(const bf16* gate, const bf16* up, bf16* out, int64_t n) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) out[i] = __float2bfloat16(silu_times(__bfloat162float(gate[i]), __bfloat162float(up[i])));
}

// Eight values per thread in 16-byte words: the elementwise pass is bound by memory, and
// full-width accesses reach the bandwidth that 2-byte ones do not.
__global__ void silu_mul_vec_kernel(const uint4* gate, const uint4* up, uint4* out, int64_t n8) {
  dependent_kernel_start();
  GRID_STRIDE(i, n8) {
    const uint4 g = gate[i], u = up[i];
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&g);
    const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&u);
    uint4 r;
    __nv_bfloat162* r2 = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 gf = __bfloat1622float2(g2[j]), uf = __bfloat1622float2(u2[j]);
      r2[j] = __floats2bfloat162_rn(silu_times(gf.x, uf.x), silu_times(gf.y, uf.y));
    }
    out[i] = r;
  }
}

// Rows of 2-byte units: one block per output row.
__global__ void gather_rows_kernel(const uint16_t* x, const int* rows, int64_t units, uint16_t* out) {
  dependent_kernel_start();
  const uint16_t* src = x + rows[blockIdx.x] * units;
  uint16_t* dst = out + blockIdx.x * units;
  for (int64_t i = threadIdx.x; i < units; i += blockDim.x) dst[i] = src[i];
}

// A negative slot marks a padding token of a recorded batch: it has no cache row.
__global__ void cache_write_kernel(const int* slots, const bf16* src, int64_t width, bf16* cache) {
  dependent_kernel_start();
  const int64_t t = blockIdx.x, slot = slots[t];
  if (slot < 0) return;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) cache[slot * width + i] = src[t * width + i];
}

// dst[r, :n] = src[r / repeat, :n] in units of U (offsets and widths in units).
template <typename U>
__global__ void copy_columns_kernel(const U* src, int64_t src_w, U* dst, int64_t dst_w, int64_t n, int64_t repeat,
                                    int64_t total) {
  dependent_kernel_start();
  GRID_STRIDE(i, total) {
    const int64_t r = i / n, c = i % n;
    dst[r * dst_w + c] = src[r / repeat * src_w + c];
  }
}

// One block per (sequence, 64 positions): the context rows of the sequence, packed.
__global__ void gather_context_kernel(DeviceBatch b, const uint4* cache, int64_t units, uint4* out) {
  dependent_kernel_start();
  const int seq = blockIdx.x, p0 = blockIdx.y * 64, ctx = b.context_len[seq];
  const int64_t base = b.context_start[seq];
  for (int64_t i = threadIdx.x; i < 64 * units; i += blockDim.x) {
    const int p = p0 + static_cast<int>(i / units);
    if (p < ctx) out[(base + p) * units + i % units] = cache[cache_slot(b, seq, p) * units + i % units];
  }
}

__global__ void weight_to_bf16_kernel(DeviceWeight w, int64_t n, bf16* out) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) out[i] = __float2bfloat16(weight_at(w, i / w.cols, i % w.cols));
}

template <typename T>
__global__ void add_bias_kernel(T* out, int64_t n, DeviceWeight bias) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) {
    const float v = static_cast<float>(out[i]) + weight_at(bias, 0, i % bias.cols);
    out[i] = static_cast<T>(v);
  }
}

__global__ void bf16_to_f32_kernel(const bf16* x, float* out, int64_t n) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) out[i] = __bfloat162float(x[i]);
}
__global__ void f32_to_bf16_kernel(const float* x, bf16* out, int64_t n) {
  dependent_kernel_start();
  GRID_STRIDE(i, n) out[i] = __float2bfloat16(x[i]);
}

}  // namespace

void launch_embedding(const DeviceBatch& b, const DeviceWeight& table, int64_t first_id, int64_t rows, bf16* out,
                      cudaStream_t s) {
  if (b.num_tokens == 0) return;
  launch_dependent("embedding_kernel", embedding_kernel, b.num_tokens, kThreads, 0, s, b.tokens, table, first_id, rows,
                   out);
}

void launch_add(bf16* x, const bf16* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  launch_dependent("add_kernel", add_kernel, blocks_for(n), kThreads, 0, s, x, y, n);
}

void launch_silu_mul(const bf16* gate, const bf16* up, bf16* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  if (n % 8 == 0 && aligned16(gate) && aligned16(up) && aligned16(out))
    launch_dependent("silu_mul_vec_kernel", silu_mul_vec_kernel, blocks_for(n / 8), kThreads, 0, s,
                     reinterpret_cast<const uint4*>(gate), reinterpret_cast<const uint4*>(up),
                     reinterpret_cast<uint4*>(out), n / 8);
  else
    launch_dependent("silu_mul_kernel", silu_mul_kernel, blocks_for(n), kThreads, 0, s, gate, up, out, n);
}

void launch_gather_rows(const void* x, const int* rows, int n_rows, int64_t row_bytes, void* out, cudaStream_t s) {
  if (n_rows == 0) return;
  launch_dependent("gather_rows_kernel", gather_rows_kernel, n_rows, kThreads, 0, s, static_cast<const uint16_t*>(x),
                   rows, row_bytes / 2, static_cast<uint16_t*>(out));
}

void launch_cache_write(const DeviceBatch& b, const bf16* src, int64_t width, bf16* cache, cudaStream_t s) {
  if (b.num_tokens == 0) return;
  launch_dependent("cache_write_kernel", cache_write_kernel, b.num_tokens, kThreads, 0, s, b.slots, src, width, cache);
}

template <typename U>
void copy_columns_as(const char* src, int64_t src_w, char* dst, int64_t dst_w, int64_t rows, int64_t n, int64_t repeat,
                     cudaStream_t s) {
  constexpr int64_t u = sizeof(U);
  const int64_t total = rows * (n / u);
  launch_dependent("copy_columns_kernel", copy_columns_kernel<U>, blocks_for(total), kThreads, 0, s,
                   reinterpret_cast<const U*>(src), src_w / u, reinterpret_cast<U*>(dst), dst_w / u, n / u, repeat,
                   total);
}

void launch_copy_columns(const char* src, int64_t src_w, char* dst, int64_t dst_w, int64_t rows, int64_t n,
                         int64_t repeat, cudaStream_t s) {
  if (rows == 0 || n == 0) return;
  // The widest unit that every address, width and count is a multiple of.
  const uint64_t all = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) | src_w | dst_w | n;
  if (all % 16 == 0) return copy_columns_as<uint4>(src, src_w, dst, dst_w, rows, n, repeat, s);
  if (all % 4 == 0) return copy_columns_as<uint32_t>(src, src_w, dst, dst_w, rows, n, repeat, s);
  if (all % 2 == 0) return copy_columns_as<uint16_t>(src, src_w, dst, dst_w, rows, n, repeat, s);
  copy_columns_as<uint8_t>(src, src_w, dst, dst_w, rows, n, repeat, s);
}

void launch_gather_context(const DeviceBatch& b, const void* cache, int64_t row_bytes, void* out, cudaStream_t s) {
  if (b.num_seqs == 0 || b.max_context == 0) return;
  if (ceil_div(b.max_context, 64) > 65535)
    fail("gather_context: a context of ", b.max_context, " tokens exceeds one grid");
  const dim3 grid(static_cast<unsigned>(b.num_seqs), static_cast<unsigned>(ceil_div(b.max_context, 64)));
  launch_dependent("gather_context_kernel", gather_context_kernel, grid, kThreads, 0, s, b,
                   static_cast<const uint4*>(cache), row_bytes / 16, static_cast<uint4*>(out));
}

void launch_weight_to_bf16(const DeviceWeight& w, int64_t rows, bf16* out, cudaStream_t s) {
  const int64_t n = rows * w.cols;
  if (n == 0) return;
  launch_dependent("weight_to_bf16_kernel", weight_to_bf16_kernel, blocks_for(n), kThreads, 0, s, w, n, out);
}

void launch_add_bias(void* out, DType out_dtype, int64_t rows, const DeviceWeight& bias, cudaStream_t s) {
  const int64_t n = rows * bias.cols;
  if (n == 0) return;
  if (out_dtype == DType::F32)
    launch_dependent("add_bias_kernel", add_bias_kernel<float>, blocks_for(n), kThreads, 0, s, static_cast<float*>(out),
                     n, bias);
  else
    launch_dependent("add_bias_kernel", add_bias_kernel<bf16>, blocks_for(n), kThreads, 0, s, static_cast<bf16*>(out),
                     n, bias);
}

void launch_bf16_to_f32(const bf16* x, float* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  launch_dependent("bf16_to_f32_kernel", bf16_to_f32_kernel, blocks_for(n), kThreads, 0, s, x, out, n);
}

void launch_f32_to_bf16(const float* x, bf16* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  launch_dependent("f32_to_bf16_kernel", f32_to_bf16_kernel, blocks_for(n), kThreads, 0, s, x, out, n);
}

namespace {

// One block per row: each thread scans a strided slice (16-byte words when the row allows: a
// 150k-entry row is then ~40 loads per thread, not ~600), then a shared-memory tree keeps the
// largest value and, among equals, the smallest index (torch.argmax's choice). A row with a NaN
// gives -1: no token is the right one, and the caller fails the request by name.
constexpr int kArgmaxThreads = 1024;

template <bool kVec>
__global__ void __launch_bounds__(kArgmaxThreads) argmax_rows_kernel(const float* x, int64_t cols, int* out) {
  dependent_kernel_start();
  constexpr int kThreads = kArgmaxThreads;
  __shared__ float best_v[kThreads];
  __shared__ int best_i[kThreads];
  const float* row = x + blockIdx.x * cols;
  float v = -INFINITY;
  int i = 0x7fffffff;
  bool nan = false;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x; c < cols / 4; c += kThreads) {
      const float4 q = reinterpret_cast<const float4*>(row)[c];
      const float e[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        nan |= isnan(e[j]);
        if (e[j] > v) v = e[j], i = static_cast<int>(4 * c + j);
      }
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
      nan |= isnan(row[c]);
      if (row[c] > v) v = row[c], i = static_cast<int>(c);
    }
  }
  best_v[threadIdx.x] = v;
  best_i[threadIdx.x] = i;
  const bool row_has_nan = __syncthreads_or(nan);  // also the barrier before the tree
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const float ov = best_v[threadIdx.x + stride];
      const int oi = best_i[threadIdx.x + stride];
      if (ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x]))
        best_v[threadIdx.x] = ov, best_i[threadIdx.x] = oi;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = row_has_nan ? -1 : best_i[0] == 0x7fffffff ? 0 : best_i[0];
}

}  // namespace

void launch_argmax_rows(const float* x, int64_t rows, int64_t cols, int* out, cudaStream_t s) {
  if (rows == 0) return;
  if (cols % 4 == 0 && aligned16(x))
    launch_dependent("argmax_rows_kernel", argmax_rows_kernel<true>, static_cast<unsigned>(rows), kArgmaxThreads, 0, s,
                     x, cols, out);
  else
    launch_dependent("argmax_rows_kernel", argmax_rows_kernel<false>, static_cast<unsigned>(rows), kArgmaxThreads, 0, s,
                     x, cols, out);
}

}  // namespace dsinfer::cuda
