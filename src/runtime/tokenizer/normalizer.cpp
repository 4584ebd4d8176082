#include "runtime/tokenizer/normalizer.h"

#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

std::string replace_all(std::string_view text, std::string_view from, std::string_view to, std::string_view prefix) {
  std::string out;
  out.reserve(prefix.size() + text.size());
  out.append(prefix);
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

std::string replace_regex(std::string_view text, const Regex& regex, std::string_view to) {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
  for (size_t i = 0; i < text.size();) {
    offsets.push_back(i);
    cps.push_back(decode_utf8(text, i));
  }
  offsets.push_back(text.size());
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  regex.find_all(cps, matches);
  std::string out;
  size_t pos = 0;
  for (const auto& [s, e] : matches) {
    out.append(text.substr(pos, offsets[s] - pos));
    out.append(to);
    pos = offsets[e];
  }
  out.append(text.substr(pos));
  return out;
}

Status Normalizer::add(const JsonReader& json, std::vector<Step>& steps) {
  if (json.is_null()) return Status::ok();
  RETURN_IF_ERROR(json.expect_object());
  ASSIGN_OR_RETURN(std::string type, json["type"].get_string());
  if (type == "Sequence") {
    JsonReader list = json["normalizers"];
    RETURN_IF_ERROR(list.expect_array());
    for (size_t i = 0; i < list.size(); ++i) RETURN_IF_ERROR(add(list.at(i), steps));
    return Status::ok();
  }
  if (type == "NFC") {
    steps.push_back({Step::Kind::kNfc, "", "", nullptr});
    return Status::ok();
  }
  if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prepend, json["prepend"].get_string());
    steps.push_back({Step::Kind::kPrepend, "", prepend, nullptr});
    return Status::ok();
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(std::string content, json["content"].get_string());
    JsonReader pattern = json["pattern"];
    if (pattern.has("String")) {
      ASSIGN_OR_RETURN(std::string s, pattern["String"].get_string());
      if (s.empty()) return pattern["String"].error("empty pattern");
      steps.push_back({Step::Kind::kReplace, s, content, nullptr});
      return Status::ok();
    }
    if (pattern.has("Regex")) {
      ASSIGN_OR_RETURN(std::string s, pattern["Regex"].get_string());
      auto re = Regex::compile(s);
      if (!re.is_ok()) return pattern["Regex"].error(re.status().message());
      steps.push_back({Step::Kind::kReplaceRegex, s, content,
                       std::make_shared<const Regex>(std::move(re).value())});
      return Status::ok();
    }
    return pattern.error("expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return json["type"].error("unsupported normalizer type '" + type + "'");
}

Result<Normalizer> Normalizer::parse(const JsonReader& json) {
  Normalizer n;
  RETURN_IF_ERROR(add(json, n.steps_));
  return n;
}

void Normalizer::apply(std::string& text) const {
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::kNfc:
        text = nfc(text);
        break;
      case Step::Kind::kPrepend:
        if (!text.empty()) text.insert(0, step.content);
        break;
      case Step::Kind::kReplace:
        if (text.find(step.pattern) != std::string::npos) text = replace_all(text, step.pattern, step.content);
        break;
      case Step::Kind::kReplaceRegex:
        text = replace_regex(text, *step.regex, step.content);
        break;
    }
  }
}

}  // namespace llmctl::tokenizer
