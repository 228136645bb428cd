// DeviceBatch: the ForwardBatch metadata as device arrays, uploaded once per step by
// CudaBackend::begin_forward and read by the kernels that need positions, slots or block tables.
#pragma once
#include "backend/cuda/fast_div.h"

namespace dsinfer::cuda {

struct DeviceBatch {
  int num_tokens = 0, num_seqs = 0;
  FastDiv block_size{16};  // slots per cache block (.d), as a divisor: kernels map every key to its page
  int max_query_len = 0, max_context = 0;
  // Per token [num_tokens].
  const int* tokens = nullptr;
  const int* positions = nullptr;
  const int* slots = nullptr;
  const int* token_seq = nullptr;  // which sequence each packed token belongs to
  // Per sequence [num_seqs].
  const int* query_start = nullptr;
  const int* query_len = nullptr;
  const int* context_len = nullptr;
  const int* context_start = nullptr;      // [num_seqs + 1]: the contexts packed back to back
  const int* block_table_start = nullptr;  // offset of the sequence's table in block_tables
  const int* block_tables = nullptr;       // all tables back to back
  const int* logit_rows = nullptr;
  // Per token [num_tokens], for reading a step as one-token sequences (short_query_view): its
  // index, a 1, its sequence's block_table_start, its causal context length.
  const int* token_index = nullptr;
  const int* ones = nullptr;
  const int* token_table_start = nullptr;
  const int* token_context = nullptr;
};

#ifdef __CUDACC__
// Cache slot of position `pos` of sequence `seq`.
__device__ __forceinline__ int cache_slot(const DeviceBatch& b, int seq, int pos) {
  const int page = b.block_size.div(pos);
  return b.block_tables[b.block_table_start[seq] + page] * b.block_size.d + pos - page * b.block_size.d;
}
#endif

}  // namespace dsinfer::cuda
