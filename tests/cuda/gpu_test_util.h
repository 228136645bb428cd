// Helpers of the GPU tests: skipping without a device, the same random data on the CPU reference
// (float32) and the GPU (bf16), and comparisons relative to the reference's largest magnitude.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/error.h"

namespace dsinfer::testing {

inline bool cuda_device_present() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU() \
  if (!::dsinfer::testing::cuda_device_present()) GTEST_SKIP() << "no CUDA device"

// Random values in [-scale, scale], rounded to bf16 so that both backends see identical inputs.
inline std::vector<float> random_values(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(dist(rng)));
  return v;
}

// Rope's inverse frequencies for d rotated dims (base 10000).
inline std::vector<float> rope_frequencies(int d) {
  std::vector<float> inv(d / 2);
  for (int i = 0; i < d / 2; ++i) inv[i] = std::pow(10000.0f, -2.0f * i / d);
  return inv;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}

// A CPU backend (the reference) and a GPU backend, with storage for the tensors of one test.
struct GpuTest {
  std::unique_ptr<Backend> cpu = make_cpu_backend();
  std::unique_ptr<Backend> gpu = make_backend(Device{DeviceKind::CUDA, 0});
  std::vector<Buffer> keep;

  Tensor gpu_tensor(DType dtype, Shape shape) {
    Tensor t{dtype, std::move(shape), nullptr, gpu->device()};
    keep.push_back(gpu->alloc(t.nbytes()));
    t.data = keep.back().data();
    return t;
  }
  // The values as a bf16 (or f32 / i32 raw) device tensor.
  Tensor gpu_bf16(const std::vector<float>& v, Shape shape) {
    Tensor t = gpu_tensor(DType::BF16, std::move(shape));
    std::vector<uint16_t> b = to_bf16(v);
    gpu->copy_to_device(b.data(), t);
    return t;
  }
  Tensor gpu_f32(const std::vector<float>& v, Shape shape) {
    Tensor t = gpu_tensor(DType::F32, std::move(shape));
    gpu->copy_to_device(v.data(), t);
    return t;
  }
  Tensor gpu_i32(const std::vector<int>& v, Shape shape) {
    Tensor t = gpu_tensor(DType::I32, std::move(shape));
    gpu->copy_to_device(v.data(), t);
    return t;
  }
  // The tensor's values as float32 on the host.
  std::vector<float> read(const Tensor& t) {
    std::vector<float> out(t.numel());
    if (t.dtype == DType::F32) {
      gpu->copy_to_host(t, out.data());
    } else {
      std::vector<uint16_t> b(t.numel());
      gpu->copy_to_host(t, b.data());
      for (size_t i = 0; i < b.size(); ++i) out[i] = bf16_to_f32(b[i]);
    }
    return out;
  }
};

// A host float32 view (for the CPU backend) of a vector.
inline Tensor host_view(std::vector<float>& v, Shape shape) { return Tensor{DType::F32, std::move(shape), v.data(), {}}; }
inline Tensor host_view(std::vector<int>& v, Shape shape) { return Tensor{DType::I32, std::move(shape), v.data(), {}}; }

// A host weight in `dtype` (BF16, F16 or F32) holding the values.
struct HostWeight {
  std::vector<uint16_t> half;
  std::vector<float> full;
  Weight weight;

  HostWeight(const std::vector<float>& v, Shape shape, DType dtype) {
    weight.w = Tensor{dtype, std::move(shape), nullptr, {}};
    if (dtype == DType::F32) {
      full = v;
      weight.w.data = full.data();
    } else {
      half.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) half[i] = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      weight.w.data = half.data();
    }
  }
};

// max |got - want| <= tol * max |want|, and nothing is NaN.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float max_ref = 0.0f, max_err = 0.0f;
  size_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << what << ": NaN at " << i;
    max_ref = std::max(max_ref, std::fabs(want[i]));
    const float err = std::fabs(got[i] - want[i]);
    if (err > max_err) {
      max_err = err;
      worst = i;
    }
  }
  EXPECT_LE(max_err, tol * max_ref) << what << ": max |diff| " << max_err << " at " << worst << " (got " << got[worst]
                                    << ", want " << want[worst] << "), max |ref| " << max_ref;
}

// Device-to-device copy bandwidth (bytes read + written per second) of a 2 GiB cudaMemcpy.
inline double copy_bandwidth(GpuTest& g) {
  const size_t bytes = size_t{2} << 30;
  Tensor a = g.gpu_tensor(DType::U8, {static_cast<int64_t>(bytes)}), b = g.gpu_tensor(DType::U8, {static_cast<int64_t>(bytes)});
  g.gpu->fill_zero(a);
  g.gpu->synchronize();
  EXPECT_EQ(cudaMemcpy(b.data, a.data, bytes, cudaMemcpyDeviceToDevice), cudaSuccess);
  const int reps = 10;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) cudaMemcpyAsync(b.data, a.data, bytes, cudaMemcpyDeviceToDevice);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return 2.0 * bytes * reps / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace dsinfer::testing
