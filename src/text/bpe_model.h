// The BPE `model` of tokenizer.json: vocab, ranked merges, and the merge loop for one word.
#pragma once
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/token_index.h"

namespace dsinfer {

class BpeModel {
 public:
  // Builds the model from its options (`model` of tokenizer.json, type BPE, read without its
  // vocab and merges) and the vocab and merges in file order. `where` names the file and
  // JSON path for errors.
  static BpeModel build(const nlohmann::json& model, const std::vector<std::pair<std::string, int>>& vocab,
                        const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where);

  // Appends the ids of one pre-tokenized word. Results are cached per word, so repeated
  // words cost one hash lookup; safe to call from several threads.
  void encode_word(std::string_view word, std::vector<int>& out) const;

  std::optional<int> token_to_id(std::string_view token) const;
  // The vocab string of `id`, or nullptr when the model has no such id.
  const std::string* id_to_token(int id) const;
  // One past the largest id of the vocab.
  int size() const { return vocab_.size(); }

 private:
  struct Merge {
    int rank;
    int new_id;
  };
  static uint64_t pair_key(int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static constexpr uint64_t kEmptySlot = ~uint64_t(0);
  size_t merge_slot(uint64_t key) const;

  void load_vocab(const std::vector<std::pair<std::string, int>>& vocab);
  void load_merges(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where);
  std::vector<int> initial_symbols(std::string_view word) const;
  std::vector<int> merge_word(std::string_view word) const;

  // The merge of a pair of ids, if any.
  const Merge* find_merge(int left, int right) const;

  TokenIndex vocab_;
  // Open addressing on the pair key; a key of ~0 marks an empty slot.
  std::vector<std::pair<uint64_t, Merge>> merge_slots_;
  std::optional<int> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;

  // Behind a pointer so the model stays movable (a mutex is not).
  struct WordCache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> ids;
  };
  std::unique_ptr<WordCache> cache_ = std::make_unique<WordCache>();
};

}  // namespace dsinfer
