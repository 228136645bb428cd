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
    if (e.kind == GrammarElement::Kind::End ||
        (e.kind == GrammarElement::Kind::Rule && (e.rule < 0 || e.rule >= num_rules())))
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

void Grammar::check() const {
  // Nullable rules (those that can match nothing), to a fixed point.
  std::vector<char> nullable(rules_.size(), 0);
  auto seq_nullable = [&](const Sequence& seq) {
    for (const GrammarElement& e : seq)
      if (e.kind == GrammarElement::Kind::Bytes || (e.kind == GrammarElement::Kind::Rule && !nullable[e.rule]))
        return false;
    return true;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!nullable[r] && std::any_of(rules_[r].begin(), rules_[r].end(), seq_nullable)) nullable[r] = changed = true;
  }
  // The rules each rule can reach before a byte: its alternatives' leading references, through
  // nullable ones. A cycle there is left recursion.
  std::vector<std::vector<int>> first(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r)
    for (const Sequence& seq : rules_[r])
      for (const GrammarElement& e : seq) {
        if (e.kind != GrammarElement::Kind::Rule) break;
        first[r].push_back(e.rule);
        if (!nullable[e.rule]) break;
      }
  std::vector<char> mark(rules_.size(), 0);  // 1: on the path, 2: done
  std::function<void(int)> visit = [&](int r) {
    mark[r] = 1;
    for (int next : first[r]) {
      if (mark[next] == 1)
        fail("grammar: rule ", next,
             " can reach itself before any byte (a schema that refers to itself, e.g. \"$ref\": \"#\", without a value "
             "in between)");
      if (mark[next] == 0) visit(next);
    }
    mark[r] = 2;
  };
  for (size_t r = 0; r < rules_.size(); ++r)
    if (mark[r] == 0) visit(static_cast<int>(r));
}

Grammar Grammar::with_leading_whitespace(int max) const {
  Grammar g = *this;
  int ws = g.add_rule();
  g.add_alternative(ws, {});
  for (int i = 0; i < max; ++i) {
    const int next = g.add_rule();
    g.add_alternative(next, {});
    g.add_alternative(next, {GrammarElement::bytes(" \t\n\r"), GrammarElement::ref(ws)});
    ws = next;
  }
  const int root = g.add_rule();
  g.add_alternative(root, {GrammarElement::ref(ws), GrammarElement::ref(root_)});
  g.set_root(root);
  return g;
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
  if (++expansions_ > kMaxExpansions || ends_.size() > kMaxStacks)
    fail("grammar: too ambiguous to follow (over ", kMaxExpansions, " expansions or ", kMaxStacks,
         " ways at one byte); a schema whose anyOf / oneOf branches overlap, nested, does this");
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
  next.expansions_ = 0;
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
