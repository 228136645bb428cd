// Grammar: a context-free grammar over bytes, in the shape of llama.cpp's GBNF: rules of
// alternatives, each a sequence of byte sets and rule references. GrammarState recognizes it one
// byte at a time the way llama.cpp does: it keeps every stack of rule positions the input so far
// could be in, so a prefix is accepted while any stack survives. Structured outputs (a JSON
// schema, JSON mode) compile to one of these (json_schema_grammar.h); the engine holds a request's
// tokens to it (runtime/output_grammar.h).
#pragma once
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace dsinfer {

struct GrammarElement {
  enum class Kind : uint8_t { Bytes, Rule, End };
  Kind kind = Kind::End;
  int rule = -1;                  // Rule: the rule it stands for
  std::array<uint64_t, 4> set{};  // Bytes: the bytes it matches, one bit each

  static GrammarElement bytes(std::string_view chars);  // any one of these bytes
  static GrammarElement range(uint8_t first, uint8_t last);
  static GrammarElement ref(int rule);
  bool matches(uint8_t b) const { return (set[b >> 6] >> (b & 63)) & 1; }
  GrammarElement& add(uint8_t first, uint8_t last);  // more bytes to a Bytes element
  GrammarElement& invert();                          // the bytes it did not match
};

class Grammar {
 public:
  using Sequence = std::vector<GrammarElement>;

  // A new rule with no alternatives yet; returns its id.
  int add_rule();
  // Adds an alternative to `rule` (empty: the rule may match nothing). Rules must not be left
  // recursive (a rule reached again before any byte is matched): the recognizer would not end.
  void add_alternative(int rule, Sequence seq);
  // A rule matching exactly `text`.
  int literal(std::string_view text);
  // Throws when a rule can reach itself before matching a byte (left recursion, e.g. a schema's
  // $ref to itself), which the recognizer could not expand. Compilers call it when done.
  void check() const;
  // The same grammar with up to `max` whitespace bytes allowed before its texts.
  Grammar with_leading_whitespace(int max) const;
  void set_root(int rule) { root_ = rule; }
  int root() const { return root_; }
  int num_rules() const { return static_cast<int>(rules_.size()); }
  // Each alternative of `rule`, its elements followed by an End.
  const std::vector<Sequence>& alternatives(int rule) const { return rules_.at(rule); }

 private:
  std::vector<std::vector<Sequence>> rules_;
  int root_ = 0;
};

// Where a recognizer is: every stack of positions (the element each open rule matches next, the
// innermost last) the bytes so far can have led to, stored back to back so that stepping into
// another state's storage allocates nothing once it has grown (the vocabulary walk of structured
// outputs takes a step for every trie node it visits).
class GrammarState {
 public:
  using Stack = std::vector<const GrammarElement*>;

  // At the start of the grammar's root rule. The grammar must outlive the state.
  explicit GrammarState(const Grammar& g);
  // Takes one byte; false (and the state unchanged) when no stack can.
  bool accept(uint8_t b);
  // Takes every byte, or none of them (false).
  bool accept(std::string_view bytes);
  // `next` becomes this state after byte b; false when no stack can take it (`next` is then
  // empty). `scratch` is working room, kept between calls.
  bool step(uint8_t b, GrammarState& next, Stack& scratch) const;
  // The bytes so far form a whole sentence of the grammar.
  bool complete() const;
  // Nothing may follow: complete, and no stack can take another byte.
  bool closed() const;
  bool dead() const { return ends_.empty(); }
  // The same stacks in the same order (states reached the same way compare equal).
  bool operator==(const GrammarState& o) const { return data_ == o.data_ && ends_ == o.ends_; }
  size_t hash() const;

 private:
  size_t begin(size_t i) const { return i == 0 ? 0 : ends_[i - 1]; }
  // Appends every stack `work` leads to whose top is a byte set (or that is empty), unless
  // already there; `work` is returned as it came.
  void expand(Stack& work);
  void push_unique(const Stack& work);

  // Expansions one step may take, and stacks a state may hold: an ambiguous grammar (a schema
  // with anyOf branches that overlap, nested) could otherwise take exponential time.
  static constexpr int kMaxExpansions = 1 << 16;
  static constexpr size_t kMaxStacks = 1024;
  int expansions_ = 0;

  const Grammar* g_ = nullptr;
  std::vector<const GrammarElement*> data_;  // the stacks, back to back, innermost position last
  std::vector<uint32_t> ends_;               // where each stack ends in data_
};

}  // namespace dsinfer
