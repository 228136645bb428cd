#include "text/tokenizer_json.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dsinfer {
namespace {

using json = nlohmann::json;

// A SAX handler that builds the document tree, except inside model.vocab / model.merges.
class Reader : public nlohmann::json_sax<json> {
 public:
  Reader(TokenizerJson& out, std::string where) : out_(out), where_(std::move(where)) {}

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool string(string_t& v) override {
    if (top().section == Section::Merges) return merge_string(v);
    if (top().section == Section::MergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { fail(where_, ": unexpected binary value"); }

  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override {
    if (top().section == Section::MergePair) {
      if (pair_.size() != 2) bad_merge();
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      pair_.clear();
    }
    return close();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail("malformed JSON in ", where_, ": ", e.what());
  }

 private:
  enum class Section { Tree, Vocab, Merges, MergePair };
  struct Frame {
    json* node;  // the container being filled (null inside a streamed section)
    Section section;
    std::string key;  // the key this container sits under in its parent
  };

  Frame& top() { return frames_.back(); }

  // Where a new value or container goes, for the tree part.
  json* place(json v) {
    if (frames_.empty()) {
      out_.document = std::move(v);
      return &out_.document;
    }
    json& parent = *top().node;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[key_] = std::move(v));
  }

  bool in_model() const { return frames_.size() == 2 && frames_[1].key == "model" && frames_[0].node->is_object(); }

  bool value(json v) {
    if (frames_.empty() || top().section == Section::Tree) {
      if (in_model() && (key_ == "vocab" || key_ == "merges"))
        fail(where_, " model.", key_, ": expected ", key_ == "vocab" ? "an object of token -> id" : "an array");
      place(std::move(v));
      return true;
    }
    if (top().section == Section::Vocab) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 30))
        fail(where_, " model.vocab[\"", key_, "\"]: expected a non-negative integer id");
      out_.vocab.emplace_back(std::move(key_), v.get<int>());
      return true;
    }
    bad_merge();
  }

  bool open(bool is_array) {
    if (!frames_.empty() && top().section == Section::Vocab) fail(where_, " model.vocab[\"", key_, "\"]: expected a non-negative integer id");
    if (!frames_.empty() && top().section == Section::MergePair) bad_merge();
    if (!frames_.empty() && top().section == Section::Merges) {
      if (!is_array) bad_merge();
      frames_.push_back({nullptr, Section::MergePair, ""});
      return true;
    }
    if (in_model() && key_ == "vocab") {
      if (is_array) fail(where_, " model.vocab: expected an object of token -> id");
      out_.has_vocab = true;
      frames_.push_back({nullptr, Section::Vocab, key_});
      return true;
    }
    if (in_model() && key_ == "merges") {
      if (!is_array) fail(where_, " model.merges: expected an array");
      frames_.push_back({nullptr, Section::Merges, key_});
      return true;
    }
    std::string under = frames_.empty() || top().node->is_array() ? "" : key_;
    json* node = place(is_array ? json::array() : json::object());
    frames_.push_back({node, Section::Tree, under});
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  // Older files write a merge as "a b".
  bool merge_string(const std::string& s) {
    size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      fail(where_, " model.merges[", out_.merges.size(), "]: expected \"a b\", got \"", s, "\"");
    out_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    return true;
  }

  [[noreturn]] void bad_merge() {
    fail(where_, " model.merges[", out_.merges.size(), "]: expected \"a b\" or [\"a\", \"b\"]");
  }

  TokenizerJson& out_;
  std::string where_;
  std::vector<Frame> frames_;
  std::string key_;
  std::vector<std::string> pair_;
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  TokenizerJson out;
  Reader reader(out, "'" + path + "'");
  json::sax_parse(ss.str(), &reader);
  return out;
}

}  // namespace dsinfer
