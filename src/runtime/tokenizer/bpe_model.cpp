#include "runtime/tokenizer/bpe_model.h"

#include <cstdio>
#include <functional>
#include <queue>

#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

namespace {

struct ByteMap {
  char32_t to_char[256];
  int16_t to_byte[324];  // every mapped character is < 324
  ByteMap() {
    for (int i = 0; i < 324; ++i) to_byte[i] = -1;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap kMap;
  return kMap;
}

// The key encode() looks up for a tokenizer.json token: raw bytes for
// byte-level vocabularies (when every character stands for a byte).
std::string encode_key(const std::string& token, bool byte_level) {
  if (!byte_level) return token;
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    const int b = char_to_byte(decode_utf8(token, i));
    if (b < 0) return token;
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return byte_map().to_char[b]; }
int char_to_byte(char32_t c) { return c < 324 ? byte_map().to_byte[c] : -1; }

BpeModel::BpeModel(BpeModel&& o) noexcept { *this = std::move(o); }

BpeModel& BpeModel::operator=(BpeModel&& o) noexcept {
  token_to_id_ = std::move(o.token_to_id_);
  encode_vocab_ = std::move(o.encode_vocab_);
  id_to_token_ = std::move(o.id_to_token_);
  merges_ = std::move(o.merges_);
  std::copy(std::begin(o.byte_ids_), std::end(o.byte_ids_), byte_ids_);
  std::copy(std::begin(o.byte_fallback_ids_), std::end(o.byte_fallback_ids_), byte_fallback_ids_);
  byte_level_ = o.byte_level_;
  byte_fallback_ = o.byte_fallback_;
  fuse_unk_ = o.fuse_unk_;
  ignore_merges_ = o.ignore_merges_;
  unk_id_ = o.unk_id_;
  cut_marker_ = std::move(o.cut_marker_);
  cache_.clear();
  return *this;
}

Result<BpeModel> BpeModel::parse(const JsonReader& json, bool byte_level) {
  RETURN_IF_ERROR(json.expect_object());
  ASSIGN_OR_RETURN(std::string type, json.string_or("type", "BPE"));
  if (type != "BPE") return json["type"].error("unsupported model type '" + type + "' (only BPE)");
  BpeModel m;
  m.byte_level_ = byte_level;
  ASSIGN_OR_RETURN(m.byte_fallback_, json.bool_or("byte_fallback", false));
  ASSIGN_OR_RETURN(m.fuse_unk_, json.bool_or("fuse_unk", false));
  ASSIGN_OR_RETURN(m.ignore_merges_, json.bool_or("ignore_merges", false));
  ASSIGN_OR_RETURN(std::string prefix, json.string_or("continuing_subword_prefix", ""));
  ASSIGN_OR_RETURN(std::string suffix, json.string_or("end_of_word_suffix", ""));
  if (!prefix.empty()) return json["continuing_subword_prefix"].error("not supported");
  if (!suffix.empty()) return json["end_of_word_suffix"].error("not supported");
  if (json.has("dropout") && json["dropout"].value().is_number() && json["dropout"].value().get<double>() > 0) {
    return json["dropout"].error("BPE dropout is not supported");
  }

  JsonReader vocab = json["vocab"];
  RETURN_IF_ERROR(vocab.expect_object());
  m.token_to_id_.reserve(vocab.size());
  m.encode_vocab_.reserve(vocab.size());
  // The loops below read the parsed JSON directly (150 K tokens, 280 K
  // merges in the large vocabularies); JsonReaders, which carry a path for
  // error messages, are only built to report an error.
  const nlohmann::json& vocab_json = vocab.value();
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    const std::string& token = it.key();
    const nlohmann::json& id_json = it.value();
    if (!id_json.is_number_integer()) return vocab[token].error("expected an integer");
    const auto id = id_json.get<int64_t>();
    if (id < 0 || id >= (int64_t{1} << 24)) return vocab[token].error("id out of range");
    m.token_to_id_[token] = static_cast<int32_t>(id);
    m.encode_vocab_[encode_key(token, byte_level)] = static_cast<int32_t>(id);
    if (static_cast<size_t>(id) >= m.id_to_token_.size()) m.id_to_token_.resize(static_cast<size_t>(id) + 1);
    m.id_to_token_[static_cast<size_t>(id)] = token;
  }

