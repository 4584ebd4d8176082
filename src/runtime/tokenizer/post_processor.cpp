#include "runtime/tokenizer/post_processor.h"

namespace llmctl::tokenizer {

namespace {

// [token, id] as in RobertaProcessing's "cls" / "sep".
Result<int32_t> pair_id(const JsonReader& json) {
  if (!json.is_array() || json.size() != 2) return json.error("expected [token, id]");
  ASSIGN_OR_RETURN(int64_t id, json.at(1).get_int());
  if (id < 0 || id >= (int64_t{1} << 24)) return json.at(1).error("id out of range");
  return static_cast<int32_t>(id);
}

}  // namespace

Result<PostProcessor> PostProcessor::parse(const JsonReader& json) {
  PostProcessor p;
  if (json.is_null()) return p;
  RETURN_IF_ERROR(json.expect_object());
  ASSIGN_OR_RETURN(std::string type, json["type"].get_string());
  if (type == "ByteLevel") return p;  // changes offsets only
  if (type == "Sequence") {
    JsonReader list = json["processors"];
    RETURN_IF_ERROR(list.expect_array());
    for (size_t i = 0; i < list.size(); ++i) {
      ASSIGN_OR_RETURN(PostProcessor inner, parse(list.at(i)));
      // Later processors wrap the output of earlier ones.
      inner.prefix.insert(inner.prefix.end(), p.prefix.begin(), p.prefix.end());
      p.prefix = std::move(inner.prefix);
      p.suffix.insert(p.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return p;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    ASSIGN_OR_RETURN(int32_t cls, pair_id(json["cls"]));
    ASSIGN_OR_RETURN(int32_t sep, pair_id(json["sep"]));
    p.prefix.push_back(cls);
    p.suffix.push_back(sep);
    return p;
  }
  if (type != "TemplateProcessing") return json["type"].error("unsupported post_processor type '" + type + "'");
  JsonReader single = json["single"];
  RETURN_IF_ERROR(single.expect_array());
  JsonReader specials = json["special_tokens"];
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    JsonReader item = single.at(i);
    if (item.has("Sequence")) {
      if (seen_sequence) return item.error("more than one sequence in a single template");
      seen_sequence = true;
      continue;
    }
    if (!item.has("SpecialToken")) return item.error("expected SpecialToken or Sequence");
    ASSIGN_OR_RETURN(std::string name, item["SpecialToken"]["id"].get_string());
    JsonReader special = specials[name];
    if (!special.is_object()) return specials.error("no special token '" + name + "'");
    JsonReader ids = special["ids"];
    RETURN_IF_ERROR(ids.expect_array());
    for (size_t k = 0; k < ids.size(); ++k) {
      ASSIGN_OR_RETURN(int64_t id, ids.at(k).get_int());
      if (id < 0 || id >= (int64_t{1} << 24)) return ids.at(k).error("id out of range");
      (seen_sequence ? p.suffix : p.prefix).push_back(static_cast<int32_t>(id));
    }
  }
  if (!seen_sequence) return single.error("template without $A");
  return p;
}

}  // namespace llmctl::tokenizer
