#include "runtime/engine/block_manager.h"

#include <algorithm>
#include <cassert>

namespace llmctl::engine {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), prefix_caching_(enable_prefix_caching), blocks_(static_cast<std::size_t>(num_blocks)) {
  for (int32_t i = 0; i < num_blocks; ++i) {
    blocks_[i].free_pos = free_.insert(free_.end(), i);
    blocks_[i].in_free_list = true;
  }
}

uint64_t BlockManager::chain_hash(uint64_t prev, const int32_t* tokens, int32_t n) {
  // splitmix64-style mixing of the previous hash and each token.
  uint64_t h = prev ^ 0x9e3779b97f4a7c15ull;
  for (int32_t i = 0; i < n; ++i) {
    h ^= static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
  }
  return h;
}

int32_t BlockManager::take_free_block() {
  const int32_t id = free_.front();
  free_.pop_front();
  Block& b = blocks_[id];
  b.in_free_list = false;
  if (b.hashed) {  // evict from the prefix cache
    auto it = cached_.find(b.hash);
    if (it != cached_.end() && it->second == id) cached_.erase(it);
    b.hashed = false;
    b.tokens.clear();
  }
  b.ref_count = 1;
  return id;
}

void BlockManager::release(int32_t id) {
  Block& b = blocks_[id];
  assert(b.ref_count > 0);
  if (--b.ref_count > 0) return;
  // Cached blocks go to the back (evicted last, least recently freed first);
  // plain ones to the front (reused first).
  b.free_pos = b.hashed ? free_.insert(free_.end(), id) : free_.insert(free_.begin(), id);
  b.in_free_list = true;
}

int32_t BlockManager::match_prefix(Sequence& seq) {
  assert(seq.block_table.empty());
  seq.num_computed_tokens = 0;
  seq.num_hashed_blocks = 0;
  seq.last_block_hash = 0;
  seq.num_cached_tokens = 0;
  if (!prefix_caching_) return 0;
  const int32_t max_blocks = (seq.num_tokens() - 1) / block_size_;
  uint64_t h = 0;
  for (int32_t i = 0; i < max_blocks; ++i) {
    const int32_t* tokens = seq.token_ids.data() + static_cast<std::ptrdiff_t>(i) * block_size_;
    h = chain_hash(h, tokens, block_size_);
    auto it = cached_.find(h);
    if (it == cached_.end()) break;
    Block& b = blocks_[it->second];
    if (!std::equal(b.tokens.begin(), b.tokens.end(), tokens)) break;
    if (b.in_free_list) {
      free_.erase(b.free_pos);
      b.in_free_list = false;
    }
    ++b.ref_count;
    seq.block_table.push_back(it->second);
    seq.num_hashed_blocks = i + 1;
    seq.last_block_hash = h;
  }
  seq.num_cached_tokens = seq.num_hashed_blocks * block_size_;
  seq.num_computed_tokens = seq.num_cached_tokens;
  if (seq.num_cached_tokens > 0) ++num_prefix_hits_;
  return seq.num_cached_tokens;
}

int32_t BlockManager::blocks_needed(const Sequence& seq, int32_t num_tokens) const {
  const int32_t want = (num_tokens + block_size_ - 1) / block_size_;
  return std::max(0, want - static_cast<int32_t>(seq.block_table.size()));
}

bool BlockManager::allocate(Sequence& seq, int32_t num_tokens) {
  const int32_t need = blocks_needed(seq, num_tokens);
  if (need > num_free_blocks()) return false;
  for (int32_t i = 0; i < need; ++i) seq.block_table.push_back(take_free_block());
  return true;
}

void BlockManager::commit_full_blocks(Sequence& seq) {
  if (!prefix_caching_) return;
  const int32_t full = std::min<int32_t>(seq.num_computed_tokens / block_size_,
                                         static_cast<int32_t>(seq.block_table.size()));
  for (int32_t i = seq.num_hashed_blocks; i < full; ++i) {
    const int32_t* tokens = seq.token_ids.data() + static_cast<std::ptrdiff_t>(i) * block_size_;
    const uint64_t h = chain_hash(seq.last_block_hash, tokens, block_size_);
    seq.last_block_hash = h;
    seq.num_hashed_blocks = i + 1;
    Block& b = blocks_[seq.block_table[i]];
    if (b.hashed || cached_.count(h) != 0) continue;  // already cached (another copy)
    b.hashed = true;
    b.hash = h;
    b.tokens.assign(tokens, tokens + block_size_);
    cached_[h] = seq.block_table[i];
  }
}

void BlockManager::free(Sequence& seq) {
  // Release tail first so that, among a sequence's blocks, the later ones are
  // evicted first (they are the least likely to be shared).
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) release(*it);
  seq.block_table.clear();
  seq.num_hashed_blocks = 0;
  seq.last_block_hash = 0;
}

}  // namespace llmctl::engine
