#include "runtime/tokenizer/regex.h"

#include <climits>
#include <string>

#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {

namespace {

constexpr int32_t kInfinite = INT32_MAX;
constexpr int kMaxGroupRepeat = 16;  // {n,m} on a group is expanded; keep it small

using GC = GeneralCategory;
constexpr uint32_t bit(GC c) { return 1u << static_cast<int>(c); }
constexpr uint32_t kLetters = bit(GC::kLu) | bit(GC::kLl) | bit(GC::kLt) | bit(GC::kLm) | bit(GC::kLo);
constexpr uint32_t kMarks = bit(GC::kMn) | bit(GC::kMc) | bit(GC::kMe);
constexpr uint32_t kNumbers = bit(GC::kNd) | bit(GC::kNl) | bit(GC::kNo);
constexpr uint32_t kPunctuation = bit(GC::kPc) | bit(GC::kPd) | bit(GC::kPs) | bit(GC::kPe) | bit(GC::kPi) |
                                  bit(GC::kPf) | bit(GC::kPo);
constexpr uint32_t kSymbols = bit(GC::kSm) | bit(GC::kSc) | bit(GC::kSk) | bit(GC::kSo);
constexpr uint32_t kSeparators = bit(GC::kZs) | bit(GC::kZl) | bit(GC::kZp);
constexpr uint32_t kOthers = bit(GC::kCc) | bit(GC::kCf) | bit(GC::kCs) | bit(GC::kCo) | bit(GC::kCn);
constexpr uint32_t kAllCategories = (1u << kNumGeneralCategories) - 1;
constexpr uint32_t kWord = kLetters | kMarks | bit(GC::kNd) | bit(GC::kPc);

// Mask of a \p{...} name, 0 when unknown.
uint32_t category_mask(std::string_view name) {
  static constexpr std::pair<std::string_view, uint32_t> kGroups[] = {
      {"L", kLetters}, {"Letter", kLetters}, {"M", kMarks}, {"Mark", kMarks},
      {"N", kNumbers}, {"Number", kNumbers}, {"P", kPunctuation}, {"Punctuation", kPunctuation},
      {"S", kSymbols}, {"Symbol", kSymbols}, {"Z", kSeparators}, {"Separator", kSeparators},
      {"C", kOthers}, {"Other", kOthers}, {"L&", bit(GC::kLu) | bit(GC::kLl) | bit(GC::kLt)},
  };
  for (const auto& [n, m] : kGroups) {
    if (n == name) return m;
  }
  static constexpr std::string_view kNames[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                                "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                                "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
  for (int i = 0; i < kNumGeneralCategories; ++i) {
    if (kNames[i] == name) return 1u << i;
  }
  return 0;
}

struct Node {
  enum class Kind { kClass, kConcat, kAlt, kRepeat, kLook };
  Node() = default;
  explicit Node(Kind k) : kind(k) {}
  Kind kind = Kind::kConcat;
  int32_t cls = -1;
  int32_t min = 1, max = 1;
  bool negative = false;
  std::vector<Node> kids;
};

class Parser {
 public:
  Parser(std::string_view pattern, std::vector<Regex::CharClass>& classes) : classes_(classes) {
    for (size_t i = 0; i < pattern.size();) {
      offsets_.push_back(static_cast<uint32_t>(i));
      cps_.push_back(decode_utf8(pattern, i));
    }
    offsets_.push_back(static_cast<uint32_t>(pattern.size()));
  }

  Result<Node> parse() {
    ASSIGN_OR_RETURN(Node n, parse_alt(false));
    if (pos_ < cps_.size()) return error("unbalanced ')'");
    return n;
  }

 private:
  Status error(std::string_view what) const {
    return Status::invalid_argument("regex: " + std::string(what) + " at byte " +
                                    std::to_string(offsets_[std::min(pos_, cps_.size())]));
  }
  bool at(char32_t c) const { return pos_ < cps_.size() && cps_[pos_] == c; }
  bool eat(char32_t c) {
    if (!at(c)) return false;
    ++pos_;
    return true;
  }

  Result<Node> parse_alt(bool icase) {
    Node alt(Node::Kind::kAlt);
    while (true) {
      ASSIGN_OR_RETURN(Node seq, parse_concat(icase));
      alt.kids.push_back(std::move(seq));
      if (!eat('|')) break;
    }
    if (alt.kids.size() == 1) return std::move(alt.kids[0]);
    return alt;
  }

  Result<Node> parse_concat(bool icase) {
    Node seq(Node::Kind::kConcat);
    while (pos_ < cps_.size() && !at('|') && !at(')')) {
      if (at('(') && pos_ + 2 < cps_.size() && cps_[pos_ + 1] == '?' && cps_[pos_ + 2] == 'i' &&
          pos_ + 3 < cps_.size() && cps_[pos_ + 3] == ')') {
        pos_ += 4;  // (?i) switches case folding on for the rest of the group
        icase = true;
        continue;
      }
      ASSIGN_OR_RETURN(Node atom, parse_atom(icase));
      RETURN_IF_ERROR(parse_quantifier(atom));
      seq.kids.push_back(std::move(atom));
    }
    if (seq.kids.size() == 1) return std::move(seq.kids[0]);
    return seq;
  }

  Status parse_quantifier(Node& atom) {
    int32_t min, max;
    const size_t start = pos_;
    if (eat('?')) {
      min = 0; max = 1;
    } else if (eat('*')) {
      min = 0; max = kInfinite;
    } else if (eat('+')) {
      min = 1; max = kInfinite;
    } else if (at('{')) {
      ++pos_;
      auto number = [&](int32_t& out) {
        if (pos_ >= cps_.size() || cps_[pos_] < '0' || cps_[pos_] > '9') return false;
        int64_t v = 0;
        while (pos_ < cps_.size() && cps_[pos_] >= '0' && cps_[pos_] <= '9' && v < 100000) {
          v = v * 10 + (cps_[pos_++] - '0');
        }
        out = static_cast<int32_t>(v);
        return true;
      };
      bool ok = number(min);
      max = min;
      if (ok && eat(',')) {
        if (!number(max)) max = kInfinite;
      }
      if (!ok || !eat('}')) {  // not a quantifier: '{' is a literal, as in Oniguruma
        pos_ = start;
        return Status::ok();
      }
      if (max < min) return error("bad {n,m} quantifier");
    } else {
      return Status::ok();
    }
    if (at('?') || at('+')) return error("lazy and possessive quantifiers are not supported");
    if (at('*') || at('{')) return error("nested quantifier");
    if (atom.kind == Node::Kind::kClass && atom.min == 1 && atom.max == 1) {
      atom.min = min;
      atom.max = max;
      return Status::ok();
    }
    if (max == kInfinite || max > kMaxGroupRepeat) return error("unbounded repetition of a group is not supported");
    if (atom.kind == Node::Kind::kLook) return error("quantified lookahead");
    Node rep(Node::Kind::kRepeat);
    rep.min = min;
    rep.max = max;
    rep.kids.push_back(std::move(atom));
    atom = std::move(rep);
    return Status::ok();
  }

  Result<Node> parse_atom(bool icase) {
    const char32_t c = cps_[pos_];
    if (c == '(') {
      ++pos_;
      Node look(Node::Kind::kLook);
      bool is_look = false;
      bool group_icase = icase;
      if (eat('?')) {
        if (eat('=')) {
          is_look = true;
        } else if (eat('!')) {
          is_look = true;
          look.negative = true;
        } else {
          bool on = true;
          while (pos_ < cps_.size() && !at(':')) {
            if (eat('-')) {
              on = false;
            } else if (eat('i')) {
              group_icase = on;
            } else {
              return error("unsupported group");
            }
          }
          if (!eat(':')) return error("unsupported group");
        }
      }
      ASSIGN_OR_RETURN(Node inner, parse_alt(group_icase));
      if (!eat(')')) return error("missing ')'");
      if (!is_look) return inner;
      look.kids.push_back(std::move(inner));
      return look;
    }
    if (c == '[') {
      ++pos_;
      return parse_class(icase);
    }
    if (c == ')' || c == '*' || c == '+' || c == '?') return error("unexpected character");
    if (c == '^' || c == '$') return error("anchors are not supported");
    Regex::CharClass cls;
    if (c == '.') {
      ++pos_;
      cls.negated = true;
      cls.ranges.push_back({'\n', '\n'});
    } else if (c == '\\') {
      RETURN_IF_ERROR(parse_escape(cls, icase));
    } else {
      ++pos_;
      add_char(cls, c, icase);
    }
    return class_node(std::move(cls));
  }

  Result<Node> parse_class(bool icase) {
    Regex::CharClass cls;
    cls.negated = eat('^');
    bool first = true;
    while (true) {
      if (pos_ >= cps_.size()) return error("missing ']'");
      if (at(']') && !first) {
        ++pos_;
        break;
      }
      first = false;
      if (at('[')) return error("nested classes are not supported");
      if (at('&') && pos_ + 1 < cps_.size() && cps_[pos_ + 1] == '&') return error("class intersection is not supported");
      char32_t lo;
      if (at('\\')) {
        Regex::CharClass item;
        RETURN_IF_ERROR(parse_escape(item, false));
        if (item.categories != 0 || item.white_space || item.non_white_space || item.negated ||
            item.ranges.size() != 1 || item.ranges[0].first != item.ranges[0].second) {
          merge(cls, item);
          continue;
        }
        lo = item.ranges[0].first;
      } else {
        lo = cps_[pos_++];
      }
      char32_t hi = lo;
      if (at('-') && pos_ + 1 < cps_.size() && cps_[pos_ + 1] != ']') {
        ++pos_;
        if (at('\\')) {
          Regex::CharClass item;
          RETURN_IF_ERROR(parse_escape(item, false));
          if (item.ranges.size() != 1 || item.categories != 0 || item.negated) return error("bad range");
          hi = item.ranges[0].first;
        } else {
          hi = cps_[pos_++];
        }
        if (hi < lo) return error("bad range");
      }
      cls.ranges.push_back({lo, hi});
      if (icase) {
        for (char32_t ch = std::max<char32_t>(lo, 'A'); ch <= std::min<char32_t>(hi, 'z'); ++ch) {
          add_char(cls, ch, true);
        }
      }
    }
    return class_node(std::move(cls));
  }

  static void merge(Regex::CharClass& into, const Regex::CharClass& item) {
    if (item.negated) {  // only \P{..} / \D / \W reach here negated; fold into a mask
      into.categories |= kAllCategories & ~item.categories;
      return;
    }
    into.categories |= item.categories;
    into.white_space |= item.white_space;
    into.non_white_space |= item.non_white_space;
    into.ranges.insert(into.ranges.end(), item.ranges.begin(), item.ranges.end());
  }

  static void add_char(Regex::CharClass& cls, char32_t c, bool icase) {
    cls.ranges.push_back({c, c});
    if (!icase) return;
    if (c >= 'a' && c <= 'z') cls.ranges.push_back({c - 32, c - 32});
    if (c >= 'A' && c <= 'Z') cls.ranges.push_back({c + 32, c + 32});
    if (c == 's' || c == 'S') cls.ranges.push_back({0x17F, 0x17F});    // long s
    if (c == 'k' || c == 'K') cls.ranges.push_back({0x212A, 0x212A});  // Kelvin sign
  }

  // At a backslash; fills cls.
  Status parse_escape(Regex::CharClass& cls, bool icase) {
    ++pos_;
    if (pos_ >= cps_.size()) return error("trailing backslash");
    const char32_t c = cps_[pos_++];
    switch (c) {
      case 's': cls.white_space = true; return Status::ok();
      case 'S': cls.non_white_space = true; return Status::ok();
      case 'd': cls.categories = bit(GC::kNd); return Status::ok();
      case 'D': cls.categories = bit(GC::kNd); cls.negated = true; return Status::ok();
      case 'w': cls.categories = kWord; return Status::ok();
      case 'W': cls.categories = kWord; cls.negated = true; return Status::ok();
      case 'n': add_char(cls, '\n', false); return Status::ok();
      case 'r': add_char(cls, '\r', false); return Status::ok();
      case 't': add_char(cls, '\t', false); return Status::ok();
      case 'f': add_char(cls, '\f', false); return Status::ok();
      case 'v': add_char(cls, '\v', false); return Status::ok();
      case 'p':
      case 'P': {
        std::string name;
        if (eat('{')) {
          bool neg = eat('^');
          while (pos_ < cps_.size() && !at('}')) {
            if (cps_[pos_] >= 128) return error("bad property name");
            name.push_back(static_cast<char>(cps_[pos_++]));
          }
          if (!eat('}')) return error("missing '}'");
          if (neg) cls.negated = !cls.negated;
        } else if (pos_ < cps_.size() && cps_[pos_] < 128) {
          name.push_back(static_cast<char>(cps_[pos_++]));
        }
        const uint32_t mask = category_mask(name);
        if (mask == 0) return error("unsupported property \\p{" + name + "}");
        cls.categories = mask;
        if (c == 'P') cls.negated = !cls.negated;
        return Status::ok();
      }
      case 'x':
      case 'u': {
        char32_t v = 0;
        int digits = 0;
        const bool braced = eat('{');
        const int max_digits = braced ? 8 : (c == 'x' ? 2 : 4);
        while (digits < max_digits && pos_ < cps_.size()) {
          const char32_t h = cps_[pos_];
          int d = h >= '0' && h <= '9' ? int(h - '0') : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                  : h >= 'A' && h <= 'F' ? int(h - 'A' + 10) : -1;
          if (d < 0) break;
          v = v * 16 + static_cast<char32_t>(d);
          ++digits;
          ++pos_;
        }
        if (digits == 0 || (braced && !eat('}')) || v >= 0x110000) return error("bad hex escape");
        add_char(cls, v, icase);
        return Status::ok();
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          return error("unsupported escape");
        }
        add_char(cls, c, icase);
        return Status::ok();
    }
  }

  Node class_node(Regex::CharClass cls) {
    for (char32_t cp = 0; cp < 128; ++cp) {
      if (cls.matches_slow(cp)) cls.ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
    }
    Node n(Node::Kind::kClass);
    n.cls = static_cast<int32_t>(classes_.size());
    classes_.push_back(std::move(cls));
    return n;
  }

  std::vector<Regex::CharClass>& classes_;
  std::vector<char32_t> cps_;
  std::vector<uint32_t> offsets_;
  size_t pos_ = 0;
};

}  // namespace

bool Regex::CharClass::matches_slow(char32_t cp) const {
  bool m = ((categories >> static_cast<int>(general_category(cp))) & 1) != 0;
  if (!m && (white_space || non_white_space)) {
    const bool ws = is_white_space(cp);
    m = (white_space && ws) || (non_white_space && !ws);
  }
  for (size_t i = 0; !m && i < ranges.size(); ++i) m = cp >= ranges[i].first && cp <= ranges[i].second;
  return m != negated;
}

namespace {

class Compiler {
 public:
  Compiler(const std::vector<Regex::CharClass>& classes, std::vector<Regex::Program>& programs)
      : classes_(classes), programs_(programs) {}

