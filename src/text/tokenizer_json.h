// Reading tokenizer.json in one pass. The BPE vocab and merges (nearly all of an 8-11 MB file)
// stream straight into flat lists instead of a JSON tree, which halves load time; the rest of
// the file becomes an ordinary JSON value.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace dsinfer {

struct TokenizerJson {
  nlohmann::json document;  // the file, less model.vocab and model.merges
  std::vector<std::pair<std::string, int>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // "a b" and ["a", "b"] alike
  bool has_vocab = false;
};

// Throws dsinfer::Error naming the file and, for bad entries, the JSON path.
TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace dsinfer
