#include "backend/cuda/nccl_comm.h"

#include <dlfcn.h>
#include <type_traits>

#include "core/error.h"

#if __has_include(<nccl.h>)
#include <nccl.h>
#define DSINFER_HAVE_NCCL_H 1
#endif

namespace dsinfer::cuda {

#ifdef DSINFER_HAVE_NCCL_H
namespace {

// The NCCL entry points dsinfer calls, from libnccl.so.2 (opened once, kept open).
struct NcclApi {
  decltype(&ncclCommInitAll) init_all = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclCommCount) count = nullptr;
  decltype(&ncclCommDestroy) destroy = nullptr;
  decltype(&ncclCommAbort) abort = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
};

const NcclApi& nccl() {
  static const NcclApi api = [] {
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) fail("tensor parallelism on GPUs needs NCCL: cannot load libnccl.so.2 (", dlerror(), ")");
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn) fail("libnccl.so.2 has no ", name);
    };
    NcclApi a;
    sym(a.init_all, "ncclCommInitAll");
    sym(a.all_reduce, "ncclAllReduce");
    sym(a.all_gather, "ncclAllGather");
    sym(a.count, "ncclCommCount");
    sym(a.destroy, "ncclCommDestroy");
    sym(a.abort, "ncclCommAbort");
    sym(a.error_string, "ncclGetErrorString");
    return a;
  }();
  return api;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail("NCCL ", what, ": ", nccl().error_string(r));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::F32: return ncclFloat32;
    default: fail("all_reduce_sum: ", dtype_name(t), " tensors are not summed (BF16, F16 or F32)");
  }
}

}  // namespace

std::vector<std::unique_ptr<NcclComm>> NcclComm::init_all(const std::vector<int>& devices) {
  std::vector<ncclComm_t> comms(devices.size());
  check(nccl().init_all(comms.data(), static_cast<int>(devices.size()), devices.data()), "ncclCommInitAll");
  std::vector<std::unique_ptr<NcclComm>> out;
  for (ncclComm_t c : comms) out.push_back(std::unique_ptr<NcclComm>(new NcclComm(c)));
  return out;
}

NcclComm::~NcclComm() {
  if (!aborted_) nccl().destroy(static_cast<ncclComm_t>(comm_));
}

void NcclComm::all_reduce_sum(Tensor x, cudaStream_t s) {
  if (aborted_) fail("tensor-parallel group aborted: another rank failed");
  check(nccl().all_reduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), ncclSum,
                          static_cast<ncclComm_t>(comm_), s),
        "all-reduce");
}

void NcclComm::all_gather(const Tensor& part, Tensor gathered, cudaStream_t s) {
  if (aborted_) fail("tensor-parallel group aborted: another rank failed");
  int members = 0;
  check(nccl().count(static_cast<ncclComm_t>(comm_), &members), "ncclCommCount");
  if (gathered.dtype != part.dtype || gathered.numel() != part.numel() * members)
    fail("all_gather: ", dtype_name(part.dtype), " ", shape_str(part.shape), " into ", dtype_name(gathered.dtype), " ",
         shape_str(gathered.shape), " over ", members, " GPUs");
  check(nccl().all_gather(part.data, gathered.data, static_cast<size_t>(part.numel()), nccl_type(part.dtype),
                          static_cast<ncclComm_t>(comm_), s),
        "all-gather");
}

void NcclComm::abort() {
  if (aborted_.exchange(true)) return;
  nccl().abort(static_cast<ncclComm_t>(comm_));
}

#else  // no nccl.h at build time

std::vector<std::unique_ptr<NcclComm>> NcclComm::init_all(const std::vector<int>&) {
  fail("tensor parallelism on GPUs needs NCCL, and this dsinfer was built without nccl.h");
}
NcclComm::~NcclComm() = default;
void NcclComm::all_reduce_sum(Tensor, cudaStream_t) { fail("built without NCCL"); }
void NcclComm::all_gather(const Tensor&, Tensor, cudaStream_t) { fail("built without NCCL"); }
void NcclComm::abort() {}

#endif

}  // namespace dsinfer::cuda
