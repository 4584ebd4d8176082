#include "runtime/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <span>

#include "runtime/tokenizer/normalizer.h"
#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

namespace {

// The GPT-2 pattern ByteLevel uses when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

Status PreTokenizer::add(const JsonReader& json, std::vector<Step>& steps) {
  if (json.is_null()) return Status::ok();
  RETURN_IF_ERROR(json.expect_object());
  if (!steps.empty() && steps.back().kind == Step::Kind::kByteLevel) {
    return json.error("a pre-tokenizer after ByteLevel is not supported");
  }
  ASSIGN_OR_RETURN(std::string type, json["type"].get_string());
  if (type == "Sequence") {
    JsonReader list = json["pretokenizers"];
    RETURN_IF_ERROR(list.expect_array());
    for (size_t i = 0; i < list.size(); ++i) RETURN_IF_ERROR(add(list.at(i), steps));
    return Status::ok();
  }
  Step step{};
  if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
    ASSIGN_OR_RETURN(step.add_prefix_space, json.bool_or("add_prefix_space", true));
    ASSIGN_OR_RETURN(bool use_regex, json.bool_or("use_regex", true));
    if (use_regex) {
      auto re = Regex::compile(kGpt2Pattern);
      if (!re.is_ok()) return Status::internal("GPT-2 pattern: " + re.status().message());
      step.regex = std::make_shared<const Regex>(std::move(re).value());
    }
  } else if (type == "Split") {
    step.kind = Step::Kind::kSplit;
    JsonReader pattern = json["pattern"];
    if (pattern.has("Regex")) {
      ASSIGN_OR_RETURN(std::string s, pattern["Regex"].get_string());
      auto re = Regex::compile(s);
      if (!re.is_ok()) return pattern["Regex"].error(re.status().message());
      step.regex = std::make_shared<const Regex>(std::move(re).value());
    } else if (pattern.has("String")) {
      ASSIGN_OR_RETURN(step.literal, pattern["String"].get_string());
      if (step.literal.empty()) return pattern["String"].error("empty pattern");
    } else {
      return pattern.error("expected {\"String\": ...} or {\"Regex\": ...}");
    }
    ASSIGN_OR_RETURN(std::string behavior, json["behavior"].get_string());
    if (behavior == "Removed") {
      step.behavior = Behavior::kRemoved;
    } else if (behavior == "Isolated") {
      step.behavior = Behavior::kIsolated;
    } else if (behavior == "MergedWithPrevious") {
      step.behavior = Behavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      step.behavior = Behavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      step.behavior = Behavior::kContiguous;
    } else {
      return json["behavior"].error("unknown behavior '" + behavior + "'");
    }
    ASSIGN_OR_RETURN(step.invert, json.bool_or("invert", false));
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::kMetaspace;
    ASSIGN_OR_RETURN(step.literal, json.string_or("replacement", "\u2581"));
    if (step.literal.empty()) return json["replacement"].error("empty replacement");
    ASSIGN_OR_RETURN(std::string scheme, json.string_or("prepend_scheme", ""));
    if (scheme.empty()) {
      ASSIGN_OR_RETURN(bool add_prefix, json.bool_or("add_prefix_space", true));
      scheme = add_prefix ? "always" : "never";
    }
    if (scheme == "always") {
      step.prepend_scheme = 0;
    } else if (scheme == "first") {
      step.prepend_scheme = 1;
    } else if (scheme == "never") {
      step.prepend_scheme = 2;
    } else {
      return json["prepend_scheme"].error("unknown prepend_scheme '" + scheme + "'");
    }
    ASSIGN_OR_RETURN(step.split, json.bool_or("split", true));
  } else {
    return json["type"].error("unsupported pre_tokenizer type '" + type + "'");
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

Result<PreTokenizer> PreTokenizer::parse(const JsonReader& json) {
  PreTokenizer p;
  RETURN_IF_ERROR(add(json, p.steps_));
  p.byte_level_ = !p.steps_.empty() && p.steps_.back().kind == Step::Kind::kByteLevel;
  return p;
}

void PreTokenizer::split(const Regex* regex, std::string_view literal, Behavior behavior, bool invert,
                         std::string_view piece, std::vector<std::string_view>& out) {
  // Segments [start, end) of the piece, each a match or not.
  struct Segment {
    size_t start, end;
    bool match;
  };
  thread_local std::vector<Segment> segs;
  thread_local std::vector<Segment> result;
  segs.clear();
  result.clear();
  size_t pos = 0;
  auto add_match = [&](size_t s, size_t e) {
    if (s > pos) segs.push_back({pos, s, false});
    segs.push_back({s, e, true});
    pos = e;
  };
  if (regex != nullptr) {
    thread_local std::vector<char32_t> cps;
    thread_local std::vector<uint32_t> offsets;
    thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
    // Sized for the worst case (one byte per char) and filled by index, with
    // ASCII decoded inline: this loop runs once per input byte.
    if (cps.size() < piece.size()) cps.resize(piece.size());
    if (offsets.size() < piece.size() + 1) offsets.resize(piece.size() + 1);
    matches.clear();
    size_t n = 0;
    for (size_t i = 0; i < piece.size(); ++n) {
      offsets[n] = static_cast<uint32_t>(i);
      const auto b = static_cast<unsigned char>(piece[i]);
      if (b < 0x80) {
        cps[n] = b;
        ++i;
      } else {
        cps[n] = decode_utf8(piece, i);
      }
    }
    offsets[n] = static_cast<uint32_t>(piece.size());
    regex->find_all(std::span<const char32_t>(cps.data(), n), matches);
    if (behavior == Behavior::kIsolated && !invert) {
      // The common case: every match and every gap between them is a word.
      size_t at = 0;
      for (const auto& [ms, me] : matches) {
        if (offsets[ms] > at) out.push_back(piece.substr(at, offsets[ms] - at));
        out.push_back(piece.substr(offsets[ms], offsets[me] - offsets[ms]));
        at = offsets[me];
      }
      if (at < piece.size()) out.push_back(piece.substr(at));
      return;
    }
    for (const auto& [ms, me] : matches) add_match(offsets[ms], offsets[me]);
  } else {
    for (size_t hit = piece.find(literal); hit != std::string_view::npos; hit = piece.find(literal, pos)) {
      add_match(hit, hit + literal.size());
    }
  }
  if (pos < piece.size()) segs.push_back({pos, piece.size(), false});
  if (invert) {
    for (Segment& s : segs) s.match = !s.match;
  }

  bool previous_match = false;
  switch (behavior) {
    case Behavior::kRemoved:
      for (const Segment& s : segs) {
        if (!s.match) result.push_back(s);
      }
      break;
    case Behavior::kIsolated:
      result.assign(segs.begin(), segs.end());
      break;
    case Behavior::kMergedWithPrevious:
      for (const Segment& s : segs) {
        if (s.match && !previous_match && !result.empty()) {
          result.back().end = s.end;
        } else {
          result.push_back(s);
        }
        previous_match = s.match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (size_t i = segs.size(); i-- > 0;) {
        const Segment& s = segs[i];
        if (s.match && !previous_match && !result.empty()) {
          result.back().start = s.start;
        } else {
          result.push_back(s);
        }
        previous_match = s.match;
      }
      std::reverse(result.begin(), result.end());
      break;
    case Behavior::kContiguous:
      for (const Segment& s : segs) {
        if (s.match == previous_match && !result.empty()) {
          result.back().end = s.end;
        } else {
          result.push_back(s);
        }
        previous_match = s.match;
      }
      break;
  }
  for (const Segment& s : result) {
    if (s.end > s.start) out.push_back(piece.substr(s.start, s.end - s.start));
  }
}

void PreTokenizer::apply(std::string_view text, bool at_input_start, std::deque<std::string>& storage,
                         std::vector<std::string_view>& out) const {
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const Step& step : steps_) {
    next.clear();
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string_view piece = pieces[i];
      switch (step.kind) {
        case Step::Kind::kSplit:
          split(step.regex.get(), step.literal, step.behavior, step.invert, piece, next);
          break;
        case Step::Kind::kByteLevel:
          if (step.add_prefix_space && !piece.empty() && piece[0] != ' ') {
            std::string& prefixed = storage.emplace_back();
            prefixed.reserve(piece.size() + 1);
            prefixed.push_back(' ');
            prefixed.append(piece);
            piece = prefixed;
          }
          if (step.regex) {
            split(step.regex.get(), {}, Behavior::kIsolated, false, piece, next);
          } else {
            next.push_back(piece);
          }
          break;
        case Step::Kind::kMetaspace: {
          const bool starts = piece.starts_with(' ') || piece.starts_with(step.literal);
          const bool prepend =
              !starts && (step.prepend_scheme == 0 || (step.prepend_scheme == 1 && at_input_start && i == 0));
          storage.push_back(replace_all(piece, " ", step.literal, prepend ? step.literal : std::string_view()));
          if (step.split) {
            split(nullptr, step.literal, Behavior::kMergedWithNext, false, storage.back(), next);
          } else {
            next.push_back(storage.back());
          }
          break;
        }
      }
    }
    pieces.swap(next);
  }
  for (std::string_view p : pieces) {
    if (!p.empty()) out.push_back(p);
  }
}

}  // namespace llmctl::tokenizer
