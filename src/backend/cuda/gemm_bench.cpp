#include "backend/cuda/gemm_bench.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include "backend/copy_bandwidth.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "backend/cuda/gemm_fp8.h"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_gemm_fp8.h"
#include "backend/cuda/moe_kernels.h"
#include "core/dtype.h"

namespace dsinfer::cuda {
namespace {

// Operand sets rotate until they span this many bytes, so that no product finds its inputs in
// L2 (50 MB on H100, 60 MB on H200) from the product before.
constexpr size_t kRotationBytes = size_t{256} << 20;
constexpr int kMaxSets = 8;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(bytes, 256))); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T = void>
  T* get() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

// Fills `bytes` of device memory by repeating a host pattern (random data is only needed to keep
// the tensor cores' inputs realistic, not unique).
void fill(void* dst, size_t bytes, const std::vector<uint8_t>& pattern) {
  for (size_t at = 0; at < bytes; at += pattern.size())
    CUDA_CHECK(cudaMemcpy(static_cast<char*>(dst) + at, pattern.data(), std::min(pattern.size(), bytes - at),
                          cudaMemcpyHostToDevice));
}

// Fills `bytes` of device memory with a host pattern once and doubles it by device copies: fast
// for the gigabytes of the MoE benchmark's expert weights.
void fill_doubling(void* dst, size_t bytes, const std::vector<uint8_t>& pattern) {
  char* d = static_cast<char*>(dst);
  size_t done = std::min(pattern.size(), bytes);
  CUDA_CHECK(cudaMemcpy(d, pattern.data(), done, cudaMemcpyHostToDevice));
  for (; done < bytes; done *= 2)
    CUDA_CHECK(cudaMemcpy(d + done, d, std::min(done, bytes - done), cudaMemcpyDeviceToDevice));
}

std::vector<uint8_t> bf16_pattern(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint8_t> p(size_t{1} << 21);
  for (size_t i = 0; i < p.size(); i += 2) {
    const uint16_t v = f32_to_bf16(dist(rng));
    p[i] = static_cast<uint8_t>(v);
    p[i + 1] = static_cast<uint8_t>(v >> 8);
  }
  return p;
}

std::vector<uint8_t> fp8_pattern(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-448.0f, 448.0f);
  std::vector<uint8_t> p(size_t{1} << 20);
  for (uint8_t& b : p) b = f32_to_fp8e4m3(dist(rng));
  return p;
}

std::vector<uint8_t> f32_pattern(float v, size_t n) {
  std::vector<float> f(n, v);
  const auto* b = reinterpret_cast<const uint8_t*>(f.data());
  return std::vector<uint8_t>(b, b + n * sizeof(float));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class EventPair {
 public:
  // Milliseconds per call of `launch(i)` over `inner` calls, median of `repeats` samples,
  // after one untimed round to warm up (plans, clocks).
  double time_ms(cudaStream_t s, int repeats, int inner, const std::function<void(int)>& launch) {
    for (int i = 0; i < inner; ++i) launch(i);
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r)
      samples.push_back(timer_.seconds(s, [&] { for (int i = 0; i < inner; ++i) launch(i); }) * 1e3 / inner);
    return median(samples);
  }

 private:
  EventTimer timer_;
};

