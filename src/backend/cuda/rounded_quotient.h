// v / scale as IEEE division rounds it, from one reciprocal of scale shared by many v. A float
// division compiles to a reciprocal, a check (FCHK) and a branch to a slow path, about ten
// instructions; quantizing a group of 128 activations divided each value by the group's scale, and
// at 1-4 tokens those divisions were about half of the FP8 skinny kernel's instructions a step.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace dsinfer::cuda {

// Markstein: with inv = RN(1 / scale) and q = RN(v inv), the residual r = v - q scale is exact by
// FMA and RN(q + r inv) is the correctly rounded quotient, barring over- and underflow of the
// residual. Callers quantize to e4m3 (|v / scale| <= 448; quotients below 2^-11 are e4m3's zero
// either way): for scales in [2^-80, 2^100] every quotient of 2^-11 or more has a residual far
// above f32's underflow. Other scales divide. A CPU test holds the quotient to the division over
// every 13th bf16 value up to each bf16 group maximum, against that maximum's scale.
__host__ __device__ inline bool reciprocal_quotient_exact(float scale) {
  return scale >= 0x1p-80f && scale <= 0x1p100f;
}

// The sign is restored last: for v = -0 (or a negative v whose quotient underflows) the sums give
// +0 where the division gives -0, and e4m3 keeps the sign.
__host__ __device__ inline float reciprocal_quotient(float v, float scale, float inv) {
  const float q = v * inv;
  return copysignf(fmaf(fmaf(-q, scale, v), inv, q), v);
}

}  // namespace dsinfer::cuda
