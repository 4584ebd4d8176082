#include "runtime/tokenizer/word_cache.h"

#include <cstring>

namespace llmctl::tokenizer {

uint64_t WordCache::hash(std::string_view word) {
  // Words are a few bytes long: a multiply-xorshift over 8-byte loads beats a
  // byte-wise hash here and spreads well enough for linear probing.
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = word.size() * kMul;
  const char* p = word.data();
  size_t n = word.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

bool WordCache::lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
  std::lock_guard lock(mutex_);
  if (slots_.empty()) return false;
  for (size_t i = hash & (kNumSlots - 1);; i = (i + 1) & (kNumSlots - 1)) {
    const Slot& s = slots_[i];
    if (s.num_ids == 0) return false;
    if (s.hash == hash && s.key_len == word.size() &&
        std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      out.insert(out.end(), ids_.begin() + s.ids_offset, ids_.begin() + s.ids_offset + s.num_ids);
      return true;
    }
  }
}

void WordCache::insert(std::string_view word, uint64_t hash, std::span<const int32_t> ids) {
  if (word.size() > kMaxWordBytes || ids.empty() || ids.size() > kMaxIds) return;
  std::lock_guard lock(mutex_);
  if (slots_.empty()) slots_.resize(kNumSlots);
  if (entries_ >= kMaxEntries) {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    entries_ = 0;
  }
  size_t i = hash & (kNumSlots - 1);
  for (;; i = (i + 1) & (kNumSlots - 1)) {
    const Slot& s = slots_[i];
    if (s.num_ids == 0) break;
    // Another thread may have inserted the same word meanwhile.
    if (s.hash == hash && s.key_len == word.size() &&
        std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      return;
    }
  }
  Slot& s = slots_[i];
  s.hash = hash;
  s.key_offset = static_cast<uint32_t>(keys_.size());
  s.ids_offset = static_cast<uint32_t>(ids_.size());
  s.key_len = static_cast<uint8_t>(word.size());
  s.num_ids = static_cast<uint8_t>(ids.size());
  keys_.append(word);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  ++entries_;
}

void WordCache::clear() {
  std::lock_guard lock(mutex_);
  slots_.clear();
  keys_.clear();
  ids_.clear();
  entries_ = 0;
}

}  // namespace llmctl::tokenizer
