#include "text/tokenizer.h"

#include <unordered_map>

#include "core/error.h"
#include "io/model_dir.h"
#include "text/added_tokens.h"
#include "text/bpe_model.h"
#include "text/byte_level.h"
#include "text/json_util.h"
#include "text/normalizer.h"
#include "text/pre_tokenizer.h"
#include "text/tokenizer_json.h"
#include "text/utf8.h"

namespace dsinfer {

struct Tokenizer::Impl {
  BpeModel model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unordered_map<int, AddedToken> added_by_id;
  std::unordered_map<std::string, int> added_by_content;
  // HF matches tokens flagged `normalized` in the normalized text, the others in the raw text.
  AddedTokenMatcher raw_matcher;
  AddedTokenMatcher normalized_matcher;
  // What encode(add_special_tokens=true) puts around the text.
  std::vector<int> prefix_ids, suffix_ids;
  std::optional<std::string> bos_token, eos_token;
  int vocab_size = 0;

  void encode_plain(std::string_view text, std::vector<int>& out) const;
};

namespace {

// A special-token entry of tokenizer_config.json: a string, {"content": ...} or null.
std::optional<std::string> config_token(const nlohmann::json* cfg, const char* key) {
  if (!cfg || !cfg->is_object() || !cfg->contains(key)) return std::nullopt;
  const auto& v = (*cfg)[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  if (v.is_null()) return std::nullopt;
  fail("tokenizer_config.json: ", key, " must be a string, {\"content\": ...} or null");
}

void check_decoder(const nlohmann::json& decoder, const std::string& where) {
  if (decoder.is_object() && decoder.value("type", "") == "ByteLevel") return;
  if (decoder.is_object() && decoder.value("type", "") == "Sequence" && decoder.contains("decoders") &&
      decoder["decoders"].is_array() && decoder["decoders"].size() == 1) {
    check_decoder(decoder["decoders"][0], where + ".decoders[0]");
    return;
  }
  fail(where, ": unsupported decoder ", decoder.dump().substr(0, 200), " (only the ByteLevel decoder of byte-level BPE is supported)");
}

// The `single` template of a TemplateProcessing post-processor (found directly or inside a
// Sequence) gives the ids around the text; other post-processors only touch offsets.
bool read_template(const nlohmann::json& pp, const std::string& where, std::vector<int>& prefix,
                   std::vector<int>& suffix) {
  if (!pp.is_object()) return false;
  std::string type = pp.value("type", "");
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (size_t i = 0; i < pp["processors"].size(); ++i)
      if (read_template(pp["processors"][i], cat(where, ".processors[", i, "]"), prefix, suffix)) return true;
    return false;
  }
  if (type != "TemplateProcessing") return false;
  const auto& single = json_member(pp, "single");
  const auto& specials = json_member(pp, "special_tokens");
  if (!single.is_array()) fail(where, ".single: expected an array");
  bool seen_text = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const auto& item = single[i];
    if (item.contains("Sequence")) {
      seen_text = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
      fail(where, ".single[", i, "]: expected a Sequence or SpecialToken item");
    std::string name = item["SpecialToken"]["id"];
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
      fail(where, ".special_tokens: no ids for '", name, "'");
    auto& target = seen_text ? suffix : prefix;
    for (const auto& id : specials[name]["ids"]) target.push_back(id.get<int>());
  }
  return true;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path, const nlohmann::json* config) {
  TokenizerJson file = read_tokenizer_json(path);
  const nlohmann::json& j = file.document;
  if (!j.is_object()) fail("'", path, "' is not a JSON object (expected a tokenizer.json)");
  auto impl = std::make_shared<Impl>();
  std::string where = "'" + path + "'";
  if (!j.contains("model")) fail(where, ": missing \"model\"");
  if (!file.has_vocab) fail(where, " model.vocab: missing");
  impl->model = BpeModel::build(j["model"], file.vocab, file.merges, where + " model");
  impl->normalizer = Normalizer::from_json(json_member(j, "normalizer"), where + " normalizer");
  impl->pre_tokenizer = PreTokenizer::from_json(json_member(j, "pre_tokenizer"), where + " pre_tokenizer");
  check_decoder(json_member(j, "decoder"), where + " decoder");

  std::vector<AddedToken> raw, normalized;
  impl->vocab_size = impl->model.size();
  const auto& added = json_member(j, "added_tokens");
  if (!added.is_null() && !added.is_array()) fail(where, " added_tokens: expected an array");
  for (size_t i = 0; i < added.size(); ++i) {
    AddedToken t = AddedToken::from_json(added[i], cat(where, " added_tokens[", i, "]"));
    impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
    impl->added_by_content[t.content] = t.id;
    (t.normalized ? normalized : raw).push_back(t);
    impl->added_by_id[t.id] = std::move(t);
  }
  impl->raw_matcher = AddedTokenMatcher(raw);
  impl->normalized_matcher = AddedTokenMatcher(normalized);

  impl->bos_token = config_token(config, "bos_token");
  impl->eos_token = config_token(config, "eos_token");
  Tokenizer tok;
  tok.impl_ = impl;
  // transformers' add_bos_token / add_eos_token rebuild the post-processor; without them the
  // file's TemplateProcessing applies.
  bool has_flags = config && config->is_object() && (config->contains("add_bos_token") || config->contains("add_eos_token"));
  if (has_flags) {
    auto want = [&](const char* key) { return config->contains(key) && (*config)[key].is_boolean() && (*config)[key].get<bool>(); };
    if (want("add_bos_token") && tok.bos_id()) impl->prefix_ids.push_back(*tok.bos_id());
    if (want("add_eos_token") && tok.eos_id()) impl->suffix_ids.push_back(*tok.eos_id());
  } else {
    read_template(json_member(j, "post_processor"), where + " post_processor", impl->prefix_ids,
                  impl->suffix_ids);
  }
  return tok;
}

Tokenizer Tokenizer::from_model_dir(const ModelDir& dir) {
  if (!dir.tokenizer_json) fail("model directory '", dir.path, "' has no tokenizer.json");
  return load(*dir.tokenizer_json, dir.tokenizer_config ? &*dir.tokenizer_config : nullptr);
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int>& out) const {
  for (const std::string& word : pre_tokenizer.split(text)) model.encode_word(word, out);
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<int> ids;
  if (add_special_tokens) ids = m.prefix_ids;
  for (const TextSegment& seg : m.raw_matcher.split(text)) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
      continue;
    }
    std::string norm = m.normalizer.apply(text.substr(seg.start, seg.end - seg.start));
    for (const TextSegment& sub : m.normalized_matcher.split(norm)) {
      if (sub.token_id >= 0) ids.push_back(sub.token_id);
      else m.encode_plain(std::string_view(norm).substr(sub.start, sub.end - sub.start), ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), m.suffix_ids.begin(), m.suffix_ids.end());
  return ids;
}

// As HF: every token's string, added tokens included, goes through the ByteLevel decoder
// (a string with a code point outside the byte alphabet passes as its UTF-8 bytes), and the
// joined bytes are decoded once with invalid UTF-8 replaced.
std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes += token_text(id);
  }
  return utf8_lossy(bytes);
}

std::string Tokenizer::token_text(int id) const {
  auto added = impl_->added_by_id.find(id);
  if (added != impl_->added_by_id.end()) return byte_level_decode(added->second.content);
  const std::string* token = impl_->model.id_to_token(id);
  return token ? byte_level_decode(*token) : std::string();
}

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model.token_to_id(token);
}

bool Tokenizer::is_special(int id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && it->second.special;
}

int Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int> Tokenizer::bos_id() const {
  return impl_->bos_token ? token_to_id(*impl_->bos_token) : std::nullopt;
}

std::optional<int> Tokenizer::eos_id() const {
  return impl_->eos_token ? token_to_id(*impl_->eos_token) : std::nullopt;
}

std::optional<std::string> Tokenizer::bos_token() const { return impl_->bos_token; }
std::optional<std::string> Tokenizer::eos_token() const { return impl_->eos_token; }

}  // namespace dsinfer
