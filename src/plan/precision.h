// Storage formats for weights and for the KV cache, and their exact byte counts
// (scale tensors included), as the engines that use each format lay them out.
#pragma once
#include <cstdint>
#include <string>

namespace dsinfer::plan {

enum class WeightDtype {
  F32,          // float32 (a checkpoint stored that way; the CPU reference)
  BF16,
  F16,
  FP8Block,     // e4m3 + one float32 scale per 128x128 block (DeepSeek's release format)
  Int8Channel,  // int8 + one float32 scale per output channel (W8A8, per-channel)
  Int4Group,    // packed int4 + one 16-bit scale per 128 inputs of a row (GPTQ/AWQ-style, symmetric)
};

enum class KvDtype {
  BF16,
  FP8,   // e4m3 with one scale per tensor (vLLM's fp8 KV cache): 1 byte a value; MLA's latent
         // row as dsinfer --kv-dtype fp8 stores it (core/latent_fp8.h): 656 bytes for V3's 576
  Int8,  // llama.cpp q8_0: 32 values in 32 bytes + an fp16 scale
  Int4,  // llama.cpp q4_0: 32 values in 16 bytes + an fp16 scale
};

// A quantizable linear layer's weight format; the FP8 block shape comes from the checkpoint.
struct WeightFormat {
  WeightDtype dtype = WeightDtype::BF16;
  int block_rows = 128, block_cols = 128;  // FP8Block
  int group = 128;                         // Int4Group
};

// Accepts bf16 | fp16 | fp32 | fp8 | int8 | int4 (as-stored is resolved by the caller).
WeightDtype parse_weight_dtype(const std::string& text);
KvDtype parse_kv_dtype(const std::string& text);
std::string to_string(WeightDtype d);
std::string to_string(KvDtype d);

// Bytes of a [rows, cols] linear weight in the format, scales included.
int64_t linear_weight_bytes(const WeightFormat& f, int64_t rows, int64_t cols);
// Bytes of a tensor kept in 16 bit (or 32 for float32 checkpoints) whatever the format.
int64_t unquantized_bytes(WeightDtype d, int64_t elements);
// Bytes of one cached vector of `values` numbers (a K or V head, or an MLA latent row).
int64_t kv_vector_bytes(KvDtype d, int64_t values);

}  // namespace dsinfer::plan