  // Compiles n into programs_[index] (already allocated).
  void compile(const Node& n, size_t index) {
    std::vector<Regex::Inst> insts;
    emit(n, insts);
    insts.push_back({Regex::Op::kMatch});
    Regex::Program& p = programs_[index];
    p.insts = std::move(insts);
    fill_next(p);
    p.first_non_ascii = false;
    p.can_be_empty = first(n, p.first_ascii, p.first_non_ascii);
  }

 private:
  void emit(const Node& n, std::vector<Regex::Inst>& out) {
    using Op = Regex::Op;
    switch (n.kind) {
      case Node::Kind::kClass:
        out.push_back({Op::kChar, false, n.cls, 0, n.min, n.max});
        break;
      case Node::Kind::kConcat:
        for (const Node& k : n.kids) emit(k, out);
        break;
      case Node::Kind::kAlt: {
        std::vector<size_t> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            const size_t split = out.size();
            out.push_back({Op::kSplit, false, static_cast<int32_t>(split + 1), 0});
            emit(n.kids[i], out);
            jumps.push_back(out.size());
            out.push_back({Op::kJmp});
            out[split].b = static_cast<int32_t>(out.size());
          } else {
            emit(n.kids[i], out);
          }
        }
        for (size_t j : jumps) out[j].a = static_cast<int32_t>(out.size());
        break;
      }
      case Node::Kind::kRepeat: {
        for (int32_t i = 0; i < n.min; ++i) emit(n.kids[0], out);
        std::vector<size_t> splits;
        for (int32_t i = n.min; i < n.max; ++i) {
          splits.push_back(out.size());
          out.push_back({Op::kSplit, false, static_cast<int32_t>(out.size() + 1), 0});
          emit(n.kids[0], out);
        }
        for (size_t s : splits) out[s].b = static_cast<int32_t>(out.size());
        break;
      }
      case Node::Kind::kLook: {
        const size_t index = programs_.size();
        programs_.emplace_back();
        compile(n.kids[0], index);
        out.push_back({Op::kLook, n.negative, static_cast<int32_t>(index), 0});
        break;
      }
    }
  }

