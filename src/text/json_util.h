// Reading optional members of JSON objects without copying them.
#pragma once
#include <nlohmann/json.hpp>

namespace dsinfer {

// obj[key] when obj is an object that has it, else a null value. Unlike json::value(), no
// copy is made (a tokenizer.json vocab is megabytes).
inline const nlohmann::json& json_member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json null_value;
  if (!obj.is_object()) return null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

}  // namespace dsinfer