  JsonReader merges = json["merges"];
  if (!merges.is_null()) {
    RETURN_IF_ERROR(merges.expect_array());
    const nlohmann::json& list = merges.value();
    m.merges_.reserve(list.size());
    std::string joined_key;
    for (size_t i = 0; i < list.size(); ++i) {
      const nlohmann::json& merge = list[i];
      std::string_view left, right;
      if (merge.is_string()) {
        const std::string& s = merge.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          return merges.at(i).error("expected \"left right\"");
        }
        left = std::string_view(s).substr(0, space);
        right = std::string_view(s).substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2) {
        for (size_t k = 0; k < 2; ++k) {
          if (!merge[k].is_string()) return merges.at(i).at(k).error("expected a string");
        }
        left = merge[0].get_ref<const std::string&>();
        right = merge[1].get_ref<const std::string&>();
      } else {
        return merges.at(i).error("expected \"left right\" or [\"left\", \"right\"]");
      }
      joined_key.assign(left);
      joined_key.append(right);
      auto l = m.token_to_id_.find(left), r = m.token_to_id_.find(right), joined = m.token_to_id_.find(joined_key);
      if (l == m.token_to_id_.end() || r == m.token_to_id_.end() || joined == m.token_to_id_.end()) {
        return merges.at(i).error("merge of tokens that are not in the vocabulary");
      }
      const uint64_t key = (static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(r->second);
      // The first (lowest-ranked) occurrence of a pair wins.
      m.merges_.emplace(key, (static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(joined->second));
    }
  }

  ASSIGN_OR_RETURN(std::string unk, json.string_or("unk_token", ""));
  if (!unk.empty()) {
    auto it = m.token_to_id_.find(unk);
    if (it == m.token_to_id_.end()) return json["unk_token"].error("unk_token is not in the vocabulary");
    m.unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_char(static_cast<uint8_t>(b)));
    auto it = m.token_to_id_.find(ch);
    m.byte_ids_[b] = it == m.token_to_id_.end() ? -1 : it->second;
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    it = m.token_to_id_.find(std::string_view(name));
    m.byte_fallback_ids_[b] = it == m.token_to_id_.end() ? -1 : it->second;
  }
  if (!byte_level && !m.ignore_merges_) {
    // Cutting before "\u2581" is exact only if no token could span such a cut,
    // i.e. none contains "\u2581" right after another character.
    constexpr std::string_view kMarker = "\u2581";
    bool safe = m.encode_vocab_.count(kMarker) > 0;
    for (const auto& [token, id] : m.encode_vocab_) {
      for (size_t p = token.find(kMarker, 1); safe && p != std::string::npos; p = token.find(kMarker, p + 1)) {
        safe = p >= kMarker.size() && token.compare(p - kMarker.size(), kMarker.size(), kMarker) == 0;
      }
      if (!safe) break;
    }
    if (safe) m.cut_marker_ = kMarker;
  }
  return m;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (!cut_marker_.empty()) {
    const size_t m = cut_marker_.size();
    size_t start = 0;
    for (size_t p = word.find(cut_marker_, 1); p != std::string_view::npos; p = word.find(cut_marker_, p + m)) {
      if (p >= m && word.compare(p - m, m, cut_marker_) == 0) continue;  // inside a run of markers
      if (p > start) encode_piece(word.substr(start, p - start), out);
      start = p;
    }
    encode_piece(word.substr(start), out);
    return;
  }
  encode_piece(word, out);
}

void BpeModel::encode_piece(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= WordCache::kMaxWordBytes;
  const uint64_t hash = cacheable ? WordCache::hash(word) : 0;
  if (cacheable && cache_.lookup(word, hash, out)) return;
  const size_t first = out.size();
  bool done = false;
  if (ignore_merges_ || word.size() == 1) {
    auto it = encode_vocab_.find(word);
    if (it != encode_vocab_.end()) {
      out.push_back(it->second);
      done = true;
    }
  }
  if (!done) merge_word(word, out);
  if (cacheable) cache_.insert(word, hash, std::span<const int32_t>(out).subspan(first));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, n + 1, true});
  };

  if (byte_level_) {
    for (char c : word) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        add(id);
      } else if (unk_id_ >= 0 && !(fuse_unk_ && !symbols.empty() && symbols.back().id == unk_id_)) {
        add(unk_id_);
      }
    }
  } else {
    bool pending_unk = false;  // mirrors `tokenizers`: an unknown run is added when a known char follows
    for (size_t i = 0; i < word.size();) {
      const size_t start = i;
      decode_utf8(word, i);
      const std::string_view ch = word.substr(start, i - start);
      auto it = encode_vocab_.find(ch);
      if (it != encode_vocab_.end()) {
        if (pending_unk) add(unk_id_);
        pending_unk = false;
        add(it->second);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (char b : ch) all = all && byte_fallback_ids_[static_cast<uint8_t>(b)] >= 0;
        if (all) {
          for (char b : ch) add(byte_fallback_ids_[static_cast<uint8_t>(b)]);
          continue;
        }
      }
      if (unk_id_ >= 0) {
        if (pending_unk && !fuse_unk_) add(unk_id_);
        pending_unk = true;
      }
    }
    if (pending_unk) add(unk_id_);
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Min-heap of candidate merges: (rank << 32 | position), merged id.
  using Candidate = std::pair<uint64_t, int32_t>;
  thread_local std::vector<Candidate> heap_storage;
  heap_storage.clear();
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                               std::move(heap_storage));
  auto lookup = [&](int32_t a, int32_t b) -> const uint64_t* {
    auto it = merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  auto push = [&](int32_t pos) {
    const Symbol& s = symbols[static_cast<size_t>(pos)];
    if (s.next < 0) return;
    if (const uint64_t* m = lookup(s.id, symbols[static_cast<size_t>(s.next)].id)) {
      heap.push({(*m & 0xFFFFFFFF00000000ull) | static_cast<uint32_t>(pos), static_cast<int32_t>(*m & 0xFFFFFFFFu)});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push(i);
  while (!heap.empty()) {
    const auto [key, new_id] = heap.top();
    heap.pop();
    const auto pos = static_cast<int32_t>(key & 0xFFFFFFFFu);
    Symbol& left = symbols[static_cast<size_t>(pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const uint64_t* m = lookup(left.id, right.id);
    if (m == nullptr || static_cast<int32_t>(*m & 0xFFFFFFFFu) != new_id) continue;  // stale entry
    left.id = new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = pos;
    if (left.prev >= 0) push(left.prev);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) out.push_back(symbols[static_cast<size_t>(i)].id);
}

}  // namespace llmctl::tokenizer
