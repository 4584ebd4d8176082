#include "runtime/tokenizer/tokenizer.h"

#include <deque>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/added_vocabulary.h"
#include "runtime/tokenizer/bpe_model.h"
#include "runtime/tokenizer/decoder.h"
#include "runtime/tokenizer/normalizer.h"
#include "runtime/tokenizer/post_processor.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

struct TokenizerImpl {
  AddedVocabulary added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  Decoder decoder;
  PostProcessor post_processor;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added.tokens()
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  int32_t vocab_size = 0;
};

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::io_error(path + ": read failed");
  return ss.str();
}

Result<nlohmann::json> parse_json(std::string_view text, const std::string& name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(name + ": not valid JSON: " + e.what());
  }
}

// bos_token / eos_token in tokenizer_config.json: a string, an AddedToken
// object {"content": ...}, or null.
Result<std::string> special_name(const JsonReader& json) {
  if (json.is_null()) return std::string();
  if (json.is_string()) return json.get_string();
  if (json.is_object()) return json["content"].get_string();
  return json.error("expected a string or {\"content\": ...}");
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::load(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer.json";
  ASSIGN_OR_RETURN(std::string text, read_file(path));
  std::string config;
  const std::string config_path = model_dir + "/tokenizer_config.json";
  if (std::ifstream(config_path).good()) {
    ASSIGN_OR_RETURN(config, read_file(config_path));
  }
  return from_json(text, config, model_dir);
}

Result<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                       std::string_view name) {
  std::string dir(name);
  const bool is_dir = dir.find(".json") == std::string::npos;
  const std::string file = is_dir ? dir + "/tokenizer.json" : dir;
  const std::string config_file = is_dir ? dir + "/tokenizer_config.json" : "tokenizer_config.json";
  try {
    ASSIGN_OR_RETURN(nlohmann::json root, parse_json(tokenizer_json, file));
    JsonReader json(root, file, "");
    RETURN_IF_ERROR(json.expect_object());
    auto impl = std::make_unique<TokenizerImpl>();
    ASSIGN_OR_RETURN(impl->normalizer, Normalizer::parse(json["normalizer"]));
    ASSIGN_OR_RETURN(impl->pre_tokenizer, PreTokenizer::parse(json["pre_tokenizer"]));
    ASSIGN_OR_RETURN(impl->model, BpeModel::parse(json["model"], impl->pre_tokenizer.byte_level()));
    ASSIGN_OR_RETURN(impl->decoder, Decoder::parse(json["decoder"]));
    ASSIGN_OR_RETURN(impl->post_processor, PostProcessor::parse(json["post_processor"]));
    ASSIGN_OR_RETURN(impl->added, AddedVocabulary::parse(json["added_tokens"]));
    impl->vocab_size = static_cast<int32_t>(impl->model.tokens().size());
    for (size_t i = 0; i < impl->added.tokens().size(); ++i) {
      const AddedToken& t = impl->added.tokens()[i];
      impl->added_by_id[t.id] = i;
      impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
    }
    for (int32_t id : impl->post_processor.prefix) {
      if (id >= impl->vocab_size) return json["post_processor"].error("special token id out of the vocabulary");
    }
    for (int32_t id : impl->post_processor.suffix) {
      if (id >= impl->vocab_size) return json["post_processor"].error("special token id out of the vocabulary");
    }

    Tokenizer tok(std::move(impl));
    if (!tokenizer_config_json.empty()) {
      ASSIGN_OR_RETURN(nlohmann::json config_root, parse_json(tokenizer_config_json, config_file));
      JsonReader config(config_root, config_file, "");
      RETURN_IF_ERROR(config.expect_object());
      ASSIGN_OR_RETURN(std::string bos, special_name(config["bos_token"]));
      ASSIGN_OR_RETURN(std::string eos, special_name(config["eos_token"]));
      if (!bos.empty()) {
        auto id = tok.token_to_id(bos);
        if (!id) return config["bos_token"].error("'" + bos + "' is not a token");
        tok.impl_->bos_id = *id;
      }
      if (!eos.empty()) {
        auto id = tok.token_to_id(eos);
        if (!id) return config["eos_token"].error("'" + eos + "' is not a token");
        tok.impl_->eos_ids.push_back(*id);
      }
    }
    return tok;
  } catch (const std::exception& e) {
    // JsonReader checks types before every access; this is a last line of defence.
    return Status::invalid_argument(file + ": " + e.what());
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::string clean;
  if (!is_valid_utf8(text)) {
    clean = sanitize_utf8(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = t.post_processor.prefix;
  std::vector<AddedVocabulary::Segment> segments;
  t.added.split(text, segments);
  std::vector<std::string_view> words;
  std::deque<std::string> storage;
  std::string normalized;
  for (const auto& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view piece = seg.text;
    if (!t.normalizer.empty()) {
      normalized.assign(seg.text);
      t.normalizer.apply(normalized);
      piece = normalized;
    }
    words.clear();
    storage.clear();
    t.pre_tokenizer.apply(piece, seg.text.data() == text.data(), storage, words);
    for (std::string_view w : words) t.model.encode_word(w, ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), t.post_processor.suffix.begin(), t.post_processor.suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto added = t.added_by_id.find(id);
    if (added != t.added_by_id.end()) {
      const AddedToken& a = t.added.tokens()[added->second];
      if (!(skip_special_tokens && a.special)) tokens.push_back(a.content);
      continue;
    }
    if (id < 0 || static_cast<size_t>(id) >= t.model.tokens().size()) continue;
    const std::string& s = t.model.tokens()[static_cast<size_t>(id)];
    if (!s.empty()) tokens.push_back(s);
  }
  return t.decoder.decode(std::move(tokens));
}

int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
const std::vector<int32_t>& Tokenizer::eos_ids() const { return impl_->eos_ids; }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& a : impl_->added.tokens()) {
    if (a.content == token) return a.id;
  }
  auto it = impl_->model.vocab().find(token);
  if (it != impl_->model.vocab().end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  auto added = impl_->added_by_id.find(id);
  if (added != impl_->added_by_id.end()) return impl_->added.tokens()[added->second].content;
  if (id < 0 || static_cast<size_t>(id) >= impl_->model.tokens().size()) return {};
  return impl_->model.tokens()[static_cast<size_t>(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  auto added = impl_->added_by_id.find(id);
  return added != impl_->added_by_id.end() && impl_->added.tokens()[added->second].special;
}

}  // namespace llmctl::tokenizer
