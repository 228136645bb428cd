// The CPU backend: a readable float32 reference of every op, multithreaded with OpenMP.
// Weights stay in their stored dtype (often a view into the mmap) and are converted row by row.
#pragma once
#include <memory>

#include "backend/backend.h"
#include "backend/cpu/host_group.h"

namespace dsinfer {

class CpuBackend : public Backend {
 public:
  CpuBackend() = default;
  // Rank `rank` of a tensor-parallel group (make_cpu_backend_group), its ops on `threads` threads.
  CpuBackend(std::shared_ptr<HostGroup> group, int rank, int threads)
      : group_(std::move(group)), rank_(rank), threads_(threads) {}
  Device device() const override { return Device{}; }
  std::string name() const override { return "cpu"; }
  DType act_dtype() const override { return DType::F32; }

  Buffer alloc(size_t bytes) override { return host_alloc(bytes); }
  void copy_to_device(const void* host, Tensor dst) override;
  void copy_to_host(const Tensor& src, void* host) override;
  void fill_zero(Tensor t) override;
  Weight upload_weight(const Weight& host, std::vector<Buffer>& keep) override;
  void begin_forward(const ForwardBatch&) override;
  void synchronize() override {}
  MemoryInfo memory_info() const override;

  void embedding(const ForwardBatch& batch, const Weight& table, int64_t first_id, Tensor out) override;
  void rmsnorm(const Tensor& x, const Weight& w, float eps, Tensor out) override;
  void add(Tensor x, const Tensor& y) override;
  void add_rmsnorm(Tensor x, const Tensor& y, const Weight& w, float eps, Tensor out) override;
  void linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) override;
  void silu_mul(const Tensor& gate, const Tensor& up, Tensor out) override;
  void rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) override;
  void cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) override;
  void mla_rope_and_cache(const ForwardBatch& batch, const Tensor& q, const Tensor& kv, const Weight& kv_norm, float eps,
                          const RopeParams& p, Tensor q_nope, Tensor q_rope, Tensor cache) override;
  void attention(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads, int head_dim,
                 int v_head_dim, float scale, Tensor out) override;
  void mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope, const Tensor& latent_cache,
                     int kv_lora_rank, float scale, Tensor out_lat) override;
  void head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) override;
  void moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) override;
  void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const std::vector<ExpertWeights>& experts,
                   Tensor out) override;
  void moe_local_ids(Tensor ids, int first, int count) override;
  void argmax_rows(const Tensor& logits, Tensor ids) override;
  void gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) override;
  void copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) override;
  void gather_context(const ForwardBatch& batch, const Tensor& cache, Tensor out) override;
  void dequantize_latent(const Tensor& rows, int kv_lora_rank, Tensor out) override;
  void all_reduce_sum(Tensor x) override;
  void all_gather(const Tensor& part, Tensor gathered) override;
  void abort_group() override;

 private:
  std::shared_ptr<HostGroup> group_;  // null outside a group
  int rank_ = 0;
  int threads_ = 0;  // a group's rank: its share of the threads (0: OpenMP's default)
};

// Work (multiply-adds) below which an op runs on one thread: waking the pool costs more.
constexpr int64_t kParallelWork = int64_t{1} << 15;

// Dot product with eight independent partial sums, so the compiler vectorizes it.
inline float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Slot in the paged cache of position `pos` of a sequence.
inline int cache_slot(const SeqSlice& s, int pos, int block_size) {
  return s.block_table[pos / block_size] * block_size + pos % block_size;
}

}  // namespace dsinfer
