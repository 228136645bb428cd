// Writes a .safetensors file (8-byte header length, JSON header, aligned tensor data).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dsinfer {

struct OwnedTensor {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<unsigned char> bytes;
};

void write_safetensors(const std::string& path, const std::map<std::string, OwnedTensor>& tensors);

}  // namespace dsinfer
