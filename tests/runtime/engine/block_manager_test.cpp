// BlockManager on its own: reference counts, out-of-blocks, prefix-hash
// reuse (chained: a block matches only after the same earlier blocks), LRU
// eviction of unreferenced cached blocks, freeing.
#include <doctest/doctest.h>

#include <algorithm>

#include "runtime/engine/block_manager.h"

using namespace llmctl::engine;

namespace {

Sequence seq_of(std::vector<int32_t> tokens) {
  Sequence s;
  s.token_ids = std::move(tokens);
  s.num_prompt_tokens = s.num_tokens();
  return s;
}

// Allocates and "computes" the whole sequence, registering its full blocks.
void compute(BlockManager& bm, Sequence& s) {
  REQUIRE(bm.allocate(s, s.num_tokens()));
  s.num_computed_tokens = s.num_tokens();
  bm.commit_full_blocks(s);
}

}  // namespace

TEST_CASE("block manager: allocation, reference counts, out of blocks, free") {
  BlockManager bm(5, 4, false);
  CHECK(bm.num_free_blocks() == 5);
  Sequence a = seq_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(bm.blocks_needed(a, 10) == 3);
  REQUIRE(bm.allocate(a, 10));
  CHECK(a.block_table.size() == 3);
  CHECK(bm.num_free_blocks() == 2);
  for (int32_t b : a.block_table) CHECK(bm.ref_count(b) == 1);
  CHECK(bm.blocks_needed(a, 12) == 0);  // the third block has room
  CHECK(bm.blocks_needed(a, 13) == 1);

  Sequence b = seq_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK_FALSE(bm.allocate(b, 12));  // needs 3, 2 free: nothing changes
  CHECK(b.block_table.empty());
  CHECK(bm.num_free_blocks() == 2);
  REQUIRE(bm.allocate(b, 8));
  CHECK(bm.num_free_blocks() == 0);
  CHECK_FALSE(bm.allocate(a, 13));

  // Blocks are distinct and freeing gives all back at once.
  std::vector<int32_t> all = a.block_table;
  all.insert(all.end(), b.block_table.begin(), b.block_table.end());
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  bm.free(a);
  CHECK(a.block_table.empty());
  CHECK(bm.num_free_blocks() == 3);
  bm.free(b);
  CHECK(bm.num_free_blocks() == 5);
  for (int32_t i = 0; i < 5; ++i) CHECK(bm.ref_count(i) == 0);
}

