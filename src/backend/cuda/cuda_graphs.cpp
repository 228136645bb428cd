// CudaBackend's recorded passes: a forward pass captured once as a CUDA graph and replayed,
// which turns a decode step's hundreds of kernel launches into one. Kernels read the batch
// metadata from the device block begin_forward fills, so a replay sees the new step's tokens,
// positions and block tables; the launch shapes baked in at capture depend only on the number
// of tokens and sequences (decode attention plans its splits per context on the device).
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_switch.h"
#include "core/log.h"

namespace dsinfer::cuda {
namespace {

// False when DSINFER_BRANCH=0: branches run in line (for measuring what they buy).
bool branch_enabled() {
  static const bool on = switched_on("DSINFER_BRANCH");
  return on;
}

// Ends a capture that failed part-way and clears the error it left, so the stream is usable.
void abandon_capture(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
}

}  // namespace

bool CudaBackend::record(int key, const std::function<void()>& pass) {
  bind();
  auto old = recordings_.find(key);
  if (old != recordings_.end()) {
    cudaGraphExecDestroy(old->second.exec);
    recordings_.erase(old);
  }
  // Thread-local mode: only this thread's unsafe calls (allocations, synchronizations) break
  // the capture; they would make the graph wrong, so an op that needs one fails the recording.
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    pass();
  } catch (const std::exception& e) {
    stream_ = main_stream_;
    branch_ = Branch::None;
    abandon_capture(stream_);
    log_warn("CUDA graph capture of pass ", key, " failed, so it runs op by op: ", e.what());
    return false;
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  if (ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    log_warn("CUDA graph capture of pass ", key, " failed (", cudaGetErrorString(ended), "), so it runs op by op");
    return false;
  }
  Recording r;
  const cudaError_t made = cudaGraphInstantiate(&r.exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_CHECK(made);
  r.scratch_moves = scratch_moves_;
  recordings_[key] = r;
  CUDA_CHECK(cudaGraphLaunch(r.exec, stream_));  // capturing ran nothing: this is the pass's run
  return true;
}

// Fork and join through events: both work inside a stream capture too, where they become the
// graph's two parallel paths.
void CudaBackend::begin_branch() {
  if (branch_ != Branch::None) fail("begin_branch: a branch is already open or not joined");
  if (!branch_enabled()) {
    branch_ = Branch::Left;
    return;
  }
  CUDA_CHECK(cudaEventRecord(fork_event_, main_stream_));
  CUDA_CHECK(cudaStreamWaitEvent(branch_stream_, fork_event_, 0));
  stream_ = branch_stream_;
  branch_ = Branch::Open;
}

void CudaBackend::end_branch() {
  if (branch_ == Branch::Left) return;
  if (branch_ != Branch::Open) fail("end_branch: no open branch");
  CUDA_CHECK(cudaEventRecord(join_event_, branch_stream_));
  stream_ = main_stream_;
  branch_ = Branch::Pending;
}

void CudaBackend::join_branch() {
  if (branch_ == Branch::Pending) CUDA_CHECK(cudaStreamWaitEvent(main_stream_, join_event_, 0));
  else if (branch_ == Branch::Open) fail("join_branch: the branch was not ended");
  branch_ = Branch::None;
}

void CudaBackend::leave_branch() {
  if (branch_ != Branch::Open) return;
  CUDA_CHECK(cudaEventRecord(join_event_, branch_stream_));
  CUDA_CHECK(cudaStreamWaitEvent(main_stream_, join_event_, 0));
  stream_ = main_stream_;
  branch_ = Branch::Left;
}

bool CudaBackend::replay(int key) {
  auto it = recordings_.find(key);
  if (it == recordings_.end()) return false;
  if (it->second.scratch_moves != scratch_moves_) {  // it would read freed memory
    drop_recordings();
    return false;
  }
  bind();
  CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream_));
  return true;
}

void CudaBackend::drop_recordings() {
  for (auto& [key, r] : recordings_) cudaGraphExecDestroy(r.exec);
  recordings_.clear();
}

}  // namespace dsinfer::cuda
