// CudaBackend: device set-up, memory, copies, weight upload and the per-step batch upload.
// The ops live in cuda_ops.cpp, cuda_linear.cpp, cuda_attention.cpp and cuda_moe.cpp.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"

namespace dsinfer {
namespace cuda {
namespace {

// Selects the device and creates the backend's stream; non-blocking, so nothing else
// (the legacy default stream included) serializes with it.
cudaStream_t create_stream(int device) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) fail("CUDA device ", device, " requested but ", count, " device(s) are present");
  CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (prop.major < 9)
    fail("CUDA device ", device, " (", prop.name, ") has compute capability ", prop.major, ".", prop.minor,
         "; dsinfer's kernels are built for 9.0 (Hopper) and newer");
  // The main line first wherever a branch (begin_branch) competes with it for the SMs: the
  // branch stream keeps the lowest priority.
  int least = 0, greatest = 0;
  CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, greatest));
  return s;
}

// Ints of batch metadata the device block holds from the start (4 MiB).
constexpr size_t kBatchInts = size_t{1} << 20;

void expect_cuda(const Tensor& t, const char* what) {
  if (t.device.kind != DeviceKind::CUDA) fail("CUDA backend: ", what, " is on ", device_name(t.device), ", not a GPU");
}

// Checks the batch before any kernel indexes with it: out-of-range block tables would be reads
// of arbitrary device memory.
void validate(const ForwardBatch& b) {
  const int t_count = b.num_tokens();
  if (static_cast<int>(b.positions.size()) != t_count || static_cast<int>(b.slots.size()) != t_count)
    fail("forward batch: ", t_count, " tokens but ", b.positions.size(), " positions and ", b.slots.size(), " slots");
  if (b.block_size <= 0) fail("forward batch: block size ", b.block_size);
  std::vector<int> owner(t_count, -1);
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    const SeqSlice& q = b.seqs[s];
    if (q.query_start < 0 || q.query_len < 0 || q.query_start + q.query_len > t_count)
      fail("forward batch: sequence ", s, " covers tokens [", q.query_start, ", ", q.query_start + q.query_len,
           ") of ", t_count);
    if (q.context_len < q.query_len)
      fail("forward batch: sequence ", s, " has context ", q.context_len, " shorter than its ", q.query_len,
           " new tokens");
    if (static_cast<int64_t>(q.block_table.size()) * b.block_size < q.context_len)
      fail("forward batch: sequence ", s, " has context ", q.context_len, " but ", q.block_table.size(),
           " blocks of ", b.block_size);
    for (int t = q.query_start; t < q.query_start + q.query_len; ++t) {
      if (owner[t] >= 0) fail("forward batch: token ", t, " belongs to sequences ", owner[t], " and ", s);
      owner[t] = static_cast<int>(s);
      if (b.positions[t] < 0 || b.positions[t] >= q.context_len)
        fail("forward batch: token ", t, " at position ", b.positions[t], " outside its context of ", q.context_len);
    }
  }
  for (int t = 0; t < t_count; ++t)
    if (owner[t] < 0) fail("forward batch: token ", t, " belongs to no sequence");
  for (int r : b.logit_rows)
    if (r < 0 || r >= t_count) fail("forward batch: logit row ", r, " outside ", t_count, " tokens");
}

}  // namespace

CudaBackend::CudaBackend(int device_index)
    : device_index_(device_index),
      stream_(create_stream(device_index)),
      batch_dev_(stream_, scratch_moves_),
      index_dev_(stream_, index_moves_),
      weight_ws_(stream_, scratch_moves_),
      attn_ws_(stream_, scratch_moves_),
      moe_ws_(stream_, scratch_moves_),
      stacked_ws_(stream_, scratch_moves_) {
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_index));
  sm_count_ = prop.multiProcessorCount;
  name_ = cat("cuda:", device_index, " (", prop.name, ")");
  CUBLAS_CHECK(cublasCreate(&blas_));
  CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  gemm_ = std::make_unique<CublasLtGemm>(stream_);
  CUDA_CHECK(cudaEventCreateWithFlags(&batch_copied_, cudaEventDisableTiming));
  main_stream_ = stream_;
  CUDA_CHECK(cudaStreamCreateWithFlags(&branch_stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&fork_event_, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&join_event_, cudaEventDisableTiming));
  route_counter_ = alloc(sizeof(int));
  carveout_override("");  // a bad DSINFER_CARVEOUT fails here, not in a launch under graph capture
  CUDA_CHECK(cudaMemsetAsync(route_counter_.data(), 0, sizeof(int), stream_));
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_index_);
  cudaStreamSynchronize(stream_);
  drop_recordings();
  gemm_.reset();
  if (blas_) cublasDestroy(blas_);
  if (batch_copied_) cudaEventDestroy(batch_copied_);
  stream_ = main_stream_;
  cudaStreamSynchronize(branch_stream_);
  cudaEventDestroy(fork_event_);
  cudaEventDestroy(join_event_);
  cudaStreamDestroy(branch_stream_);
  cudaStreamDestroy(stream_);
}

