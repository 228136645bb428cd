// Host-side TMA descriptors (CUtensorMap) for the FP8 grouped GEMM: a row-major e4m3 matrix
// [rows, cols] read in boxes of box_rows x 128 bytes, 128B-swizzled as the wgmma descriptors
// expect. The driver's encoder is reached through the runtime (cudaGetDriverEntryPointByVersion),
// so nothing links against libcuda.
#pragma once
#include <cuda.h>

#include <cstdint>

namespace dsinfer::cuda {

// Bytes of K per box row: one 128-byte swizzle row, a whole 128-deep FP8 K block.
constexpr int kTmaBoxCols = 128;

// Throws unless `base` is 16-byte aligned and cols a multiple of 16 (TMA's rules). Rows of a box
// past `rows` read as zeros.
CUtensorMap make_fp8_tensor_map(const void* base, int64_t rows, int64_t cols, int box_rows);

// The same for boxes of box_rows x box_cols bytes (box_cols a multiple of 16, at most 256),
// copied as they are (no swizzle), e.g. the float scales of FP8 rows.
CUtensorMap make_plain_tensor_map(const void* base, int64_t rows, int64_t cols, int box_cols, int box_rows);

}  // namespace dsinfer::cuda
