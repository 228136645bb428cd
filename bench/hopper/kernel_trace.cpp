// Every kernel's start and end on the GPU, graph nodes included, as CSV: a CUPTI activity
// tracer loaded into any CUDA program by the driver, for machines without nsys.
//
//   g++ -O2 -shared -fPIC -I$CUDA/include bench/hopper/kernel_trace.cpp -o libkernel_trace.so \
//       -L$CUDA/lib -lcupti
//   CUDA_INJECTION64_PATH=$PWD/libkernel_trace.so KERNEL_TRACE_OUT=trace.csv dsinfer bench ...
//   python3 bench/hopper/trace_steps.py trace.csv
//
// ncu times kernels one at a time; inside a recorded decode step kernels overlap through
// dependent launches, so only a trace says what each costs the step (its end minus the end of
// the kernel before it). Columns: start_ns,end_ns,stream,graph_node,name (times from the GPU's
// clock; rows in completion-buffer order, sort by start).
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

FILE* out = nullptr;
constexpr size_t kBufferBytes = 8 << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    std::fprintf(out, "%llu,%llu,%u,%llu,\"%s\"\n", static_cast<unsigned long long>(k->start),
                 static_cast<unsigned long long>(k->end), k->streamId,
                 static_cast<unsigned long long>(k->graphNodeId), k->name);
  }
  std::free(buffer);
}

void flush_at_exit() {
  cuptiActivityFlushAll(1);
  std::fclose(out);
}

}  // namespace

extern "C" int InitializeInjection() {
  const char* path = std::getenv("KERNEL_TRACE_OUT");
  out = std::fopen(path ? path : "kernel_trace.csv", "w");
  if (out == nullptr) return 0;
  std::fprintf(out, "start_ns,end_ns,stream,graph_node,name\n");
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
      cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
    std::fprintf(stderr, "kernel_trace: CUPTI activity tracing unavailable\n");
    return 0;
  }
  std::atexit(flush_at_exit);
  return 1;
}
