// WordCache: a bounded map from a pre-tokenized word to its token ids, the
// memo that makes BPE on natural text cost one hash probe per word.
//
// Open addressing over a flat slot array, with the keys and ids packed into
// two arenas, so a hit touches one slot and two short contiguous runs instead
// of the node chains of std::unordered_map. When it fills up it starts over
// (text repeats its frequent words quickly, so a cold restart costs little).
// Thread-safe: lookups and inserts take an internal mutex.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl::tokenizer {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 255;
  static constexpr size_t kMaxIds = 255;

  WordCache() = default;
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  static uint64_t hash(std::string_view word);

  // Appends the cached ids of `word` to `out`; false when it is not cached.
  bool lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const;
  // Remembers ids for word; words or id lists over the limits are ignored.
  void insert(std::string_view word, uint64_t hash, std::span<const int32_t> ids);
  void clear();

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0;
    uint32_t ids_offset = 0;
    uint8_t key_len = 0;
    uint8_t num_ids = 0;  // 0: empty slot (a word has at least one id)
  };
  static constexpr size_t kNumSlots = size_t{1} << 17;  // a power of two
  static constexpr size_t kMaxEntries = kNumSlots / 2;  // keeps probe runs short

  mutable std::mutex mutex_;
  std::vector<Slot> slots_;  // allocated on first insert
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t entries_ = 0;
};

}  // namespace llmctl::tokenizer
