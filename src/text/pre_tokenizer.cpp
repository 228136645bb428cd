#include "text/pre_tokenizer.h"

#include "core/error.h"
#include "text/byte_level.h"
#include "text/json_util.h"
#include "text/regex.h"

namespace dsinfer {
namespace {

// GPT-2's word regex: what ByteLevel splits with when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_behavior(const nlohmann::json& j, const std::string& where) {
  std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail(where, ".behavior: unknown split behavior ", j.dump());
}

struct Span {
  size_t start, end;
  bool is_match;
};

// Applies a split behavior to spans that cover the piece, as HF's
// NormalizedString::split does; the returned spans are the new pieces.
std::vector<Span> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      return spans;
    case SplitBehavior::Removed:
      for (const Span& s : spans)
        if (!s.is_match) out.push_back(s);
      return out;
    case SplitBehavior::MergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) out.back().end = s.end;
        else out.push_back(s);
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) out.back().start = it->start;
        else out.push_back(*it);
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
    case SplitBehavior::Contiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) out.back().end = s.end;
        else out.push_back(s);
        previous_match = s.is_match;
      }
      return out;
  }
  return out;
}

// Turns match ranges into spans covering the whole piece (matches flagged).
std::vector<Span> cover(const std::vector<std::pair<size_t, size_t>>& matches, size_t size, bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [start, end] : matches) {
    if (prev != start) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev != size) spans.push_back({prev, size, invert});
  return spans;
}

void emit(std::string_view piece, const std::vector<Span>& spans, std::vector<std::string>& out) {
  for (const Span& s : spans)
    if (s.end > s.start) out.emplace_back(piece.substr(s.start, s.end - s.start));
}

class RegexSplit : public PreTokenizeStep {
 public:
  RegexSplit(Regex regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void apply(std::string_view piece, std::vector<std::string>& out) const override {
    emit(piece, apply_behavior(cover(regex_.find_all(piece), piece.size(), invert_), behavior_), out);
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class StringSplit : public PreTokenizeStep {
 public:
  StringSplit(std::string literal, SplitBehavior behavior, bool invert)
      : literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void apply(std::string_view piece, std::vector<std::string>& out) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    for (size_t pos = piece.find(literal_); !literal_.empty() && pos != std::string_view::npos;
         pos = piece.find(literal_, pos + literal_.size()))
      matches.emplace_back(pos, pos + literal_.size());
    emit(piece, apply_behavior(cover(matches, piece.size(), invert_), behavior_), out);
  }

 private:
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

// ByteLevel: optional leading space, optional GPT-2 word split, then every byte mapped to
// its printable code point.
class ByteLevelStep : public PreTokenizeStep {
 public:
  ByteLevelStep(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where);
  }
  void apply(std::string_view piece, std::vector<std::string>& out) const override {
    std::string text(piece);
    if (add_prefix_space_ && (text.empty() || text[0] != ' ')) text.insert(text.begin(), ' ');
    if (!regex_) {
      out.push_back(byte_level_encode(text));
      return;
    }
    for (const Span& s : cover(regex_->find_all(text), text.size(), false))
      if (s.end > s.start) out.push_back(byte_level_encode(std::string_view(text).substr(s.start, s.end - s.start)));
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

bool flag(const nlohmann::json& spec, const char* key, bool fallback, const std::string& where) {
  if (!spec.contains(key) || spec[key].is_null()) return fallback;
  if (!spec[key].is_boolean()) fail(where, ".", key, ": expected true or false");
  return spec[key].get<bool>();
}

std::shared_ptr<const PreTokenizeStep> make_split(const nlohmann::json& spec, const std::string& where) {
  SplitBehavior behavior = parse_behavior(json_member(spec, "behavior"), where);
  bool invert = flag(spec, "invert", false, where);
  const auto& pattern = json_member(spec, "pattern");
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string())
    return std::make_shared<RegexSplit>(Regex(pattern["Regex"], where + ".pattern.Regex"), behavior, invert);
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string())
    return std::make_shared<StringSplit>(pattern["String"], behavior, invert);
  fail(where, ".pattern: expected {\"Regex\": ...} or {\"String\": ...}");
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& spec, const std::string& where) {
  PreTokenizer p;
  if (!spec.is_null()) p.add(spec, where);
  return p;
}

void PreTokenizer::add(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    fail(where, ": expected an object with a string \"type\"");
  std::string type = spec["type"];
  if (type == "Sequence") {
    const auto& list = json_member(spec, "pretokenizers");
    if (!list.is_array()) fail(where, ".pretokenizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], cat(where, ".pretokenizers[", i, "]"));
  } else if (type == "Split") {
    steps_.push_back(make_split(spec, where));
  } else if (type == "Digits") {
    // Digits is a split on numeric characters: each alone, or runs kept together.
    bool individual = flag(spec, "individual_digits", false, where);
    steps_.push_back(std::make_shared<RegexSplit>(Regex(individual ? R"(\p{N})" : R"(\p{N}+)", where),
                                                  SplitBehavior::Isolated, false));
  } else if (type == "ByteLevel") {
    steps_.push_back(std::make_shared<ByteLevelStep>(flag(spec, "add_prefix_space", true, where),
                                                     flag(spec, "use_regex", true, where), where));
  } else {
    fail(where, ": unsupported pre_tokenizer type '", type, "' (supported: Sequence, Split, Digits, ByteLevel)");
  }
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.emplace_back(text);
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    next.reserve(pieces.size() * 2);
    for (const std::string& p : pieces) step->apply(p, next);
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace dsinfer
