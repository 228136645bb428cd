// Added tokens (the `added_tokens` of tokenizer.json) and how HF finds them in text:
// leftmost-longest matching, with each token's single_word / lstrip / rstrip flags.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

struct AddedToken {
  int id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;

  static AddedToken from_json(const nlohmann::json& j, const std::string& where);
};

// A piece of text: either an added token (token_id >= 0) or plain text to tokenize.
struct TextSegment {
  size_t start, end;
  int token_id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  bool empty() const { return nodes_.size() <= 1; }
  // Splits `text` into added-token and plain segments covering it in order; plain segments
  // are never empty.
  std::vector<TextSegment> split(std::string_view text) const;

 private:
  // A byte trie; a node's `token` indexes tokens_ when a token ends there.
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;  // sorted by byte
    int token = -1;
  };
  int child(int node, unsigned char byte) const;
  // The longest token starting at `pos`, as an index into tokens_, or -1.
  int longest_at(std::string_view text, size_t pos, size_t* end) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_{Node{}};
};

}  // namespace dsinfer