  // Jumps only go forward (no loops: group repetition is unrolled), so one
  // backward pass sees every target before its source.
  void fill_next(Regex::Program& p) const {
    using Op = Regex::Op;
    p.next.assign(p.insts.size(), Regex::Next{});
    auto join = [](Regex::Next& into, const Regex::Next& from) {
      into.ascii[0] |= from.ascii[0];
      into.ascii[1] |= from.ascii[1];
      into.non_ascii = into.non_ascii || from.non_ascii;
      into.nullable = into.nullable || from.nullable;
    };
    for (size_t pc = p.insts.size(); pc-- > 0;) {
      const Regex::Inst& in = p.insts[pc];
      Regex::Next& n = p.next[pc];
      switch (in.op) {
        case Op::kMatch:
          n.nullable = true;
          break;
        case Op::kChar: {
          const Regex::CharClass& c = classes_[static_cast<size_t>(in.a)];
          n.ascii[0] = c.ascii[0];
          n.ascii[1] = c.ascii[1];
          bool only_ascii = !c.negated && c.categories == 0 && !c.white_space && !c.non_white_space;
          for (const auto& r : c.ranges) only_ascii = only_ascii && r.second < 128;
          n.non_ascii = !only_ascii;
          if (in.min == 0) join(n, p.next[pc + 1]);
          break;
        }
        case Op::kSplit:
          join(n, p.next[static_cast<size_t>(in.a)]);
          join(n, p.next[static_cast<size_t>(in.b)]);
          break;
        case Op::kJmp:
          n = p.next[static_cast<size_t>(in.a)];
          break;
        case Op::kLook:
          // A lookahead consumes nothing; what follows it must still match here.
          n = p.next[pc + 1];
          break;
      }
    }
  }