// The operands of every variant for one shape, `sets` times over.
struct ShapeData {
  ShapeData(const GemmShape& s, int sets) : shape(s), sets(sets) {
    const size_t xk = s.m * s.k, wk = s.n * s.k;
    x_bf16 = std::make_unique<DeviceBuffer>(xk * 2 * sets);
    w_bf16 = std::make_unique<DeviceBuffer>(wk * 2 * sets);
    x_fp8 = std::make_unique<DeviceBuffer>(xk * sets);
    w_fp8 = std::make_unique<DeviceBuffer>(wk * sets);
    w_scale_pitch = fp8_weight_scale_pitch(s.k);
    w_scales = std::make_unique<DeviceBuffer>(s.n / kFp8Block * w_scale_pitch * sizeof(float) * sets);
    x_scales = std::make_unique<DeviceBuffer>(s.k / kFp8Block * s.m * sizeof(float));
    unit = std::make_unique<DeviceBuffer>(sizeof(float));
    out = std::make_unique<DeviceBuffer>(s.m * s.n * 2);
    fill(x_bf16->get(), xk * 2 * sets, bf16_pattern(1));
    fill(w_bf16->get(), wk * 2 * sets, bf16_pattern(2));
    fill(x_fp8->get(), xk * sets, fp8_pattern(3));
    fill(w_fp8->get(), wk * sets, fp8_pattern(4));
    fill(w_scales->get(), s.n / kFp8Block * w_scale_pitch * sizeof(float) * sets, f32_pattern(1e-3f, 4096));
    fill(unit->get(), sizeof(float), f32_pattern(1.0f, 1));
  }
  const __nv_bfloat16* xb(int i) const { return x_bf16->get<__nv_bfloat16>() + (i % sets) * shape.m * shape.k; }
  const __nv_bfloat16* wb(int i) const { return w_bf16->get<__nv_bfloat16>() + (i % sets) * shape.n * shape.k; }
  uint8_t* x8(int i) const { return x_fp8->get<uint8_t>() + (i % sets) * shape.m * shape.k; }
  const uint8_t* w8(int i) const { return w_fp8->get<uint8_t>() + (i % sets) * shape.n * shape.k; }
  const float* ws(int i) const { return w_scales->get<float>() + (i % sets) * (shape.n / kFp8Block) * w_scale_pitch; }

  GemmShape shape;
  int sets;
  int64_t w_scale_pitch;
  std::unique_ptr<DeviceBuffer> x_bf16, w_bf16, x_fp8, w_fp8, w_scales, x_scales, unit, out;
};

// Whether a shape's row also times the skinny FP8 kernel (1-4 tokens, K and N whole blocks of 128),
// instead of the per-tensor FP8 ceiling, which belongs to large products.
bool skinny_shape(const GemmShape& s) { return s.m <= kSkinnyMaxRows && s.n % kFp8Block == 0 && s.k % kFp8Block == 0; }

// Sets of operands that span kRotationBytes: of the bf16 variant's inputs (the largest), or for a
// skinny shape of its e4m3 weights, what the skinny kernel reads (up to kMaxSkinnySets: small
// products would otherwise fit the L2 in 8 sets).
constexpr int kMaxSkinnySets = 64;
int rotation_sets(const GemmShape& s) {
  const bool skinny = skinny_shape(s);
  const size_t bytes = skinny ? s.n * s.k : (s.m * s.k + s.n * s.k) * 2;
  return static_cast<int>(
      std::clamp<size_t>((kRotationBytes + bytes - 1) / bytes, 1, skinny ? kMaxSkinnySets : kMaxSets));
}

// A device weight of `rows` x `cols` e4m3 values with 128 x 128 block scales, `scale_cols` floats a
// row of blocks (a padded pitch or cols / 128).
Weight block_fp8_weight(const void* values, const float* scales, int64_t rows, int64_t cols, int64_t scale_cols,
                        Device dev) {
  Weight w;
  w.w = Tensor{DType::F8_E4M3, {rows, cols}, const_cast<void*>(values), dev};
  w.scale = Tensor{DType::F32, {rows / kFp8Block, scale_cols}, const_cast<float*>(scales), dev};
  w.block_rows = w.block_cols = kFp8Block;
  return w;
}

double tflops(const GemmShape& s, double ms) { return 2.0 * s.m * s.n * s.k / (ms * 1e-3) / 1e12; }

