// The paged KV cache's bookkeeping: which blocks are free, who references
// each, and the prefix cache (full blocks found again by a chain hash of their
// tokens and of every token before them). Blocks whose last reference goes
// away stay cached until evicted, least recently freed first; blocks without
// a hash are reused before cached ones.
//
// Touched only by the Scheduler on the engine thread.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "runtime/engine/sequence.h"

namespace llmctl::engine {

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  // Blocks that can be handed out now (free, cached-but-unreferenced included).
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_.size()); }

  // For a sequence with no blocks: attaches the cached blocks of its longest
  // cached prefix of full blocks (never the whole sequence: at least one token
  // is left to compute, for its logits). Sets num_computed_tokens and
  // num_cached_tokens; returns the tokens reused.
  int32_t match_prefix(Sequence& seq);

  // Extra blocks the sequence needs to hold `num_tokens` tokens.
  int32_t blocks_needed(const Sequence& seq, int32_t num_tokens) const;

  // Grows the block table to hold `num_tokens` tokens. False, changing
  // nothing, when too few blocks are free.
  bool allocate(Sequence& seq, int32_t num_tokens);

  // Registers the blocks filled up to num_computed_tokens in the prefix cache.
  void commit_full_blocks(Sequence& seq);

  // Drops the sequence's references; its table is cleared.
  void free(Sequence& seq);

  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }
  uint64_t num_prefix_hits() const { return num_prefix_hits_; }

 private:
  struct Block {
    int32_t ref_count = 0;
    bool hashed = false;
    uint64_t hash = 0;
    std::vector<int32_t> tokens;  // for hashed blocks: guards against collisions
    std::list<int32_t>::iterator free_pos;
    bool in_free_list = false;
  };

  static uint64_t chain_hash(uint64_t prev, const int32_t* tokens, int32_t n);
  int32_t take_free_block();
  void release(int32_t block);

  int32_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_;  // front: next to hand out
  std::unordered_map<uint64_t, int32_t> cached_;  // chain hash -> block
  uint64_t num_prefix_hits_ = 0;
};

}  // namespace llmctl::engine
