// Tensor-core rates of the wgmma mixes the MLA decode kernel (src/backend/cuda/mla_decode.cu)
// could issue, with nothing to wait for: one block of two warpgroups on every SM, operands
// static in shared memory, 256 "tiles" of work a warpgroup, each tile a group committed and
// waited for one tile later. Prints MACs a clock an SM (H100 dense bf16 peak: 2048) and the
// whole card's TFLOP/s. Build: nvcc -Isrc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a
// bench/hopper/wgmma_rate.cu -o wgmma_rate
#include <cstdint>
#include <cstdio>
#include <vector>

#include "backend/cuda/wgmma.cuh"
using namespace dsinfer::cuda;

constexpr int kTiles = 256;
// What one warpgroup issues a tile: NS S products (64 heads x 64 keys x 576, m64n64k16 with both
// operands in shared memory) and NPV quarters of a P . V half (64 x 256 x 16, m64n256k16 with P
// in registers).
template <int NS, int NPV>
__device__ __forceinline__ void run(uint64_t qd, uint64_t kd, uint64_t vd, float (&s)[32], float (&o)[128],
                                    const uint32_t (&a)[4]) {
  for (int t = 0; t < kTiles; ++t) {
    fence_regs(s);
    fence_regs(o);
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < NS; ++j)
#pragma unroll
      for (int k = 0; k < 36; ++k)
        wgmma_m64n64k16_ss(s, qd + ((k / 4) * 8192 + (k % 4) * 32 >> 4), kd + ((k / 4) * 8192 + (k % 4) * 32 >> 4));
#pragma unroll
    for (int kk = 0; kk < NPV; ++kk) wgmma_m64n256k16_rs(o, a, vd + ((kk % 4 * 2048) >> 4));
    wgmma_commit();
    wgmma_wait<1>();
  }
  wgmma_wait<0>();
  fence_regs(s);
  fence_regs(o);
}

template <int S0, int PV0, int S1, int PV1>
__global__ void __launch_bounds__(256, 1) rate(long long* cycles, float* sink) {
  extern __shared__ __align__(1024) unsigned char sm[];
  const uint32_t base = (static_cast<uint32_t>(__cvta_generic_to_shared(sm)) + 1023) & ~1023u;
  for (int i = threadIdx.x; i < 200 * 1024 / 4; i += 256) reinterpret_cast<uint32_t*>(sm)[i] = (i & 7);
  __syncthreads();
  const int wg = threadIdx.x / 128;
  const uint32_t q = base, kv = base + 72 * 1024;
  float s[32] = {}, o[128] = {};
  uint32_t a[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
  asm volatile("" : "+r"(a[0]), "+r"(a[1]), "+r"(a[2]), "+r"(a[3]));
  const uint64_t qd = sw128_desc(q, 16, 1024), kd = sw128_desc(kv, 16, 1024),
                 vd = sw128_desc(kv + wg * 32768, 8192, 1024);
  const long long t0 = clock64();
  if (wg == 0)
    run<S0, PV0>(qd, kd, vd, s, o, a);
  else
    run<S1, PV1>(qd, kd, vd, s, o, a);
  const long long t1 = clock64();
  float acc = 0;
  for (int i = 0; i < 32; ++i) acc += s[i];
  for (int i = 0; i < 128; ++i) acc += o[i];
  sink[blockIdx.x * 256 + threadIdx.x] = acc;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

using Kernel = void (*)(long long*, float*);
template <int S0, int PV0, int S1, int PV1>
void measure(const char* name, int sms, long long* cyc, float* sink) {
  Kernel k = rate<S0, PV0, S1, PV1>;
  cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 210 * 1024);
  const double macs = kTiles * ((S0 + S1) * 64.0 * 64 * 576 + (PV0 + PV1) * 64.0 * 256 * 16);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int rep = 0; rep < 3; ++rep) {
    cudaEventRecord(e0);
    k<<<sms, 256, 210 * 1024>>>(cyc, sink);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    std::vector<long long> c(sms);
    cudaMemcpy(c.data(), cyc, sms * sizeof(long long), cudaMemcpyDeviceToHost);
    double avg = 0;
    for (int i = 0; i < sms; ++i) avg += c[i];
    avg /= sms;
    if (rep == 2)
      printf("%-44s %7.1f MAC/clk/SM %6.1f TFLOP/s %.1f MHz (%s)\n", name, macs / avg,
             2 * macs * sms / (ms * 1e-3) / 1e12, avg / (ms * 1e3), cudaGetErrorString(cudaGetLastError()));
  }
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  long long* cyc;
  float* sink;
  cudaMalloc(&cyc, sms * sizeof(long long));
  cudaMalloc(&sink, sms * 256 * 4);
  measure<1, 0, 0, 0>("S (n64 ss), warpgroup 0 alone", sms, cyc, sink);
  measure<1, 0, 1, 0>("S (n64 ss), both warpgroups", sms, cyc, sink);
  measure<0, 4, 0, 0>("P . V half (n256 rs), warpgroup 0 alone", sms, cyc, sink);
  measure<0, 4, 0, 4>("P . V halves, both warpgroups", sms, cyc, sink);
  measure<1, 4, 0, 4>("kept kernel: S + P . V half | P . V half", sms, cyc, sink);
  measure<1, 8, 1, 8>("seesaw: S + two P . V halves on each", sms, cyc, sink);
}