  // Adds the chars that can start n; returns whether n can match empty.
  bool first(const Node& n, uint64_t* ascii, bool& non_ascii) {
    switch (n.kind) {
      case Node::Kind::kClass: {
        const Regex::CharClass& c = classes_[static_cast<size_t>(n.cls)];
        ascii[0] |= c.ascii[0];
        ascii[1] |= c.ascii[1];
        bool only_ascii = !c.negated && c.categories == 0 && !c.white_space && !c.non_white_space;
        for (const auto& r : c.ranges) only_ascii = only_ascii && r.second < 128;
        non_ascii = non_ascii || !only_ascii;
        return n.min == 0;
      }
      case Node::Kind::kConcat:
        for (const Node& k : n.kids) {
          if (!first(k, ascii, non_ascii)) return false;
        }
        return true;
      case Node::Kind::kAlt: {
        bool empty = false;
        for (const Node& k : n.kids) empty = first(k, ascii, non_ascii) || empty;
        return empty;
      }
      case Node::Kind::kRepeat:
        return first(n.kids[0], ascii, non_ascii) || n.min == 0;
      case Node::Kind::kLook:
        return true;
    }
    return true;
  }

  const std::vector<Regex::CharClass>& classes_;
  std::vector<Regex::Program>& programs_;
};

}  // namespace