// DeepSeek-V3's MoE layer on one GPU: every expert has weights of its own (11 GB of e4m3 at
// V3's shapes, so no launch finds them in L2) and every token picks top_k distinct experts at
// random. Times the two grouped FP8 GEMM launches alone and the backend's whole moe_experts.
class MoeBench {
 public:
  MoeBench(const MoeBenchShape& s, int device, int repeats, EventPair& events)
      : s_(s), device_(device), repeats_(repeats), events_(events), backend_(device), stream_(backend_.stream()) {
    const int64_t mat = s.inter * s.hidden, mat_scales = mat / (kFp8Block * kFp8Block);
    values_ = std::make_unique<DeviceBuffer>(3 * mat * s.experts);
    scales_ = std::make_unique<DeviceBuffer>(3 * mat_scales * s.experts * sizeof(float));
    fill_doubling(values_->get(), 3 * mat * s.experts, fp8_pattern(4));
    fill_doubling(scales_->get(), 3 * mat_scales * s.experts * sizeof(float), f32_pattern(1e-3f, 4096));
    const Device dev{DeviceKind::CUDA, device};
    auto weight = [&](int64_t i, int64_t rows, int64_t cols) {
      return block_fp8_weight(values_->get<uint8_t>() + i * mat, scales_->get<float>() + i * mat_scales, rows, cols,
                              cols / kFp8Block, dev);
    };
    for (int e = 0; e < s.experts; ++e)
      experts_.push_back({weight(3 * e, s.inter, s.hidden), weight(3 * e + 1, s.inter, s.hidden),
                          weight(3 * e + 2, s.hidden, s.inter)});
    route();
  }

  MoeBenchRow run() {
    MoeBenchRow r{s_, kNaN, kNaN, kNaN, "", active_experts_, measure_copy_bandwidth(backend_)};
    const bool grouped_fp8 = moe_fp8_gemm_device(device_) && fp8_block_scaling_enabled(device_);
    r.experts_path = grouped_fp8 ? "grouped FP8 GEMM" : "per-expert cuBLASLt bf16 on dequantized weights";
    const Device dev{DeviceKind::CUDA, device_};
    const int64_t t = s_.tokens, k = s_.top_k;
    Tensor x{DType::BF16, {t, s_.hidden}, x_->get(), dev}, ids{DType::I32, {t, k}, ids_->get(), dev},
        w{DType::F32, {t, k}, weights_->get(), dev}, out{DType::BF16, {t, s_.hidden}, out_->get(), dev};
    r.experts_ms = time(2, [&](int) { backend_.moe_experts(x, ids, w, experts_, out); });
    if (moe_fp8_gemm_device(device_)) time_gemms(r);
    return r;
  }

 private:
  // Random distinct experts per token, their weights, and the input rows.
  void route() {
    const int64_t pairs = static_cast<int64_t>(s_.tokens) * s_.top_k;
    std::mt19937 rng(11);
    std::vector<int> ids, pick(s_.experts);
    for (int t = 0; t < s_.tokens; ++t) {
      std::iota(pick.begin(), pick.end(), 0);
      for (int j = 0; j < s_.top_k; ++j) std::swap(pick[j], pick[j + rng() % (s_.experts - j)]);
      ids.insert(ids.end(), pick.begin(), pick.begin() + s_.top_k);
    }
    std::vector<char> active(s_.experts, 0);
    for (int id : ids) active[id] = 1;
    active_experts_ = static_cast<int>(std::count(active.begin(), active.end(), 1));
    ids_ = std::make_unique<DeviceBuffer>(pairs * sizeof(int));
    CUDA_CHECK(cudaMemcpy(ids_->get(), ids.data(), pairs * sizeof(int), cudaMemcpyHostToDevice));
    weights_ = std::make_unique<DeviceBuffer>(pairs * sizeof(float));
    fill(weights_->get(), pairs * sizeof(float), f32_pattern(1.0f / s_.top_k, pairs));
    x_ = std::make_unique<DeviceBuffer>(s_.tokens * s_.hidden * 2);
    fill_doubling(x_->get(), s_.tokens * s_.hidden * 2, bf16_pattern(1));
    out_ = std::make_unique<DeviceBuffer>(s_.tokens * s_.hidden * 2);
  }

