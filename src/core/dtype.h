// Element types of tensors and the scalar conversions between them.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace dsinfer {

enum class DType { F32, F16, BF16, F8_E4M3, I32, I64, I8, U8 };

size_t dtype_size(DType t);
std::string dtype_name(DType t);
// Parses a safetensors dtype string ("BF16", "F8_E4M3", ...); throws on unknown names.
DType dtype_from_safetensors(const std::string& name);

inline float bf16_to_f32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t v);
uint16_t f32_to_f16(float f);

// OCP FP8 E4M3 (the "fn" variant: no infinities, 0x7f/0xff are NaN, max 448).
float fp8e4m3_to_f32(uint8_t v);
// Round-to-nearest-even with saturation to +-448. Inline: dummy weights convert every value of
// an FP8 checkpoint's shape with it (a call a value took 43 % of their generation).
inline uint8_t f32_to_fp8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  a = a > 448.0f ? 448.0f : a;  // saturate at the largest finite value (0x7e)
  if (a < 0.015625f)  // subnormal: multiples of 2^-9 (a result of 8 is the smallest normal, code 8)
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f)));
  uint32_t bits;
  std::memcpy(&bits, &a, 4);
  bits += 0x7ffff + ((bits >> 20) & 1);  // round to nearest even at bit 20 (3 mantissa bits kept)
  const uint32_t exp = (bits >> 23) - 127 + 7;
  return static_cast<uint8_t>(sign | (exp << 3) | ((bits >> 20) & 0x7));
}

}  // namespace dsinfer
