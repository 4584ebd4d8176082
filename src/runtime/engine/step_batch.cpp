#include "runtime/engine/step_batch.h"

#include <algorithm>
#include <cstring>

namespace llmctl::engine {

StepBatch StepBatch::from_schedule(const SchedulerOutput& out, int32_t bs) {
  StepBatch b;
  const auto num_seqs = static_cast<int32_t>(out.scheduled.size());
  for (const auto& s : out.scheduled) {
    b.max_blocks_per_seq = std::max<int32_t>(b.max_blocks_per_seq, static_cast<int32_t>(s.seq->block_table.size()));
  }
  b.query_start.push_back(0);
  b.block_tables.assign(static_cast<std::size_t>(num_seqs) * b.max_blocks_per_seq, 0);
  for (int32_t i = 0; i < num_seqs; ++i) {
    const ScheduledSequence& s = out.scheduled[i];
    const Sequence& seq = *s.seq;
    for (int32_t p = seq.num_computed_tokens; p < seq.num_computed_tokens + s.num_new_tokens; ++p) {
      b.token_ids.push_back(seq.token_ids[p]);
      b.positions.push_back(p);
      b.slot_mapping.push_back(seq.block_table[p / bs] * bs + p % bs);
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_len.push_back(seq.num_computed_tokens + s.num_new_tokens);
    std::copy(seq.block_table.begin(), seq.block_table.end(),
              b.block_tables.begin() + static_cast<std::ptrdiff_t>(i) * b.max_blocks_per_seq);
    if (s.sample) b.logits_indices.push_back(b.query_start.back() - 1);
  }
  return b;
}

namespace {

constexpr int kNumVectors = 7;

// The batch's vectors in wire order (const or not).
template <class Batch>
auto vectors_of(Batch& b, int i) {
  decltype(&b.token_ids) all[kNumVectors] = {&b.token_ids,   &b.positions,    &b.slot_mapping, &b.query_start,
                                             &b.context_len, &b.block_tables, &b.logits_indices};
  return all[i];
}

}  // namespace

// Layout, int32 words in host byte order (ranks run the same binary on the
// same architecture): kind, num_blocks, block_size, max_num_seqs,
// max_model_len, max_blocks_per_seq, greedy (0 or 1), then the seven vector
// sizes, then their elements in that order.
std::string RankMessage::encode() const {
  const StepBatch& b = batch;
  std::vector<int32_t> words = {static_cast<int32_t>(kind), num_blocks,           block_size,      max_num_seqs,
                                max_model_len,             b.max_blocks_per_seq, b.greedy ? 1 : 0};
  for (int i = 0; i < kNumVectors; ++i) words.push_back(static_cast<int32_t>(vectors_of(b, i)->size()));
  for (int i = 0; i < kNumVectors; ++i) words.insert(words.end(), vectors_of(b, i)->begin(), vectors_of(b, i)->end());
  std::string bytes(words.size() * sizeof(int32_t), '\0');
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

Result<RankMessage> RankMessage::decode(const std::string& bytes) {
  constexpr std::size_t kFixedWords = 7;
  constexpr std::size_t kHeaderWords = kFixedWords + kNumVectors;
  if (bytes.size() % sizeof(int32_t) != 0 || bytes.size() < kHeaderWords * sizeof(int32_t)) {
    return Status::invalid_argument("rank message of " + std::to_string(bytes.size()) + " bytes is malformed");
  }
  std::vector<int32_t> words(bytes.size() / sizeof(int32_t));
  std::memcpy(words.data(), bytes.data(), bytes.size());
  RankMessage m;
  if (words[0] < 1 || words[0] > 4) {
    return Status::invalid_argument("rank message of unknown kind " + std::to_string(words[0]));
  }
  m.kind = static_cast<Kind>(words[0]);
  m.num_blocks = words[1];
  m.block_size = words[2];
  m.max_num_seqs = words[3];
  m.max_model_len = words[4];
  m.batch.max_blocks_per_seq = words[5];
  if (words[6] != 0 && words[6] != 1) {
    return Status::invalid_argument("rank message: greedy flag " + std::to_string(words[6]) + " is neither 0 nor 1");
  }
  m.batch.greedy = words[6] == 1;
  std::size_t pos = kHeaderWords;
  for (int i = 0; i < kNumVectors; ++i) {
    const int32_t n = words[kFixedWords + static_cast<std::size_t>(i)];
    if (n < 0 || pos + static_cast<std::size_t>(n) > words.size()) {
      return Status::invalid_argument("rank message: vector " + std::to_string(i) + " of " + std::to_string(n) +
                                      " elements runs past the " + std::to_string(bytes.size()) + " bytes received");
    }
    vectors_of(m.batch, i)->assign(words.begin() + static_cast<std::ptrdiff_t>(pos),
                                   words.begin() + static_cast<std::ptrdiff_t>(pos) + n);
    pos += static_cast<std::size_t>(n);
  }
  if (pos != words.size()) return Status::invalid_argument("rank message has trailing bytes");
  return m;
}

}  // namespace llmctl::engine
