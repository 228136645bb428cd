// The config.json of every built-in model, compiled into the binary from configs/*.json
// (the source is generated at build time by embed_configs.cmake).
#pragma once
#include <cstddef>
#include <span>

namespace dsinfer::plan {

struct EmbeddedConfig {
  const char* name;            // file name without .json: the catalog name
  const unsigned char* bytes;  // the file's bytes, not NUL-terminated
  std::size_t size;
};

// Sorted by name.
std::span<const EmbeddedConfig> embedded_configs();

}  // namespace dsinfer::plan
