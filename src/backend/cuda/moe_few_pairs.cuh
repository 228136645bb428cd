// The pairs a few-token expert launch applies an expert's rows to at once (moe_few.cu,
// moe_few_mma.cu): `pairs` is the set of (token, choice) pairs that chose the expert, a bit each,
// taken T at a time (a token chooses an expert once, so more than T come only from repeated ids).
#pragma once

namespace dsinfer::cuda {

// The pairs of pass `pass`: set bits [pass * T, (pass + 1) * T) of `pairs`, lowest first;
// returns how many there are.
template <int T>
__device__ __forceinline__ int pass_pairs(unsigned pairs, int pass, int (&pr)[T]) {
  for (int i = 0; i < pass * T; ++i) pairs &= pairs - 1;
  int nt = 0;
#pragma unroll
  for (int t = 0; t < T; ++t) {
    pr[t] = __ffs(pairs) - 1;
    nt += pairs != 0;
    pairs &= pairs - 1;
  }
  return nt;
}

}  // namespace dsinfer::cuda
