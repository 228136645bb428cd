#include "io/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsinfer {

void write_safetensors(const std::string& path, const std::map<std::string, OwnedTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (t.bytes.size() != static_cast<size_t>(shape_numel(t.shape)) * dtype_size(t.dtype))
      fail("write_safetensors: tensor '", name, "' holds ", t.bytes.size(), " bytes for shape ", shape_str(t.shape));
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write '", path, "'");
  uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  if (!out) fail("failed writing '", path, "'");
}

}  // namespace dsinfer
