// The `normalizer` of tokenizer.json: null, NFC, NFD or a Sequence of those.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

class Normalizer {
 public:
  enum class Form { NFC, NFD };

  // `where` names the file and JSON path for errors (an unsupported type is an error).
  static Normalizer from_json(const nlohmann::json& spec, const std::string& where);

  bool is_identity() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  void add(const nlohmann::json& spec, const std::string& where);
  std::vector<Form> steps_;
};

}  // namespace dsinfer
