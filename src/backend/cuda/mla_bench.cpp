#include "backend/cuda/mla_bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "backend/copy_bandwidth.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "backend/cuda/gpu_busy.h"
#include "core/latent_fp8.h"

namespace dsinfer::cuda {
namespace {

Tensor device_tensor(Backend& be, std::vector<Buffer>& keep, DType dtype, Shape shape) {
  Tensor t{dtype, std::move(shape), nullptr, be.device()};
  keep.push_back(be.alloc(t.nbytes()));
  t.data = keep.back().data();
  return t;
}

// Random bf16 values in [-1, 1] (the cache pattern repeats per sequence: only the bytes matter).
std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) x = f32_to_bf16(dist(rng));
  return v;
}

// Median FLOP/s of cuBLASLt's bf16 8192^3 product on random operands (zeros run faster).
double bf16_peak(Backend& be, std::vector<Buffer>& keep, cudaStream_t s) {
  const int64_t n = 8192;
  Tensor a = device_tensor(be, keep, DType::BF16, {n, n}), b = device_tensor(be, keep, DType::BF16, {n, n});
  Tensor c = device_tensor(be, keep, DType::BF16, {n, n});
  const std::vector<uint16_t> values = random_bf16(static_cast<size_t>(n * n), 4);
  be.copy_to_device(values.data(), a);
  be.copy_to_device(values.data(), b);
  CublasLtGemm gemm(s);
  auto product = [&] { gemm.matmul(a.ptr<__nv_bfloat16>(), b.ptr<__nv_bfloat16>(), c.data, DType::BF16, n, n, n); };
  for (int i = 0; i < 3; ++i) product();
  EventTimer ev;
  std::vector<double> times;
  for (int i = 0; i < 10; ++i) times.push_back(ev.seconds(s, product));
  std::sort(times.begin(), times.end());
  for (int i = 0; i < 3; ++i) keep.pop_back();
  return 2.0 * static_cast<double>(n * n * n) / times[times.size() / 2];
}

// Every sequence at position context - 1 with its blocks scattered over the cache.
ForwardBatch decode_batch(const MlaBenchOptions& o) {
  const int per_seq = (o.context + o.block_size - 1) / o.block_size;
  std::vector<int> blocks(static_cast<size_t>(per_seq) * o.batch);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
  ForwardBatch b;
  b.block_size = o.block_size;
  for (int s = 0; s < o.batch; ++s) {
    SeqSlice q;
    q.query_start = s;
    q.query_len = 1;
    q.context_len = o.context;
    q.block_table.assign(blocks.begin() + static_cast<int64_t>(s) * per_seq, blocks.begin() + (s + 1) * per_seq);
    const int pos = o.context - 1;
    b.tokens.push_back(1);
    b.positions.push_back(pos);
    b.slots.push_back(q.block_table[pos / o.block_size] * o.block_size + pos % o.block_size);
    b.seqs.push_back(std::move(q));
  }
  return b;
}

}  // namespace

MlaBenchResult bench_mla_decode(const MlaBenchOptions& o) {
  if (o.batch < 1 || o.context < 1 || o.heads < 1 || o.block_size < 1 || o.repeats < 1)
    fail("bench-mla: batch ", o.batch, ", context ", o.context, ", heads ", o.heads, ", block ", o.block_size,
         " and repeats ", o.repeats, " must be positive");
  CudaBackend be(o.device);
  std::vector<Buffer> keep;
  MlaBenchResult r;
  r.copy_bandwidth = measure_copy_bandwidth(be);
  r.bf16_peak = bf16_peak(be, keep, be.stream());

  const int width = o.lora + o.rope, per_seq = (o.context + o.block_size - 1) / o.block_size;
  const int64_t slots = static_cast<int64_t>(per_seq) * o.batch * o.block_size, seq_slots = slots / o.batch;
  const LatentFp8Layout l = latent_fp8_layout(o.lora, o.rope);
  const int64_t row_bytes = o.fp8 ? l.row_bytes : 2 * width;
  Tensor cache = o.fp8 ? device_tensor(be, keep, DType::U8, {slots, row_bytes})
                       : device_tensor(be, keep, DType::BF16, {slots, width});
  {
    // One random pattern of `per_seq` blocks (rows of the cache's format), copied over the whole cache.
    const std::vector<uint16_t> values = random_bf16(static_cast<size_t>(seq_slots) * width, 1);
    std::vector<uint8_t> pattern(static_cast<size_t>(seq_slots * row_bytes));
    if (o.fp8) {
      std::vector<float> row(width);
      for (int64_t r = 0; r < seq_slots; ++r) {
        for (int c = 0; c < width; ++c) row[c] = bf16_to_f32(values[r * width + c]);
        quantize_latent_row(l, row.data(), pattern.data() + r * row_bytes);
      }
    } else {
      std::memcpy(pattern.data(), values.data(), pattern.size());
    }
    for (int s = 0; s < o.batch; ++s) {
      Tensor part = cache;
      part.shape = {seq_slots, cache.shape[1]};
      part.data = static_cast<uint8_t*>(cache.data) + static_cast<int64_t>(s) * pattern.size();
      be.copy_to_device(pattern.data(), part);
    }
  }
  Tensor q_lat = device_tensor(be, keep, DType::BF16, {o.batch, o.heads, o.lora});
  Tensor q_rope = device_tensor(be, keep, DType::BF16, {o.batch, o.heads, o.rope});
  Tensor out = device_tensor(be, keep, DType::BF16, {o.batch, o.heads, o.lora});
  be.copy_to_device(random_bf16(q_lat.numel(), 2).data(), q_lat);
  be.copy_to_device(random_bf16(q_rope.numel(), 3).data(), q_rope);

  const ForwardBatch batch = decode_batch(o);
  be.begin_forward(batch);
  const float scale = 1.0f / std::sqrt(static_cast<float>(192));  // V3's qk head dim (nope 128 + rope 64)
  auto call = [&] { be.mla_attention(batch, q_lat, q_rope, cache, o.lora, scale, out); };
  for (int i = 0; i < o.warmup; ++i) call();
  be.synchronize();
  EventTimer ev;
  // Each call queued behind a 50 us busy kernel, so that it starts when its start event fires:
  // the copy rate it is compared with queues its copies back to back, so it pays no launch cost
  // either. The same calls from an idle GPU (ev.seconds waits for its work) are timed too: 0-5 us
  // more on an H100.
  std::vector<double> times, idle;
  for (int i = 0; i < o.repeats; ++i) {
    gpu_busy(be.stream(), 50e-6);
    times.push_back(ev.seconds(be.stream(), call));
    idle.push_back(ev.seconds(be.stream(), call));
  }
  std::sort(times.begin(), times.end());
  std::sort(idle.begin(), idle.end());
  r.median_s = times[times.size() / 2];
  r.min_s = times.front();
  r.median_idle_s = idle[idle.size() / 2];
  r.bytes = static_cast<double>(o.batch) * o.context * row_bytes + static_cast<double>(q_lat.nbytes()) +
            static_cast<double>(q_rope.nbytes()) + static_cast<double>(out.nbytes());
  r.flops = 2.0 * o.batch * o.heads * static_cast<double>(o.context) * (width + o.lora);
  return r;
}

}  // namespace dsinfer::cuda