std::string CudaBackend::name() const { return name_; }

// The current device is per host thread (the engine steps on its own), so every entry point a
// thread may begin with selects ours; the ops of a step follow begin_forward on its thread.
void CudaBackend::bind() const { CUDA_CHECK(cudaSetDevice(device_index_)); }

Buffer CudaBackend::alloc(size_t bytes) {
  bind();
  void* p = nullptr;
  if (bytes > 0) {
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail("out of GPU memory on ", name_, " allocating ", bytes, " bytes: ", cudaGetErrorString(e));
    }
  }
  return Buffer(p, bytes, device(), [](void* q) { cudaFree(q); });
}

void CudaBackend::copy_to_device(const void* host, Tensor dst) {
  expect_cuda(dst, "copy_to_device destination");
  bind();
  CUDA_CHECK(cudaMemcpyAsync(dst.data, host, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller may free `host` on return
}

void CudaBackend::copy_to_host(const Tensor& src, void* host) {
  expect_cuda(src, "copy_to_host source");
  bind();
  CUDA_CHECK(cudaMemcpyAsync(host, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::fill_zero(Tensor t) {
  expect_cuda(t, "fill_zero tensor");
  bind();
  CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.nbytes(), stream_));
}

Weight CudaBackend::upload_weight(const Weight& host, std::vector<Buffer>& keep) {
  bind();
  auto upload = [&](const Tensor& t) {
    if (t.device.kind == DeviceKind::CUDA) return t;
    keep.push_back(alloc(t.nbytes()));
    Tensor d = t;
    d.data = keep.back().data();
    d.device = device();
    CUDA_CHECK(cudaMemcpyAsync(d.data, t.data, t.nbytes(), cudaMemcpyHostToDevice, stream_));
    return d;
  };
  Weight w = host;
  w.w = upload(host.w);
  if (!host.scale.empty()) w.scale = upload(host.scale);
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // host weights may be unmapped afterwards
  return w;
}

// Host weights of one dtype without block scales go back to back into one allocation, so
// linear_many can run them as one product; others are uploaded one by one.
std::vector<Weight> CudaBackend::upload_weights(const std::vector<Weight>& host, std::vector<Buffer>& keep) {
  bool together = !host.empty();
  size_t bytes = 0;
  for (const Weight& w : host) {
    together = together && w.scale.empty() && w.w.dtype == host.front().w.dtype &&
               w.w.device.kind != DeviceKind::CUDA && w.w.nbytes() % 16 == 0;
    bytes += w.w.nbytes();
  }
  if (!together) return Backend::upload_weights(host, keep);
  bind();
  keep.push_back(alloc(bytes));
  char* at = static_cast<char*>(keep.back().data());
  std::vector<Weight> out;
  for (const Weight& w : host) {
    Weight d = w;
    d.w.data = at;
    d.w.device = device();
    CUDA_CHECK(cudaMemcpyAsync(at, w.w.data, w.w.nbytes(), cudaMemcpyHostToDevice, stream_));
    at += w.w.nbytes();
    out.push_back(d);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // host weights may be unmapped afterwards
  return out;
}

void CudaBackend::begin_forward(const ForwardBatch& batch) {
  validate(batch);
  bind();
  const int t_count = batch.num_tokens(), s_count = static_cast<int>(batch.seqs.size());
  size_t table_ints = 0;
  for (const SeqSlice& s : batch.seqs) table_ints += s.block_table.size();
  const size_t ints = 8 * static_cast<size_t>(t_count) + 5 * static_cast<size_t>(s_count) + 1 + table_ints +
                      batch.logit_rows.size();
  CUDA_CHECK(cudaEventSynchronize(batch_copied_));  // the previous step's copy has read the pinned block
  int* host = static_cast<int*>(batch_host_.get(ints * sizeof(int)));
  // Room for long block tables up front: moving this block would make recorded passes stale.
  int* dev = static_cast<int*>(batch_dev_.get(std::max(ints, kBatchInts) * sizeof(int)));

  // Layout: tokens, positions, slots, token_seq [T]; query_start, query_len, context_len,
  // block_table_start [S]; context_start [S + 1]; logit rows; the one-token view's four [T];
  // block tables last, so that every other array sits at an offset set by the numbers of tokens,
  // sequences and logit rows alone.
  int* h = host;
  auto put = [&](const std::vector<int>& v) {
    std::memcpy(h, v.data(), v.size() * sizeof(int));
    const int* at = dev + (h - host);
    h += v.size();
    return at;
  };
  DeviceBatch d;
  d.num_tokens = t_count;
  d.num_seqs = s_count;
  d.block_size = FastDiv(batch.block_size);
  d.tokens = put(batch.tokens);
  d.positions = put(batch.positions);
  d.slots = put(batch.slots);
  std::vector<int> token_seq(t_count), start(s_count), len(s_count), ctx(s_count), table_start(s_count), tables;
  tables.reserve(table_ints);
  for (int s = 0; s < s_count; ++s) {
    const SeqSlice& q = batch.seqs[s];
    for (int t = q.query_start; t < q.query_start + q.query_len; ++t) token_seq[t] = s;
    start[s] = q.query_start;
    len[s] = q.query_len;
    ctx[s] = q.context_len;
    table_start[s] = static_cast<int>(tables.size());
    tables.insert(tables.end(), q.block_table.begin(), q.block_table.end());
    d.max_query_len = std::max(d.max_query_len, q.query_len);
    d.max_context = std::max(d.max_context, q.context_len);
  }
  d.token_seq = put(token_seq);
  d.query_start = put(start);
  d.query_len = put(len);
  d.context_len = put(ctx);
  d.block_table_start = put(table_start);
  std::vector<int> packed_start(s_count + 1);
  const std::vector<int64_t> starts = batch.context_starts();
  if (starts.back() > INT32_MAX) fail("CUDA backend: ", starts.back(), " context tokens in one step exceed 2^31");
  std::copy(starts.begin(), starts.end(), packed_start.begin());
  d.context_start = put(packed_start);
  d.logit_rows = put(batch.logit_rows);
  std::vector<int> index(t_count), ones(t_count, 1), token_table(t_count), token_context(t_count);
  for (int t = 0; t < t_count; ++t) {
    index[t] = t;
    token_table[t] = table_start[token_seq[t]];
    token_context[t] = batch.positions[t] + 1;
  }
  d.token_index = put(index);
  d.ones = put(ones);
  d.token_table_start = put(token_table);
  d.token_context = put(token_context);
  d.block_tables = put(tables);
  CUDA_CHECK(cudaMemcpyAsync(dev, host, ints * sizeof(int), cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaEventRecord(batch_copied_, stream_));
  db_ = d;
  batch_ = &batch;
  logit_rows_ = batch.logit_rows;
}

void CudaBackend::synchronize() {
  bind();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::all_reduce_sum(Tensor x) {
  if (!comm_) return;
  bind();
  comm_->all_reduce_sum(x, stream_);
}

void CudaBackend::all_gather(const Tensor& part, Tensor gathered) {
  if (!comm_) fail("all_gather: backend ", name_, " is in no tensor-parallel group");
  bind();
  comm_->all_gather(part, gathered, stream_);
}

void CudaBackend::abort_group() {
  if (comm_) comm_->abort();
}

MemoryInfo CudaBackend::memory_info() const {
  bind();
  MemoryInfo m;
  CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
  return m;
}

const DeviceBatch& CudaBackend::device_batch(const ForwardBatch& batch) const {
  if (&batch != batch_ || batch.num_tokens() != db_.num_tokens)
    fail("CUDA backend: begin_forward(batch) must be called with this batch before ops that read it");
  return db_;
}

const int* CudaBackend::upload_ints(const std::vector<int>& v, DeviceScratch& scratch) {
  const size_t bytes = v.size() * sizeof(int);
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // no earlier copy still reads the staging buffer
  void* host = staging_.get(bytes);
  std::memcpy(host, v.data(), bytes);
  void* dev = scratch.get(bytes);
  CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream_));
  return static_cast<const int*>(dev);
}

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  return std::make_unique<cuda::CudaBackend>(device_index);
}

std::vector<std::unique_ptr<Backend>> make_cuda_backend_group(int first_device, int size) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (first_device < 0 || first_device + size > count)
    fail("tensor parallelism over ", size, " GPUs from cuda:", first_device, " needs cuda:", first_device, "..",
         first_device + size - 1, ", but ", count, " device(s) are present");
  std::vector<int> devices;
  for (int r = 0; r < size; ++r) devices.push_back(first_device + r);
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int d : devices) ranks.push_back(std::make_unique<cuda::CudaBackend>(d));
  std::vector<std::unique_ptr<cuda::NcclComm>> comms = cuda::NcclComm::init_all(devices);
  for (int r = 0; r < size; ++r) static_cast<cuda::CudaBackend&>(*ranks[r]).join_group(std::move(comms[r]));
  return ranks;
}

}  // namespace dsinfer