  // The two grouped launches on rows permuted, gathered and quantized once beforehand.
  void time_gemms(MoeBenchRow& r) {
    const int n = s_.tokens * s_.top_k, e = s_.experts, slots = moe_fp8_tile_slots(n, e);
    DeviceBuffer perm_ints((3 * (e + 1) + 2 * static_cast<size_t>(n)) * sizeof(int)), tiles(slots * sizeof(int4));
    MoePermutation perm;
    perm.offsets = perm_ints.get<int>();
    perm.active = perm.offsets + e + 1;
    perm.active_count = perm.active + e + 1;
    perm.order = perm.active_count + e + 1;
    perm.inverse = perm.order + n;
    DeviceBuffer xq(n * s_.hidden), xs(n * s_.hidden / kFp8Block * sizeof(float));
    DeviceBuffer act(n * s_.inter * 2), aq(n * s_.inter), as(n * s_.inter / kFp8Block * sizeof(float));
    DeviceBuffer y(n * s_.hidden * sizeof(__nv_bfloat16));
    std::vector<ExpertPtrs> ptrs;
    std::vector<Fp8ExpertMaps> maps;
    for (const ExpertWeights& x : experts_) {
      ptrs.push_back({x.gate.w.data, x.up.w.data, x.down.w.data, x.gate.scale.ptr<float>(), x.up.scale.ptr<float>(),
                      x.down.scale.ptr<float>()});
      maps.push_back(fp8_expert_maps(ptrs.back(), s_.hidden, s_.inter));
    }
    DeviceBuffer d_ptrs(ptrs.size() * sizeof(ExpertPtrs)), d_maps(maps.size() * sizeof(Fp8ExpertMaps));
    CUDA_CHECK(cudaMemcpy(d_ptrs.get(), ptrs.data(), ptrs.size() * sizeof(ExpertPtrs), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_maps.get(), maps.data(), maps.size() * sizeof(Fp8ExpertMaps), cudaMemcpyHostToDevice));
    GroupedExperts ex;
    ex.table = d_ptrs.get<ExpertPtrs>();
    ex.experts = e;
    ex.hidden = s_.hidden;
    ex.inter = s_.inter;
    ex.dtype = DType::F8_E4M3;
    ex.block_rows = ex.block_cols = kFp8Block;
    ex.gate_up_scale_cols = s_.hidden / kFp8Block;
    ex.down_scale_cols = s_.inter / kFp8Block;
    const auto* m = d_maps.get<Fp8ExpertMaps>();

    launch_moe_permute(ids_->get<int>(), s_.tokens, s_.top_k, e, perm, stream_);
    launch_moe_fp8_tiles(perm.offsets, e, tiles.get<int4>(), slots, stream_);
    launch_gather_quantize_fp8_act(x_->get<__nv_bfloat16>(), perm.order, perm.offsets + e, n, s_.hidden,
                                   xq.get<uint8_t>(), xs.get<float>(), stream_);
    const MoeFp8Rows x_rows{xq.get<uint8_t>(), xs.get<float>(), n, tiles.get<int4>(), slots};
    const MoeFp8Rows a_rows{aq.get<uint8_t>(), as.get<float>(), n, tiles.get<int4>(), slots};
    r.gate_up_ms = time(5, [&](int) { launch_moe_fp8_gate_up(ex, m, x_rows, act.get<__nv_bfloat16>(), stream_); });
    launch_quantize_fp8_act(act.get<__nv_bfloat16>(), n, n, s_.inter, aq.get<uint8_t>(), as.get<float>(), stream_);
    r.down_ms = time(5, [&](int) { launch_moe_fp8_down(ex, m, a_rows, y.get<__nv_bfloat16>(), stream_); });
  }

  double time(int inner, const std::function<void(int)>& launch) {
    const double ms = events_.time_ms(stream_, repeats_, inner, launch);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return ms;
  }

