// The `pre_tokenizer` of tokenizer.json: splits text into the words that BPE encodes one by
// one. Supports Split (regex or string pattern, every behavior, invert), Digits, ByteLevel and
// Sequence of these, with HF tokenizers' semantics.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

// One stage of the pipeline: splits (and may transform) one piece into several.
class PreTokenizeStep {
 public:
  virtual ~PreTokenizeStep() = default;
  virtual void apply(std::string_view piece, std::vector<std::string>& out) const = 0;
};

class PreTokenizer {
 public:
  // `spec` may be null (the whole text is one word). `where` names file and JSON path.
  static PreTokenizer from_json(const nlohmann::json& spec, const std::string& where);

  // The words of `text`, in order, never empty.
  std::vector<std::string> split(std::string_view text) const;

 private:
  void add(const nlohmann::json& spec, const std::string& where);
  std::vector<std::shared_ptr<const PreTokenizeStep>> steps_;
};

}  // namespace dsinfer
