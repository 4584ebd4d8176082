#include "runtime/tokenizer/decoder.h"

#include "runtime/tokenizer/bpe_model.h"
#include "runtime/tokenizer/normalizer.h"
#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

Status Decoder::add(const JsonReader& json, std::vector<Step>& steps) {
  RETURN_IF_ERROR(json.expect_object());
  ASSIGN_OR_RETURN(std::string type, json["type"].get_string());
  if (type == "Sequence") {
    JsonReader list = json["decoders"];
    RETURN_IF_ERROR(list.expect_array());
    for (size_t i = 0; i < list.size(); ++i) RETURN_IF_ERROR(add(list.at(i), steps));
    return Status::ok();
  }
  Step step{};
  if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
  } else if (type == "ByteFallback") {
    step.kind = Step::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = Step::Kind::kFuse;
  } else if (type == "Replace") {
    step.kind = Step::Kind::kReplace;
    JsonReader pattern = json["pattern"];
    if (!pattern.has("String")) return pattern.error("only {\"String\": ...} patterns are supported");
    ASSIGN_OR_RETURN(step.pattern, pattern["String"].get_string());
    if (step.pattern.empty()) return pattern["String"].error("empty pattern");
    ASSIGN_OR_RETURN(step.content, json["content"].get_string());
  } else if (type == "Strip") {
    step.kind = Step::Kind::kStrip;
    ASSIGN_OR_RETURN(step.content, json["content"].get_string());
    size_t i = 0;
    if (step.content.empty() || (decode_utf8(step.content, i), i != step.content.size())) {
      return json["content"].error("expected one character");
    }
    ASSIGN_OR_RETURN(int64_t start, json.int_or("start", 0));
    ASSIGN_OR_RETURN(int64_t stop, json.int_or("stop", 0));
    if (start < 0 || stop < 0 || start > 1000000 || stop > 1000000) return json.error("bad start/stop");
    step.start = static_cast<int>(start);
    step.stop = static_cast<int>(stop);
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::kMetaspace;
    ASSIGN_OR_RETURN(step.content, json.string_or("replacement", "\u2581"));
    if (step.content.empty()) return json["replacement"].error("empty replacement");
    ASSIGN_OR_RETURN(std::string scheme, json.string_or("prepend_scheme", ""));
    if (scheme.empty()) {
      ASSIGN_OR_RETURN(bool add_prefix, json.bool_or("add_prefix_space", true));
      scheme = add_prefix ? "always" : "never";
    }
    step.prepend = scheme != "never";
  } else {
    return json["type"].error("unsupported decoder type '" + type + "'");
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

Result<Decoder> Decoder::parse(const JsonReader& json) {
  Decoder d;
  if (json.is_null()) {
    d.none_ = true;
    return d;
  }
  RETURN_IF_ERROR(add(json, d.steps_));
  return d;
}

namespace {

// "<0xAB>" -> 0xAB, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = t[static_cast<size_t>(i)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

void Decoder::apply(const Step& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case Step::Kind::kByteLevel: {
      std::string bytes;
      for (const std::string& t : tokens) {
        const size_t mark = bytes.size();
        bool all = true;
        for (size_t i = 0; i < t.size() && all;) {
          const int b = char_to_byte(decode_utf8(t, i));
          if (b < 0) {
            all = false;
          } else {
            bytes.push_back(static_cast<char>(b));
          }
        }
        if (!all) {  // not byte-level text (e.g. an added token): its own bytes
          bytes.resize(mark);
          bytes += t;
        }
      }
      tokens.assign(1, sanitize_utf8(bytes));
      break;
    }
    case Step::Kind::kReplace:
      for (std::string& t : tokens) t = replace_all(t, step.pattern, step.content);
      break;
    case Step::Kind::kByteFallback: {
      std::vector<std::string> out;
      std::string pending;
      auto flush = [&] {
        if (pending.empty()) return;
        if (is_valid_utf8(pending)) {
          out.push_back(pending);
        } else {
          for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\uFFFD");
        }
        pending.clear();
      };
      for (std::string& t : tokens) {
        const int b = byte_token(t);
        if (b >= 0) {
          pending.push_back(static_cast<char>(b));
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens = std::move(out);
      break;
    }
    case Step::Kind::kFuse: {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens.assign(1, std::move(all));
      break;
    }
    case Step::Kind::kStrip: {
      // Removes up to `start` leading and `stop` trailing copies of content from each token.
      const std::string& c = step.content;
      for (std::string& t : tokens) {
        size_t begin = 0;
        for (int i = 0; i < step.start && t.compare(begin, c.size(), c) == 0; ++i) begin += c.size();
        size_t end = t.size();
        for (int i = 0; i < step.stop && end >= begin + c.size() && t.compare(end - c.size(), c.size(), c) == 0; ++i) {
          end -= c.size();
        }
        t = t.substr(begin, end - begin);
      }
      break;
    }
    case Step::Kind::kMetaspace:
      for (size_t i = 0; i < tokens.size(); ++i) {
        std::string replaced = replace_all(tokens[i], step.content, " ");
        if (i == 0 && step.prepend && !replaced.empty() && replaced[0] == ' ') replaced.erase(0, 1);
        tokens[i] = std::move(replaced);
      }
      break;
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  std::string out;
  if (none_) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  for (const Step& step : steps_) apply(step, tokens);
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace llmctl::tokenizer