  MoeBenchShape s_;
  int device_, repeats_;
  int active_experts_ = 0;
  EventPair& events_;
  CudaBackend backend_;
  cudaStream_t stream_;
  std::unique_ptr<DeviceBuffer> values_, scales_, ids_, weights_, x_, out_;
  std::vector<ExpertWeights> experts_;
};

static_assert(kSkinnyMaxRows == kGemvFp8MaxRows);

// Skinny products through the backend's own linear (the dispatch a decode step takes), on the
// rotating operands of one shape.
class SkinnyBench {
 public:
  SkinnyBench(int device, int repeats, int inner, EventPair& events)
      : backend_(device), repeats_(repeats), inner_(inner), events_(events) {
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
  }

  double copy_bandwidth() { return measure_copy_bandwidth(backend_); }

  SkinnyBenchRow run(const ShapeData& d) {
    const GemmShape& s = d.shape;
    const double scales = static_cast<double>(s.n / kFp8Block) * (s.k / kFp8Block) * sizeof(float);
    SkinnyBenchRow r{s, kNaN, static_cast<double>(s.n) * s.k + scales + 2.0 * s.m * (s.k + s.n), {}};
    // Every set's views made before timing: the loop times only the launches, as a decode step's.
    const Device dev = backend_.device();
    std::vector<Weight> w;
    std::vector<Tensor> x;
    for (int i = 0; i < d.sets; ++i) {
      w.push_back(block_fp8_weight(d.w8(i), d.ws(i), s.n, s.k, d.w_scale_pitch, dev));
      x.push_back(Tensor{DType::BF16, {s.m, s.k}, const_cast<__nv_bfloat16*>(d.xb(i)), dev});
    }
    const Tensor out{DType::BF16, {s.m, s.n}, d.out->get(), dev};
    if (!gemv_fp8_fits(s.m, s.k, d.xb(0), device_weight(w[0]))) return r;
    r.kernel = gemv_fp8_kernel_name(s.m, s.n, s.k, device_weight(w[0]), sm_count_);
    r.us = 1e3 * events_.time_ms(backend_.stream(), repeats_, inner_,
                                 [&](int i) { backend_.linear(x[i % d.sets], w[i % d.sets], nullptr, out); });
    CUDA_CHECK(cudaStreamSynchronize(backend_.stream()));
    return r;
  }

 private:
  CudaBackend backend_;
  int repeats_, inner_;
  EventPair& events_;
  int sm_count_ = 0;
};