TEST_CASE("block manager: prefix hits share full blocks and count references") {
  BlockManager bm(8, 4, true);
  Sequence a = seq_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(bm.match_prefix(a) == 0);
  compute(bm, a);
  const std::vector<int32_t> a_blocks = a.block_table;

  // Same first 8 tokens: the two full blocks are shared while a still runs.
  Sequence b = seq_of({1, 2, 3, 4, 5, 6, 7, 8, 42});
  CHECK(bm.match_prefix(b) == 8);
  CHECK(b.num_computed_tokens == 8);
  CHECK(b.num_cached_tokens == 8);
  REQUIRE(b.block_table.size() == 2);
  CHECK(b.block_table[0] == a_blocks[0]);
  CHECK(b.block_table[1] == a_blocks[1]);
  CHECK(bm.ref_count(a_blocks[0]) == 2);
  CHECK(bm.ref_count(a_blocks[2]) == 1);  // the partial block is private
  CHECK(bm.num_prefix_hits() == 1);

  // A different first block breaks the chain even if the second block's
  // tokens are equal.
  Sequence c = seq_of({9, 2, 3, 4, 5, 6, 7, 8, 1});
  CHECK(bm.match_prefix(c) == 0);
  CHECK(c.block_table.empty());

  // The whole prompt cached: the last token is still left to compute.
  Sequence d = seq_of({1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(bm.match_prefix(d) == 4);

  bm.free(a);
  bm.free(b);
  bm.free(d);
  CHECK(bm.num_free_blocks() == 8);  // cached blocks count as free
  CHECK(bm.ref_count(a_blocks[0]) == 0);
  // ... and are found again after every reference went away.
  Sequence e = seq_of({1, 2, 3, 4, 5, 6, 7, 8, 0, 0});
  CHECK(bm.match_prefix(e) == 8);
  CHECK(bm.ref_count(a_blocks[0]) == 1);
  CHECK(bm.num_free_blocks() == 6);
}

TEST_CASE("block manager: without prefix caching nothing is matched") {
  BlockManager bm(4, 2, false);
  Sequence a = seq_of({1, 2, 3, 4, 5});
  compute(bm, a);
  bm.free(a);
  Sequence b = seq_of({1, 2, 3, 4, 5});
  CHECK(bm.match_prefix(b) == 0);
}

TEST_CASE("block manager: plain blocks are reused first, then cached ones least recently freed first") {
  BlockManager bm(6, 2, true);
  Sequence x = seq_of({10, 11, 12, 13, 14});  // blocks x0 x1 full, x2 partial
  Sequence y = seq_of({20, 21, 22, 23, 24});
  compute(bm, x);
  compute(bm, y);
  bm.free(x);  // x2 (plain) plain list; x1, x0 cached
  bm.free(y);  // y1, y0 cached after x's

  // A new 4-token sequence takes the two plain blocks: every cache entry survives.
  Sequence z = seq_of({30, 31, 32, 33});
  REQUIRE(bm.allocate(z, 4));
  {
    Sequence x2 = seq_of({10, 11, 12, 13, 99});
    CHECK(bm.match_prefix(x2) == 4);
    bm.free(x2);  // x's blocks freed again: now the most recent
  }
  // Two more blocks: the least recently freed cached ones are y's.
  Sequence w = seq_of({40, 41, 42, 43});
  REQUIRE(bm.allocate(w, 4));
  Sequence y2 = seq_of({20, 21, 22, 23, 99});
  CHECK(bm.match_prefix(y2) == 0);
  Sequence x3 = seq_of({10, 11, 12, 13, 99});
  CHECK(bm.match_prefix(x3) == 4);
  // Out of blocks once every block is referenced.
  bm.free(y2);
  Sequence v = seq_of({50, 51, 52, 53, 54});
  CHECK_FALSE(bm.allocate(v, 5));
  CHECK(bm.num_free_blocks() == 0);
  bm.free(z);
  bm.free(w);
  bm.free(x3);
  CHECK(bm.num_free_blocks() == 6);
}

TEST_CASE("block manager: evicting a block drops it from the cache, later blocks of the chain miss") {
  BlockManager bm(3, 2, true);
  Sequence a = seq_of({1, 2, 3, 4, 5});
  compute(bm, a);  // 3 blocks: a0, a1 cached, a2 plain
  bm.free(a);      // free list: a2 (plain), then a1, a0 (tail first)
  Sequence b = seq_of({7, 8, 9, 10});
  REQUIRE(bm.allocate(b, 4));  // takes a2 and evicts a1
  Sequence a_again = seq_of({1, 2, 3, 4, 5});
  CHECK(bm.match_prefix(a_again) == 2);  // only a0 survives
}

TEST_CASE("block manager: two sequences computing the same prefix keep one cache entry") {
  BlockManager bm(6, 2, true);
  Sequence a = seq_of({1, 2, 3, 4, 5});
  Sequence b = seq_of({1, 2, 3, 4, 6});
  CHECK(bm.match_prefix(a) == 0);
  CHECK(bm.match_prefix(b) == 0);
  compute(bm, a);
  compute(bm, b);  // same full blocks, computed twice
  CHECK(bm.num_free_blocks() == 0);
  bm.free(a);
  bm.free(b);
  CHECK(bm.num_free_blocks() == 6);
  Sequence c = seq_of({1, 2, 3, 4, 7});
  CHECK(bm.match_prefix(c) == 4);
  REQUIRE(c.block_table.size() == 2);
  CHECK(bm.ref_count(c.block_table[0]) == 1);
}
