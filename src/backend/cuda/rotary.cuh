// Rotary embedding of one pair of a head's dims, and the angles' table, shared by the rope
// kernels (norm_rope.cu), the decode attention that rotates q and k itself (attention.cu) and
// MLA's rope-and-cache work wherever it runs (mla_rope_cache.cuh).
#pragma once
#include <cuda_bf16.h>

#include "backend/cuda/device_common.cuh"

namespace dsinfer::cuda {

// cs = [half cos | half sin] of position pos, times attention_factor, as transformers computes
// them (angle = float(pos) * inv_freq in float32), filled by the calling block's threads; a
// barrier must come before any thread reads another's entries.
__device__ __forceinline__ void rope_table(float* cs, int half, float pos, const float* inv_freq,
                                           float attention_factor) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * inv_freq[i];
    cs[i] = cosf(ang) * attention_factor;
    cs[half + i] = sinf(ang) * attention_factor;
  }
}

// Pair i of a head's rotated dims: in[a], in[b] -> out[a], out[b] (out may be in), by the angle
// of cosine c and sine s.
__device__ __forceinline__ void rotate_pair(const bf16* in, bf16* out, int i, int half, float c, float s, bool neox) {
  const int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
  const float x1 = __bfloat162float(in[ia]), x2 = __bfloat162float(in[ib]);
  out[ia] = __float2bfloat16(x1 * c - x2 * s);
  out[ib] = __float2bfloat16(x2 * c + x1 * s);
}

// The same with cs = [half cos | half sin] of the token's position.
__device__ __forceinline__ void rotate_pair(const bf16* in, bf16* out, int i, int half, const float* cs, bool neox) {
  rotate_pair(in, out, i, half, cs[i], cs[half + i], neox);
}

// Pair i of a rotated head, its cos and sin computed here as rope_table computes them: for a
// kernel whose threads each rotate one pair, where a shared table costs a barrier.
__device__ __forceinline__ void rotate_pair_at(const bf16* in, bf16* out, int i, int half, float pos,
                                               const float* inv_freq, float attention_factor, bool neox) {
  const float ang = pos * inv_freq[i];
  rotate_pair(in, out, i, half, cosf(ang) * attention_factor, sinf(ang) * attention_factor, neox);
}

}  // namespace dsinfer::cuda