class Bench {
 public:
  explicit Bench(const GemmBenchOptions& o) : o_(o) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
      cudaGetLastError();
      fail("bench-gemm needs a CUDA GPU, and none is usable here (",
           e == cudaSuccess ? "no device" : cudaGetErrorString(e), ")");
    }
    if (o.device < 0 || o.device >= count) fail("bench-gemm: CUDA device ", o.device, " requested but ", count, " present");
    CUDA_CHECK(cudaSetDevice(o.device));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
    name_ = prop.name;
    if (prop.major * 10 + prop.minor < 89)
      fail("bench-gemm: ", prop.name, " (compute capability ", prop.major, ".", prop.minor, ") has no FP8 tensor cores");
    block_ok_ = fp8_block_scaling_enabled(o.device);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    fp8_ = std::make_unique<Fp8Gemm>(stream_);
    bf16_ = std::make_unique<CublasLtGemm>(stream_);
    events_ = std::make_unique<EventPair>();
  }
  ~Bench() {
    skinny_.reset();
    events_.reset();
    fp8_.reset();
    bf16_.reset();
    if (stream_) cudaStreamDestroy(stream_);
  }

  GemmBenchResult run() {
    GemmBenchResult r;
    r.device = name_;
    const GemmShape peak{8192, 8192, 8192};
    r.peak = row(ShapeData(peak, rotation_sets(peak)), /*tensor_only=*/true);
    for (const GemmShape& s : o_.shapes) {
      if (s.m <= 0 || s.n <= 0 || s.k <= 0) fail("bench-gemm: shape M=", s.m, " N=", s.n, " K=", s.k);
      const ShapeData d(s, rotation_sets(s));
      if (skinny_shape(s)) {
        if (!skinny_) skinny_ = std::make_unique<SkinnyBench>(o_.device, o_.repeats, o_.inner, *events_);
        r.skinny.push_back(skinny_->run(d));
      }
      r.rows.push_back(row(d, false));
    }
    if (skinny_) r.copy_bandwidth = skinny_->copy_bandwidth();
    if (o_.moe) r.moe = MoeBench(o_.moe_shape, o_.device, o_.repeats, *events_).run();
    return r;
  }

 private:
  GemmBenchRow row(const ShapeData& d, bool tensor_only) {
    const GemmShape& s = d.shape;
    GemmBenchRow row{s, kNaN, kNaN, kNaN, kNaN};
    const float* unit = d.unit->get<float>();
    // The FP8 ceiling is a large product's; decode sizes are timed as bytes (skinny rows).
    if (!skinny_shape(s))
      row.tensor = tflops(s, time([&](int i) {
        fp8_->matmul(Fp8Scaling::Tensor, {d.w8(i), unit, d.x8(i), unit}, d.out->get(), DType::BF16, s.m, s.n, s.k,
                     true);
      }));
    if (tensor_only) return row;
    row.bf16 = tflops(s, time([&](int i) { bf16_->matmul(d.xb(i), d.wb(i), d.out->get(), DType::BF16, s.m, s.n, s.k); }));
    if (!block_ok_ || !fp8_block_shape_supported(s.n, s.k, kFp8Block, kFp8Block)) return row;
    auto ops = [&](int i) { return Fp8Operands{d.w8(i), d.ws(i), d.x8(i), d.x_scales->get<float>()}; };
    if (!fp8_->supported(Fp8Scaling::Block, ops(0), d.out->get(), DType::BF16, s.m, s.n, s.k)) return row;
    auto gemm = [&](int i) { fp8_->matmul(Fp8Scaling::Block, ops(i), d.out->get(), DType::BF16, s.m, s.n, s.k); };
    auto quantize = [&](int i) {
      launch_quantize_fp8_act(d.xb(i), s.m, s.m, s.k, d.x8(i), d.x_scales->get<float>(), stream_);
    };
    row.block_gemm = tflops(s, time(gemm));
    row.block = tflops(s, time([&](int i) {
      quantize(i);
      gemm(i);
    }));
    return row;
  }

  double time(const std::function<void(int)>& launch) {
    const double ms = events_->time_ms(stream_, o_.repeats, o_.inner, launch);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return ms;
  }

  GemmBenchOptions o_;
  std::string name_;
  bool block_ok_ = false;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Fp8Gemm> fp8_;
  std::unique_ptr<CublasLtGemm> bf16_;
  std::unique_ptr<EventPair> events_;  // made once the device is known to exist
  std::unique_ptr<SkinnyBench> skinny_;  // made for the first skinny shape
};

}  // namespace

double MoeBenchRow::gate_up_tflops() const {
  return 2.0 * shape.tokens * shape.top_k * 2 * shape.inter * shape.hidden / (gate_up_ms * 1e-3) / 1e12;
}
double MoeBenchRow::down_tflops() const {
  return 2.0 * shape.tokens * shape.top_k * shape.hidden * shape.inter / (down_ms * 1e-3) / 1e12;
}
double MoeBenchRow::gemm_tflops() const {
  return 2.0 * shape.tokens * shape.top_k * 3 * shape.inter * shape.hidden / ((gate_up_ms + down_ms) * 1e-3) / 1e12;
}

GemmBenchResult bench_fp8_gemm(const GemmBenchOptions& options) {
  if (options.repeats < 1 || options.inner < 1) fail("bench-gemm: repeats and inner must be positive");
  Bench bench(options);
  return bench.run();
}

}  // namespace dsinfer::cuda