Result<Regex> Regex::compile(std::string_view pattern) {
  Regex re;
  Parser parser(pattern, re.classes_);
  ASSIGN_OR_RETURN(Node root, parser.parse());
  re.programs_.emplace_back();
  Compiler(re.classes_, re.programs_).compile(root, 0);
  return re;
}

int64_t Regex::match_at(const Program& program, std::span<const char32_t> text, uint32_t pos,
                        std::vector<Frame>& stack) const {
  const size_t base = stack.size();  // lookaheads share the stack above this mark
  int32_t pc = 0;
  const auto n = static_cast<uint32_t>(text.size());
  while (true) {
    const Inst& in = program.insts[static_cast<size_t>(pc)];
    bool fail = false;
    switch (in.op) {
      case Op::kChar: {
        const CharClass& cls = classes_[static_cast<size_t>(in.a)];
        int32_t count = 0;
        while (count < in.max && pos + static_cast<uint32_t>(count) < n &&
               cls.matches(text[pos + static_cast<uint32_t>(count)])) {
          ++count;
        }
        if (count < in.min) {
          fail = true;
        } else {
          if (count > in.min) stack.push_back({pc, pos, count - 1});
          pos += static_cast<uint32_t>(count);
          ++pc;
        }
        break;
      }
      case Op::kSplit:
        // Only branches that can match at this char are tried (or kept for
        // backtracking); the order between them is unchanged.
        if (!program.next[static_cast<size_t>(in.a)].viable(text, pos)) {
          pc = in.b;
        } else {
          if (program.next[static_cast<size_t>(in.b)].viable(text, pos)) stack.push_back({in.b, pos, -1});
          pc = in.a;
        }
        break;
      case Op::kJmp:
        pc = in.a;
        break;
      case Op::kLook: {
        const bool matched = match_at(programs_[static_cast<size_t>(in.a)], text, pos, stack) >= 0;
        if (matched == in.negative) {
          fail = true;
        } else {
          ++pc;
        }
        break;
      }
      case Op::kMatch:
        stack.resize(base);
        return pos;
    }
    if (!fail) continue;
    if (stack.size() == base) return -1;
    const Frame f = stack.back();
    stack.pop_back();
    if (f.count >= 0) {
      const Inst& rep = program.insts[static_cast<size_t>(f.pc)];
      if (f.count > rep.min) stack.push_back({f.pc, f.pos, f.count - 1});
      pos = f.pos + static_cast<uint32_t>(f.count);
      pc = f.pc + 1;
    } else {
      pc = f.pc;
      pos = f.pos;
    }
  }
}

void Regex::find_all(std::span<const char32_t> text, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  const Program& main = programs_[0];
  std::vector<Frame> stack;
  const auto n = static_cast<uint32_t>(text.size());
  for (uint32_t pos = 0; pos < n;) {
    const char32_t c = text[pos];
    if (!main.can_be_empty) {
      const bool possible = c < 128 ? ((main.first_ascii[c >> 6] >> (c & 63)) & 1) != 0 : main.first_non_ascii;
      if (!possible) {
        ++pos;
        continue;
      }
    }
    const int64_t end = match_at(main, text, pos, stack);
    if (end > static_cast<int64_t>(pos)) {
      out.push_back({pos, static_cast<uint32_t>(end)});
      pos = static_cast<uint32_t>(end);
    } else {
      ++pos;
    }
  }
}

}  // namespace llmctl::tokenizer
