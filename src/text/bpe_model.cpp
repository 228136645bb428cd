#include "text/bpe_model.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "text/utf8.h"

namespace dsinfer {
namespace {

// Bounds the per-word cache (HF caps its cache too); words past the cap are merged each time.
constexpr size_t kCacheCapacity = 1 << 17;
constexpr size_t kMaxCachedWordBytes = 256;

std::string optional_string(const nlohmann::json& model, const char* key, const std::string& where) {
  if (!model.contains(key) || model[key].is_null()) return "";
  if (!model[key].is_string()) fail(where, ".", key, ": expected a string or null");
  return model[key];
}

bool optional_flag(const nlohmann::json& model, const char* key, const std::string& where) {
  if (!model.contains(key) || model[key].is_null()) return false;
  if (!model[key].is_boolean()) fail(where, ".", key, ": expected true, false or null");
  return model[key];
}

}  // namespace

BpeModel BpeModel::build(const nlohmann::json& model, const std::vector<std::pair<std::string, int>>& vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where) {
  if (!model.is_object()) fail(where, ": expected an object");
  std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") fail(where, ".type: unsupported model type '", type, "' (only BPE is supported)");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0)
    fail(where, ".dropout: BPE dropout is not supported for inference");
  BpeModel m;
  m.continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix", where);
  m.end_of_word_suffix_ = optional_string(model, "end_of_word_suffix", where);
  m.fuse_unk_ = optional_flag(model, "fuse_unk", where);
  m.byte_fallback_ = optional_flag(model, "byte_fallback", where);
  m.ignore_merges_ = optional_flag(model, "ignore_merges", where);
  m.load_vocab(vocab);
  std::string unk = optional_string(model, "unk_token", where);
  if (!unk.empty()) {
    auto id = m.token_to_id(unk);
    if (!id) fail(where, ".unk_token: '", unk, "' is not in the vocab");
    m.unk_id_ = *id;
  }
  m.load_merges(merges, where + ".merges");
  return m;
}

void BpeModel::load_vocab(const std::vector<std::pair<std::string, int>>& vocab) {
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab) vocab_.insert(token, id);
}

void BpeModel::load_merges(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where) {
  size_t capacity = 16;
  while (capacity < merges.size() * 2) capacity *= 2;
  merge_slots_.assign(capacity, {kEmptySlot, Merge{}});
  size_t prefix = continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    if (!ia || !ib) fail(where, "[", rank, "]: merge part '", ia ? b : a, "' is not in the vocab");
    if (b.size() < prefix) fail(where, "[", rank, "]: '", b, "' lacks the continuing_subword_prefix");
    std::string joined = a + b.substr(prefix);
    auto merged = vocab_.find(joined);
    if (!merged) fail(where, "[", rank, "]: merged token '", joined, "' is not in the vocab");
    // A repeated pair keeps its first (lowest) rank.
    uint64_t key = pair_key(*ia, *ib);
    size_t slot = merge_slot(key);
    if (merge_slots_[slot].first == kEmptySlot) merge_slots_[slot] = {key, Merge{static_cast<int>(rank), *merged}};
  }
}

std::optional<int> BpeModel::token_to_id(std::string_view token) const { return vocab_.find(token); }

const std::string* BpeModel::id_to_token(int id) const { return vocab_.token(id); }

size_t BpeModel::merge_slot(uint64_t key) const {
  size_t mask = merge_slots_.size() - 1;
  // Fibonacci hashing spreads the two packed ids over the table.
  for (size_t i = (key * 0x9E3779B97F4A7C15ull) >> 32 & mask;; i = (i + 1) & mask)
    if (merge_slots_[i].first == key || merge_slots_[i].first == kEmptySlot) return i;
}

const BpeModel::Merge* BpeModel::find_merge(int left, int right) const {
  if (merge_slots_.empty()) return nullptr;
  const auto& slot = merge_slots_[merge_slot(pair_key(left, right))];
  return slot.first == kEmptySlot ? nullptr : &slot.second;
}

// One symbol per character (with the subword prefix/suffix), falling back to byte tokens or
// the unknown token as HF does; characters with neither are dropped.
std::vector<int> BpeModel::initial_symbols(std::string_view word) const {
  std::vector<int> ids;
  bool last_was_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    size_t start = pos;
    utf8_next(word, pos);
    std::string piece(word.substr(start, pos - start));
    if (start > 0) piece = continuing_subword_prefix_ + piece;
    if (pos == word.size()) piece += end_of_word_suffix_;
    if (auto id = token_to_id(piece)) {
      ids.push_back(*id);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      std::vector<int> bytes;
      for (size_t i = start; i < pos; ++i) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(word[i]));
        if (auto id = token_to_id(name)) bytes.push_back(*id);
      }
      if (bytes.size() == pos - start) {
        ids.insert(ids.end(), bytes.begin(), bytes.end());
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_ && !(fuse_unk_ && last_was_unk)) ids.push_back(*unk_id_);
    last_was_unk = unk_id_.has_value();
  }
  return ids;
}

// HF's Word::merge_all: repeatedly apply the lowest-ranked merge present, leftmost first.
std::vector<int> BpeModel::merge_word(std::string_view word) const {
  struct Symbol {
    int id, prev, next;
    bool alive;
  };
  struct Candidate {
    int rank, pos, new_id;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int> ids = initial_symbols(word);
  int n = static_cast<int>(ids.size());
  std::vector<Symbol> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<Candidate> queue;
  auto consider = [&](int left) {
    int right = sym[left].next;
    if (right < 0) return;
    if (const Merge* m = find_merge(sym[left].id, sym[right].id)) queue.push({m->rank, left, m->new_id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[c.pos];
    // Skip candidates made stale by earlier merges.
    if (!left.alive || left.next < 0) continue;
    const Merge* m = find_merge(left.id, sym[left.next].id);
    if (!m || m->new_id != c.new_id) continue;
    Symbol& right = sym[left.next];
    right.alive = false;
    left.id = c.new_id;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  std::vector<int> out;
  for (int i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
  return out;
}

void BpeModel::encode_word(std::string_view word, std::vector<int>& out) const {
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  bool cacheable = word.size() <= kMaxCachedWordBytes;
  std::string key(word);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->ids.find(key);
    if (it != cache_->ids.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->ids.size() < kCacheCapacity) cache_->ids.emplace(std::move(key), std::move(ids));
  }
}

}  // namespace dsinfer
