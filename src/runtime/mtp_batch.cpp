#include "runtime/mtp_batch.h"

#include "core/error.h"

namespace dsinfer {

MtpBatch mtp_batch(const std::vector<MtpSeq>& seqs, int block_size) {
  MtpBatch m;
  ForwardBatch& b = m.batch;
  b.block_size = block_size;
  for (const MtpSeq& q : seqs) {
    Sequence& s = *q.seq;
    if (q.kept < 1) continue;
    const int end = q.first + q.kept;
    if (q.first < 0 || end >= static_cast<int>(s.tokens.size()))
      fail("MTP batch: positions ", q.first, "..", end - 1, " of request ", s.id,
           " need the tokens after them, and it has ", s.tokens.size());
    SeqSlice slice;
    slice.query_start = b.num_tokens();
    slice.query_len = q.kept;
    slice.context_len = end;
    slice.block_table = s.blocks;
    for (int p = q.first; p < end; ++p) {
      b.tokens.push_back(s.tokens[p + 1]);
      b.positions.push_back(p);
      b.slots.push_back(s.blocks.at(p / block_size) * block_size + p % block_size);
      m.hidden_rows.push_back(q.step_row + (p - q.first));
    }
    if (q.drafts) {
      b.logit_rows.push_back(b.num_tokens() - 1);
      m.drafting.push_back(&s);
    }
    b.seqs.push_back(std::move(slice));
  }
  return m;
}

MtpBatch mtp_chain_batch(const std::vector<Sequence*>& rows, int block_size) {
  MtpBatch m;
  ForwardBatch& b = m.batch;
  b.block_size = block_size;
  for (size_t r = 0; r < rows.size(); ++r) {
    Sequence* s = rows[r];
    if (!s || s->mtp_drafts.empty()) continue;
    const int p = static_cast<int>(s->tokens.size() + s->mtp_drafts.size()) - 2;
    if (p / block_size >= static_cast<int>(s->blocks.size())) continue;
    b.seqs.push_back(SeqSlice{b.num_tokens(), 1, p + 1, s->blocks});
    b.logit_rows.push_back(b.num_tokens());
    b.tokens.push_back(s->mtp_drafts.back());
    b.positions.push_back(p);
    b.slots.push_back(s->blocks[p / block_size] * block_size + p % block_size);
    m.hidden_rows.push_back(static_cast<int>(r));
    m.drafting.push_back(s);
  }
  return m;
}

}  // namespace dsinfer
