// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json, encoding and decoding
// exactly as the HF `tokenizers` library does (added tokens, normalizer, pre-tokenizer, BPE,
// ByteLevel decoder), plus the BOS/EOS handling of tokenizer_config.json.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

struct ModelDir;

class Tokenizer {
 public:
  // Loads tokenizer.json; `tokenizer_config` (may be null) supplies bos_token, eos_token and
  // add_bos_token / add_eos_token. Throws dsinfer::Error naming the file and JSON path.
  static Tokenizer load(const std::string& tokenizer_json_path, const nlohmann::json* tokenizer_config);
  // The tokenizer of a model directory; throws when it has no tokenizer.json.
  static Tokenizer from_model_dir(const ModelDir& dir);

  // Token ids of `text`. Added/special tokens written in the text are always recognised;
  // `add_special_tokens` adds what the post-processor or add_bos_token adds (e.g. BOS).
  std::vector<int> encode(std::string_view text, bool add_special_tokens) const;
  // Text of `ids`; ids the tokenizer does not know are skipped (as HF does), invalid UTF-8
  // becomes U+FFFD.
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens) const;

  // The bytes one token stands for in decode() (may be part of a UTF-8 character); empty
  // for unknown ids.
  std::string token_text(int id) const;
  // The id of a token given as written in the vocab (byte-level form) or as added-token text.
  std::optional<int> token_to_id(std::string_view token) const;
  bool is_special(int id) const;
  // One past the largest id, added tokens included.
  int vocab_size() const;
  std::optional<int> bos_id() const;
  std::optional<int> eos_id() const;
  // The bos_token / eos_token strings of tokenizer_config.json, when set.
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace dsinfer
