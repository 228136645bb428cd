#include "text/grammar.h"

#include <algorithm>

#include "core/error.h"

namespace dsinfer {

GrammarElement GrammarElement::bytes(std::string_view chars) {
  GrammarElement e;
  e.kind = Kind::Bytes;
  for (char c : chars) e.add(static_cast<uint8_t>(c), static_cast<uint8_t>(c));
  return e;
}

GrammarElement GrammarElement::range(uint8_t first, uint8_t last) {
  GrammarElement e;
  e.kind = Kind::Bytes;
  return e.add(first, last);
}

GrammarElement GrammarElement::ref(int rule) {
  GrammarElement e;
  e.kind = Kind::Rule;
  e.rule = rule;
  return e;
}

GrammarElement& GrammarElement::add(uint8_t first, uint8_t last) {
  for (int b = first; b <= last; ++b) set[b >> 6] |= uint64_t{1} << (b & 63);
  return *this;
}

GrammarElement& GrammarElement::invert() {
  for (uint64_t& w : set) w = ~w;
  return *this;
}

int Grammar::add_rule() {
  rules_.emplace_back();
  return static_cast<int>(rules_.size()) - 1;
}

void Grammar::add_alternative(int rule, Sequence seq) {
  for (const GrammarElement& e : seq)
    if (e.kind == GrammarElement::Kind::End || (e.kind == GrammarElement::Kind::Rule && (e.rule < 0 || e.rule >= num_rules())))
      fail("grammar: rule ", rule, " refers to a rule that does not exist");
  seq.push_back(GrammarElement{});  // End
  rules_.at(rule).push_back(std::move(seq));
}

int Grammar::literal(std::string_view text) {
  Sequence seq;
  for (char c : text) seq.push_back(GrammarElement::bytes(std::string_view(&c, 1)));
  const int r = add_rule();
  add_alternative(r, std::move(seq));
  return r;
}

GrammarState::GrammarState(const Grammar& g) : g_(&g) {
  for (const Grammar::Sequence& alt : g.alternatives(g.root())) expand(Stack{&alt[0]}, stacks_);
  normalize(stacks_);
}

// An element's position is a pointer into its alternative, so the next one is the pointer + 1;
// every alternative ends with an End, where its rule returns to the position below it.
void GrammarState::expand(Stack s, std::vector<Stack>& out) const {
  while (!s.empty() && s.back()->kind == GrammarElement::Kind::End) s.pop_back();
  if (s.empty() || s.back()->kind == GrammarElement::Kind::Bytes) {
    out.push_back(std::move(s));
    return;
  }
  const GrammarElement* ref = s.back();
  s.pop_back();
  // What follows the reference, unless its alternative ends there (a tail call keeps the stack short).
  if ((ref + 1)->kind != GrammarElement::Kind::End) s.push_back(ref + 1);
  for (const Grammar::Sequence& alt : g_->alternatives(ref->rule)) {
    Stack t = s;
    t.push_back(&alt[0]);
    expand(std::move(t), out);
  }
}

void GrammarState::normalize(std::vector<Stack>& stacks) const {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
}

bool GrammarState::accept(uint8_t b) {
  std::vector<Stack> next;
  for (const Stack& s : stacks_) {
    if (s.empty() || !s.back()->matches(b)) continue;
    Stack t = s;
    t.back() = s.back() + 1;
    expand(std::move(t), next);
  }
  if (next.empty()) return false;
  normalize(next);
  stacks_ = std::move(next);
  return true;
}

bool GrammarState::accept(std::string_view bytes) {
  GrammarState copy = *this;
  for (char c : bytes)
    if (!copy.accept(static_cast<uint8_t>(c))) return false;
  *this = std::move(copy);
  return true;
}

bool GrammarState::complete() const {
  return std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

bool GrammarState::closed() const {
  return !stacks_.empty() && std::all_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

}  // namespace dsinfer
