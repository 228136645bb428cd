#include "plan/precision.h"

#include "core/error.h"

namespace dsinfer::plan {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// llama.cpp's q8_0 / q4_0 blocks: 32 values and one fp16 scale.
constexpr int64_t kKvGroup = 32;
}  // namespace

WeightDtype parse_weight_dtype(const std::string& text) {
  if (text == "bf16") return WeightDtype::BF16;
  if (text == "fp16") return WeightDtype::F16;
  if (text == "fp32") return WeightDtype::F32;
  if (text == "fp8") return WeightDtype::FP8Block;
  if (text == "int8") return WeightDtype::Int8Channel;
  if (text == "int4") return WeightDtype::Int4Group;
  fail("unknown weights dtype '", text, "' (choose bf16, fp16, fp8, int8, int4 or as-stored)");
}

KvDtype parse_kv_dtype(const std::string& text) {
  if (text == "bf16") return KvDtype::BF16;
  if (text == "fp8") return KvDtype::FP8;
  if (text == "int8") return KvDtype::Int8;
  if (text == "int4") return KvDtype::Int4;
  fail("unknown KV-cache dtype '", text, "' (choose bf16, fp8, int8 or int4)");
}

std::string to_string(WeightDtype d) {
  switch (d) {
    case WeightDtype::F32: return "fp32";
    case WeightDtype::BF16: return "bf16";
    case WeightDtype::F16: return "fp16";
    case WeightDtype::FP8Block: return "fp8";
    case WeightDtype::Int8Channel: return "int8";
    case WeightDtype::Int4Group: return "int4";
  }
  return "?";
}

std::string to_string(KvDtype d) {
  switch (d) {
    case KvDtype::BF16: return "bf16";
    case KvDtype::FP8: return "fp8";
    case KvDtype::Int8: return "int8";
    case KvDtype::Int4: return "int4";
  }
  return "?";
}

int64_t linear_weight_bytes(const WeightFormat& f, int64_t rows, int64_t cols) {
  switch (f.dtype) {
    case WeightDtype::F32: return rows * cols * 4;
    case WeightDtype::BF16:
    case WeightDtype::F16: return rows * cols * 2;
    case WeightDtype::FP8Block:
      return rows * cols + ceil_div(rows, f.block_rows) * ceil_div(cols, f.block_cols) * 4;
    case WeightDtype::Int8Channel: return rows * cols + rows * 4;
    case WeightDtype::Int4Group: return rows * ceil_div(cols, 2) + rows * ceil_div(cols, f.group) * 2;
  }
  return 0;
}

int64_t unquantized_bytes(WeightDtype d, int64_t elements) {
  return elements * (d == WeightDtype::F32 ? 4 : 2);
}

int64_t kv_vector_bytes(KvDtype d, int64_t values) {
  switch (d) {
    case KvDtype::BF16: return values * 2;
    case KvDtype::FP8: return values;
    case KvDtype::Int8: return ceil_div(values, kKvGroup) * (kKvGroup + 2);
    case KvDtype::Int4: return ceil_div(values, kKvGroup) * (kKvGroup / 2 + 2);
  }
  return 0;
}

}  // namespace dsinfer::plan
