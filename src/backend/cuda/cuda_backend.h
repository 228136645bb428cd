// CudaBackend: the op interface on one NVIDIA GPU. Activations and the KV cache are bf16 with
// float32 accumulation everywhere; weights stay in their stored dtype on the device (bf16 goes
// straight to cuBLASLt, other dtypes are converted to bf16 in a workspace first). All work is
// queued on one stream; copy_to_host and synchronize wait for it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/device_batch.h"
#include "backend/cuda/device_scratch.h"
#include "backend/cuda/expert_table.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "backend/cuda/gemm_fp8.h"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/nccl_comm.h"
#include "backend/cuda/pinned_buffer.h"

namespace dsinfer::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;

  Device device() const override { return Device{DeviceKind::CUDA, device_index_}; }
  std::string name() const override;
  // The stream every op is queued on (benchmarks time it with CUDA events).
  cudaStream_t stream() const { return stream_; }
  DType act_dtype() const override { return DType::BF16; }

  Buffer alloc(size_t bytes) override;
  void copy_to_device(const void* host, Tensor dst) override;
  void copy_to_host(const Tensor& src, void* host) override;
  void fill_zero(Tensor t) override;
  Weight upload_weight(const Weight& host, std::vector<Buffer>& keep) override;
  std::vector<Weight> upload_weights(const std::vector<Weight>& host, std::vector<Buffer>& keep) override;
  void begin_forward(const ForwardBatch& batch) override;
  void synchronize() override;
  MemoryInfo memory_info() const override;
  bool can_record() const override { return true; }
  bool record(int key, const std::function<void()>& pass) override;
  bool replay(int key) override;
  void begin_branch() override;
  void end_branch() override;
  void join_branch() override;
  void all_reduce_sum(Tensor x) override;
  void moe_local_ids(Tensor ids, int first, int count) override;
  void all_gather(const Tensor& part, Tensor gathered) override;
  void abort_group() override;
  // Makes this backend a member of a tensor-parallel group (make_backend_group).
  void join_group(std::unique_ptr<NcclComm> comm) { comm_ = std::move(comm); }

  void embedding(const ForwardBatch& batch, const Weight& table, int64_t first_id, Tensor out) override;
  void rmsnorm(const Tensor& x, const Weight& w, float eps, Tensor out) override;
  void add(Tensor x, const Tensor& y) override;
  void add_rmsnorm(Tensor x, const Tensor& y, const Weight& w, float eps, Tensor out) override;
  void linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) override;
  void linear_many(const Tensor& x, const std::vector<LinearOut>& outs) override;
  void linear_silu_mul(const Tensor& x, const Weight& gate, const Weight& up, Tensor act, Tensor up_out) override;
  void gated_mlp(const Tensor& x, const Weight& gate, const Weight& up, const Weight& down, Tensor act, Tensor up_out,
                 Tensor out) override;
  void silu_mul(const Tensor& gate, const Tensor& up, Tensor out) override;
  void rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) override;
  void cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) override;
  void rope_and_cache(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                      const RopeParams& p) override;
  void mla_rope_and_cache(const ForwardBatch& batch, const Tensor& q, const Tensor& kv, const Weight& kv_norm, float eps,
                          const RopeParams& p, Tensor q_nope, Tensor q_rope, Tensor cache) override;
  void mla_rope_cache_absorb(const ForwardBatch& batch, const Tensor& q, const Tensor& kv, const Weight& kv_norm,
                             float eps, const RopeParams& p, const Tensor& w_uk, Tensor q_nope, Tensor q_rope,
                             Tensor q_lat, Tensor cache) override;
  void attention(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads, int head_dim,
                 int v_head_dim, float scale, Tensor out) override;
  void rope_cache_attention(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                            const RopeParams& p, int kv_heads, float scale, Tensor out) override;
  void mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope, const Tensor& latent_cache,
                     int kv_lora_rank, float scale, Tensor out_lat) override;
  void mla_attention_uv(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope, const Tensor& latent_cache,
                        int kv_lora_rank, float scale, const Tensor& w_uv, Tensor out_lat, Tensor out) override;
  void head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) override;
  void moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) override;
  void moe_gate_route(const Tensor& x, const Weight& gate, const Weight* bias, const MoeRouting& r, Tensor logits,
                      Tensor ids, Tensor weights) override;
  void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const std::vector<ExpertWeights>& experts,
                   Tensor out) override;
  void moe_experts_residual(const Tensor& x, const Tensor& ids, const Tensor& weights,
                            const std::vector<ExpertWeights>& experts, const SharedExperts& shared, Tensor out,
                            const ResidualNorm& r) override;
  bool fuses_shared_experts(const Tensor& ids, const std::vector<ExpertWeights>& experts,
                            const ExpertWeights& shared) override;
  void argmax_rows(const Tensor& logits, Tensor ids) override;
  void gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) override;
  void copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) override;
  void gather_context(const ForwardBatch& batch, const Tensor& cache, Tensor out) override;
  void dequantize_latent(const Tensor& rows, int kv_lora_rank, Tensor out) override;

 private:
  // Makes this backend's GPU the calling thread's current device.
  void bind() const;
  // The device metadata of `batch`, which must be the one passed to the last begin_forward.
  const DeviceBatch& device_batch(const ForwardBatch& batch) const;
  // Host ints -> a device array in `scratch`, through pinned memory (waits for the stream first).
  const int* upload_ints(const std::vector<int>& v, DeviceScratch& scratch);
  // The weight as a bf16 matrix: itself, or its conversion in the weight workspace.
  const __nv_bfloat16* bf16_weight(const Weight& w);
  // Splits of the keys for `blocks` blocks of work (cuda_attention.cpp).
  SplitKv plan_splits(int blocks, int blocks_per_sm, int tokens, int heads, int dim, bool per_context);
  // attention's arguments, checked, as the kernels take them (cuda_attention.cpp).
  GqaParams gqa_params(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads, int head_dim,
                       int v_head_dim, float scale, Tensor out);
  // The decode kernel over p's batch of one-token sequences, split as the batch needs.
  void gqa_decode(const GqaParams& p);
  // moe_experts up to the combine (checked; cuda_moe.cpp): each (token, choice) pair's expert
  // output in f32 rows of y, pair p's at row inverse[p] (at row p without an inverse); y is null
  // when there are no pairs.
  // The expert outputs for the combine: float rows, or bf16 rows from the FP8 experts (y_bf16).
  struct ExpertOutputs {
    const float* y = nullptr;
    const int* inverse = nullptr;
    const bf16* y_bf16 = nullptr;
    const float* shared_parts = nullptr;  // fused shared experts' rows (CombineResidual)
    int shared_chunks = 0;
    // combine(rows) with whichever rows there are; not called when there are none.
    template <typename F>
    void combine(F&& f) const {
      if (y_bf16)
        f(y_bf16);
      else if (y)
        f(y);
    }
  };
  // shared: the shared experts' weights, run in the same launches (fuses_shared_experts).
  ExpertOutputs expert_outputs(const Tensor& x, const Tensor& ids, const Tensor& weights,
                               const std::vector<ExpertWeights>& experts, const Tensor& out,
                               const ExpertWeights* shared = nullptr);
  // Which expert kernels run `pairs` (token, choice) pairs of `tokens` tokens over this table.
  enum class ExpertPath { fp8_gemm, few, grouped, per_expert };
  ExpertPath expert_path(const ExpertTable& table, int tokens, int pairs, bool x_aligned) const;
  // mla_attention's kernel, leaving the merge of its splits (if it has more than one) to the caller.
  SplitKv launch_mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                               const Tensor& latent_cache, int kv_lora_rank, float scale, Tensor out_lat);
  static int shared_chunks(const GroupedExperts& ex, const ExpertWeights& shared);
  // mla_rope_and_cache's arguments, checked (cuda_ops.cpp).
  MlaRopeCacheParams mla_rope_cache_params(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                           const Weight& kv_norm, float eps, const RopeParams& p, Tensor q_nope,
                                           Tensor q_rope, Tensor cache);
  // rope_and_cache's arguments, checked (cuda_ops.cpp).
  RopeCacheParams rope_cache_params(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                                    const RopeParams& p);

  int device_index_;
  std::string name_;
  std::unique_ptr<NcclComm> comm_;  // null outside a tensor-parallel group
  int sm_count_ = 0;
  // The stream ops are queued on: main_stream_, or branch_stream_ between begin_branch and
  // end_branch. Objects made with a stream (cuBLASLt, scratch) keep main_stream_.
  cudaStream_t stream_ = nullptr;
  cudaStream_t main_stream_ = nullptr;

  // Branches (cuda_graphs.cpp). Only the skinny products and pointwise kernels run on the branch
  // stream: an op that would use a library handle or a scratch buffer first returns to the main
  // stream behind the branch (leave_branch), which then runs in line.
  enum class Branch { None, Open, Pending, Left };
  Branch branch_ = Branch::None;
  cudaStream_t branch_stream_ = nullptr;
  cudaEvent_t fork_event_ = nullptr, join_event_ = nullptr;
  void leave_branch();
  // linear_many's products as one when their weights lie back to back (cuda_linear.cpp); false
  // when they do not, and nothing ran.
  bool stacked_product(const Tensor& x, const std::vector<LinearOut>& outs);
  // linear_many's products of FP8 weights at 1-4 tokens as one skinny launch; false where one of
  // them does not fit (cuda_linear.cpp).
  bool fp8_many(const Tensor& x, const std::vector<LinearOut>& outs);
  cublasHandle_t blas_ = nullptr;
  std::unique_ptr<CublasLtGemm> gemm_;

  uint64_t scratch_moves_ = 0;  // moves of this backend's scratch buffers (DeviceScratch)
  // begin_forward's upload: one pinned block copied to one device block.
  PinnedBuffer batch_host_;
  DeviceScratch batch_dev_;
  cudaEvent_t batch_copied_ = nullptr;  // the pinned block may be rewritten once this fired
  DeviceBatch db_;
  const ForwardBatch* batch_ = nullptr;  // identifies the uploaded batch; never dereferenced
  std::vector<int> logit_rows_;         // host copy, to recognise gather_rows of the logit rows

  // Recorded passes (cuda_graphs.cpp): instantiated graphs by key, each valid while no scratch
  // buffer has moved since it was captured.
  struct Recording {
    cudaGraphExec_t exec = nullptr;
    uint64_t scratch_moves = 0;
  };
  std::map<int, Recording> recordings_;
  void drop_recordings();

  PinnedBuffer staging_;  // small synchronous uploads and downloads (MoE routing, row lists)
  // Moves of index_dev_, which only upload_ints writes: that synchronizes the stream, so it never
  // runs inside a recording, and the buffer moving (an MTP pass gathering a prompt's rows) leaves
  // the recordings valid.
  uint64_t index_moves_ = 0;
  DeviceScratch index_dev_;
  DeviceScratch weight_ws_;  // bf16 conversions of non-bf16 weights
  DeviceScratch attn_ws_;    // split-K partial outputs
  DeviceScratch moe_ws_;     // permuted tokens and expert activations
  DeviceScratch stacked_ws_;  // the output of adjacent weights' single product (linear_many)
  ExpertTableCache expert_tables_;  // per-layer device tables of expert weight pointers
  Buffer route_counter_;            // moe_gate_route's blocks count themselves done here (kept at 0)

  // ---- FP8 block-scaled linear (cuda_linear.cpp, gemm_fp8.h): Hopper FP8 tensor cores on the
  // e4m3 weights and their 128x128 scales, activations quantized per token and 128 columns.
 public:
  struct Fp8LinearStats {
    int64_t native = 0, dequantized = 0, skinny = 0;  // FP8-weight linear calls by path
  };
  const Fp8LinearStats& fp8_linear_stats() const { return fp8_stats_; }

 private:
  // Runs linear on the block-scaled FP8 path when the weight, shape and GPU allow; false: the
  // caller dequantizes instead. With `silu_up` the product's input is silu(x) * silu_up,
  // computed by the pass that quantizes it (gated_mlp).
  bool fp8_linear_native(const Tensor& x, const Weight& w, Tensor out, const Tensor* silu_up = nullptr);
  Fp8Act skinny_fp8_act(int64_t m, int64_t k, const GemvFp8Products& products);
  bool fp8_native_ = fp8_block_scaling_enabled(device_index_);
  std::unique_ptr<Fp8Gemm> fp8_gemm_;  // created by the first native FP8 product
  DeviceScratch fp8_ws_{stream_, scratch_moves_};      // quantized activations, their scales, padded weight scales
  Fp8LinearStats fp8_stats_;
};

}  // namespace dsinfer::cuda
