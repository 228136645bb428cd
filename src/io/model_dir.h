// A Hugging Face model directory: config.json, weights, tokenizer files, generation_config.json.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace dsinfer {

struct ModelDir {
  std::string path;
  nlohmann::json config;                              // config.json
  std::optional<std::string> tokenizer_json;          // path of tokenizer.json, when present
  std::optional<nlohmann::json> tokenizer_config;     // tokenizer_config.json, when present
  std::optional<nlohmann::json> generation_config;    // generation_config.json, when present

  // Reads the JSON files; throws naming the directory when it or its config.json is missing.
  static ModelDir open(const std::string& path);
};

}  // namespace dsinfer
