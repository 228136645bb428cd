// Whole-model steps over a paged cache for model tests on any backend: the fixtures' reference
// sequences, and sequences growing in one cache step by step.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fixture_util.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace dsinfer::testing {

inline std::vector<std::vector<int>> fixture_sequences(const std::string& name) {
  std::vector<std::vector<int>> out;
  const nlohmann::json ref = fixture_ref(name);  // kept alive: the loop below iterates into it
  for (const auto& seq : ref["sequences"]) out.push_back(seq["input_ids"].get<std::vector<int>>());
  return out;
}

// Sequences growing in one paged cache, their blocks taken from the end of the pool so that
// tables are neither contiguous nor in order.
class PagedRunner {
 public:
  static constexpr int kBlock = 16;
  PagedRunner(Model& model, Backend& backend, int blocks)
      : model_(model), backend_(backend), cache_(backend, model.kv_spec(), blocks, kBlock), next_block_(blocks - 1) {}

  KvCache& cache() { return cache_; }

  // Appends tokens to each listed sequence in one forward pass; returns the logits of every new
  // token, in the order given, as rows of vocab floats.
  std::vector<float> step(const std::vector<std::pair<int, std::vector<int>>>& work) {
    ForwardBatch b;
    b.block_size = kBlock;
    for (const auto& [id, tokens] : work) {
      Seq& s = seqs_[id];
      SeqSlice slice;
      slice.query_start = b.num_tokens();
      slice.query_len = static_cast<int>(tokens.size());
      slice.context_len = s.length + slice.query_len;
      while (static_cast<int>(s.table.size()) * kBlock < slice.context_len) s.table.push_back(next_block_--);
      slice.block_table = s.table;
      for (int i = 0; i < slice.query_len; ++i) {
        const int pos = s.length + i;
        b.logit_rows.push_back(b.num_tokens());
        b.tokens.push_back(tokens[i]);
        b.positions.push_back(pos);
        b.slots.push_back(s.table[pos / kBlock] * kBlock + pos % kBlock);
      }
      s.length = slice.context_len;
      b.seqs.push_back(slice);
    }
    Tensor logits = model_.forward(b, cache_);
    std::vector<float> out(logits.numel());
    backend_.copy_to_host(logits, out.data());
    return out;
  }

 private:
  struct Seq {
    int length = 0;
    std::vector<int> table;
  };
  Model& model_;
  Backend& backend_;
  KvCache cache_;
  int next_block_;
  std::map<int, Seq> seqs_;
};

}  // namespace dsinfer::testing
