// Argument checks of the CUDA ops: a wrong dtype, device or shape throws a message naming the op,
// instead of a kernel reading memory it should not.
#pragma once
#include "core/error.h"
#include "core/tensor.h"

namespace dsinfer::cuda {

inline void expect(const Tensor& t, DType dtype, const char* op, const char* what) {
  if (t.device.kind != DeviceKind::CUDA) fail(op, ": ", what, " is on ", device_name(t.device), ", not a GPU");
  if (t.dtype != dtype) fail(op, ": ", what, " is ", dtype_name(t.dtype), ", expected ", dtype_name(dtype));
}

inline void expect_shape(const Tensor& t, const Shape& shape, const char* op, const char* what) {
  if (t.shape != shape) fail(op, ": ", what, " has shape ", shape_str(t.shape), ", expected ", shape_str(shape));
}

}  // namespace dsinfer::cuda
