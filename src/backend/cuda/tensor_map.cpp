#include "backend/cuda/tensor_map.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {
namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encoder() {
  static EncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || !p) fail("the CUDA driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<EncodeTiled>(p);
  }();
  return fn;
}

// A row-major byte matrix [rows, cols] in boxes of box_rows x box_cols.
CUtensorMap byte_tensor_map(const void* base, int64_t rows, int64_t cols, int box_cols, int box_rows,
                            CUtensorMapSwizzle swizzle) {
  if (reinterpret_cast<uintptr_t>(base) % 16 || cols % 16 || rows < 1 || box_rows < 1 || box_rows > 256 ||
      box_cols % 16 || box_cols < 16 || box_cols > 256)
    fail("TMA descriptor: ", rows, " x ", cols, " bytes at ", base, " in boxes of ", box_rows, " x ", box_cols);
  CUtensorMap map{};
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols)};  // bytes between rows
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
                               elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) fail("cuTensorMapEncodeTiled failed (", static_cast<int>(r), ") for ", rows, " x ", cols);
  return map;
}

}  // namespace

CUtensorMap make_fp8_tensor_map(const void* base, int64_t rows, int64_t cols, int box_rows) {
  return byte_tensor_map(base, rows, cols, kTmaBoxCols, box_rows, CU_TENSOR_MAP_SWIZZLE_128B);
}

CUtensorMap make_plain_tensor_map(const void* base, int64_t rows, int64_t cols, int box_cols, int box_rows) {
  return byte_tensor_map(base, rows, cols, box_cols, box_rows, CU_TENSOR_MAP_SWIZZLE_NONE);
}

}  // namespace dsinfer::cuda
