// Shared helpers of the text tests: the fixture tokenizers and their reference data.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "io/json_file.h"
#include "text/tokenizer.h"

namespace dsinfer::testing {

inline std::string fixture_path(const std::string& rel) { return std::string(DSINFER_FIXTURES) + "/" + rel; }

// The model folder of each tokenizer named in tokenizer_refs.json.
inline std::string model_dir_of(const std::string& name) {
  if (name == "deepseek_v3") return fixture_path("ds3-tiny");
  if (name == "qwen") return fixture_path("qwen2-tiny");
  return fixture_path("llama-tiny");
}

inline const nlohmann::json& tokenizer_refs() {
  static const nlohmann::json refs = read_json_file(fixture_path("tokenizer_refs.json"));
  return refs;
}

inline const nlohmann::json& tokenizer_config_of(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, read_json_file(model_dir_of(name) + "/tokenizer_config.json")).first;
  return it->second;
}

// Loading takes a fraction of a second; the tests share one instance per tokenizer.
inline const Tokenizer& fixture_tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, Tokenizer::load(model_dir_of(name) + "/tokenizer.json", &tokenizer_config_of(name))).first;
  return it->second;
}

}  // namespace dsinfer::testing
