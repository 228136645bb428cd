#include "text/grammar.h"

#include <algorithm>
#include <functional>

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
  Stack work;
  for (const Grammar::Sequence& alt : g.alternatives(g.root())) {
    work.assign(1, &alt[0]);
    expand(work);
  }
}

void GrammarState::push_unique(const Stack& work) {
  for (size_t i = 0; i < ends_.size(); ++i) {
    const size_t b = begin(i);
    if (ends_[i] - b == work.size() && std::equal(work.begin(), work.end(), data_.begin() + b)) return;
  }
  data_.insert(data_.end(), work.begin(), work.end());
  ends_.push_back(static_cast<uint32_t>(data_.size()));
}

// An element's position is a pointer into its alternative, so the next one is the pointer + 1;
// every alternative ends with an End, where its rule returns to the position below it.
void GrammarState::expand(Stack& work) {
  if (!work.empty() && work.back()->kind == GrammarElement::Kind::End) {
    const GrammarElement* end = work.back();
    work.pop_back();
    expand(work);
    work.push_back(end);
    return;
  }
  if (work.empty() || work.back()->kind == GrammarElement::Kind::Bytes) {
    push_unique(work);
    return;
  }
  const GrammarElement* ref = work.back();
  work.pop_back();
  // What follows the reference, unless its alternative ends there (a tail call keeps the stack short).
  const bool more = (ref + 1)->kind != GrammarElement::Kind::End;
  if (more) work.push_back(ref + 1);
  for (const Grammar::Sequence& alt : g_->alternatives(ref->rule)) {
    work.push_back(&alt[0]);
    expand(work);
    work.pop_back();
  }
  if (more) work.pop_back();
  work.push_back(ref);
}

bool GrammarState::step(uint8_t b, GrammarState& next, Stack& scratch) const {
  next.g_ = g_;
  next.data_.clear();
  next.ends_.clear();
  for (size_t i = 0; i < ends_.size(); ++i) {
    const size_t first = begin(i), end = ends_[i];
    if (first == end || !data_[end - 1]->matches(b)) continue;
    scratch.assign(data_.begin() + first, data_.begin() + end);
    scratch.back() += 1;
    next.expand(scratch);
  }
  return !next.ends_.empty();
}

bool GrammarState::accept(uint8_t b) {
  GrammarState next(*this);
  Stack scratch;
  if (!step(b, next, scratch)) return false;
  *this = std::move(next);
  return true;
}

bool GrammarState::accept(std::string_view bytes) {
  GrammarState cur = *this, next = *this;
  Stack scratch;
  for (char c : bytes) {
    if (!cur.step(static_cast<uint8_t>(c), next, scratch)) return false;
    std::swap(cur, next);
  }
  *this = std::move(cur);
  return true;
}

size_t GrammarState::hash() const {
  size_t h = ends_.size();
  for (const GrammarElement* e : data_) h = h * 1000003 ^ std::hash<const void*>()(e);
  for (uint32_t e : ends_) h = h * 1000003 ^ e;
  return h;
}

bool GrammarState::complete() const {
  for (size_t i = 0; i < ends_.size(); ++i)
    if (begin(i) == ends_[i]) return true;
  return false;
}

bool GrammarState::closed() const {
  if (ends_.empty()) return false;
  for (size_t i = 0; i < ends_.size(); ++i)
    if (begin(i) != ends_[i]) return false;
  return true;
}

}  // namespace dsinfer
