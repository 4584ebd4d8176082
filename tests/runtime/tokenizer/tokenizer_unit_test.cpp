// Unit tests of the tokenizer's parts: the regex engine, Unicode helpers and
// the errors a malformed tokenizer.json gives.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"

namespace llmctl::tokenizer {
namespace {

std::vector<std::string> find_all(std::string_view pattern, std::string_view text) {
  auto re = Regex::compile(pattern);
  REQUIRE_MESSAGE(re.is_ok(), re.status().to_string());
  std::vector<char32_t> cps;
  std::vector<size_t> offs;
  for (size_t i = 0; i < text.size();) {
    offs.push_back(i);
    cps.push_back(decode_utf8(text, i));
  }
  offs.push_back(text.size());
  std::vector<std::pair<uint32_t, uint32_t>> m;
  re->find_all(cps, m);
  std::vector<std::string> out;
  for (auto [s, e] : m) out.emplace_back(text.substr(offs[s], offs[e] - offs[s]));
  return out;
}

TEST_CASE("regex: GPT-2 style pattern, leftmost-first with lookahead") {
  const char* gpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  CHECK(find_all(gpt2, "Hello world's  end!!") ==
        std::vector<std::string>{"Hello", " world", "'s", " ", " end", "!!"});
  CHECK(find_all(gpt2, "a   b") == std::vector<std::string>{"a", "  ", " b"});
  CHECK(find_all(gpt2, "x 123") == std::vector<std::string>{"x", " 123"});
}

TEST_CASE("regex: case-insensitive groups, counted repetition, classes") {
  CHECK(find_all("(?i:'s|'ll)", "'S 'Ll 'x") == std::vector<std::string>{"'S", "'Ll"});
  CHECK(find_all(R"(\p{N}{1,3})", "12345") == std::vector<std::string>{"123", "45"});
  CHECK(find_all(R"([^\r\n\p{L}\p{N}]?\p{L}+)", "\u00e9t\u00e9 .x") == std::vector<std::string>{"\u00e9t\u00e9", ".x"});
  CHECK(find_all(R"([a-c]+|\d)", "abcdx9") == std::vector<std::string>{"abc", "9"});
  CHECK(find_all(R"(\s+(?!\S)|\s+)", "a \u00a0 b") == std::vector<std::string>{" \u00a0", " "});
}

TEST_CASE("regex: unsupported syntax is an error with an offset, not a crash") {
  for (const char* bad : {"(", "a)", "[abc", "(?<=a)b", "a**", "(ab)*", "\\p{Nope}", "x{2,1}", "\\", "a+?"}) {
    auto re = Regex::compile(bad);
    CHECK_MESSAGE(!re.is_ok(), bad);
  }
}

TEST_CASE("unicode: lossy UTF-8 decoding replaces maximal invalid subparts") {
  CHECK(sanitize_utf8("a\xff" "b") == "a\uFFFD" "b");
  CHECK(sanitize_utf8("\xe4\xb8") == "\uFFFD");                   // truncated: one replacement
  CHECK(sanitize_utf8("\xed\xa0\x80") == "\uFFFD\uFFFD\uFFFD");   // surrogate: three
  CHECK(sanitize_utf8("\xf0\x9f\x98\x80") == "\U0001F600");
  CHECK(is_valid_utf8("\uFFFD ok"));
  CHECK(complete_utf8_prefix("ab\xe4\xb8") == 2);
  CHECK(complete_utf8_prefix("ab\xe4\xb8\xad") == 5);
}

TEST_CASE("unicode: NFC composes, reorders and handles Hangul") {
  CHECK(nfc("e\u0301") == "\u00e9");
  CHECK(nfc("A\u030a") == "\u00c5");
  CHECK(nfc("\u1100\u1161\u11a8") == "\uac01");
  CHECK(nfc("q\u0323\u0307") == "q\u0323\u0307");
  CHECK(nfc("s\u0307\u0323") == "\u1e69");  // reordered, then composed
  CHECK(nfc("plain ascii") == "plain ascii");
  CHECK(general_category(U'A') == GeneralCategory::kLu);
  CHECK(general_category(U'\u4e2d') == GeneralCategory::kLo);
  CHECK(is_white_space(0x3000));
  CHECK_FALSE(is_white_space(0x200B));
}

std::string minimal_json(std::string_view model_extra = "", std::string_view top_extra = "") {
  return std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3}, "merges": ["a b"])") +
         std::string(model_extra) + "}" + std::string(top_extra) +
         R"(, "added_tokens": [{"id": 3, "content": "<s>", "special": true}]})";
}

TEST_CASE("tokenizer: a minimal BPE tokenizer encodes and decodes") {
  auto tok = Tokenizer::from_json(minimal_json(), "", "mem.json");
  REQUIRE_MESSAGE(tok.is_ok(), tok.status().to_string());
  CHECK(tok->encode("abab<s>b", false) == std::vector<int32_t>{2, 2, 3, 1});
  CHECK(tok->vocab_size() == 4);
  CHECK(tok->token_to_id("ab") == 2);
  CHECK(tok->id_to_token(3) == "<s>");
  CHECK(tok->is_special(3));
  CHECK(tok->bos_id() == -1);
}

TEST_CASE("tokenizer: malformed tokenizer.json gives a Status naming file and JSON path") {
  struct Case {
    std::string json, expect;
  };
  const Case cases[] = {
      {"{not json", "mem.json: not valid JSON"},
      {"[]", "mem.json: (root): expected an object"},
      {R"({"model": {"type": "BPE", "vocab": {"a": "x"}}})", "model.vocab.a: expected an integer"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}})", "not in the vocabulary"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "aa": 1}, "merges": ["a a", "a  a"]}})", "model.merges[1]: expected \"left right\""},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", 1]]}})", "model.merges[0][1]: expected a string"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": -1}}})", "model.vocab.b: id out of range"},
      {R"({"model": {"type": "WordPiece", "vocab": {}}})", "model.type: unsupported model type"},
      {minimal_json("", R"(, "normalizer": {"type": "Lowercase2"})"), "normalizer.type"},
      {minimal_json("", R"J(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<=x)"}, "behavior": "Isolated"})J"),
       "pre_tokenizer.pattern.Regex: regex"},
      {minimal_json("", R"(, "decoder": {"type": "Sequence", "decoders": [{"type": "Fuse"}, 3]})"), "decoder.decoders[1]"},
      {minimal_json("", R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<x>"}}]})"),
       "post_processor.special_tokens"},
  };
  for (const Case& c : cases) {
    auto tok = Tokenizer::from_json(c.json, "", "mem.json");
    REQUIRE_FALSE(tok.is_ok());
    INFO(tok.status().message());
    CHECK(tok.status().code() == StatusCode::kInvalidArgument);
    CHECK(tok.status().message().find(c.expect) != std::string::npos);
  }
  auto missing = Tokenizer::load("/nonexistent/model");
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

TEST_CASE("tokenizer: bos/eos from tokenizer_config.json") {
  auto tok = Tokenizer::from_json(minimal_json(), R"({"bos_token": {"content": "<s>"}, "eos_token": "ab"})", "mem.json");
  REQUIRE(tok.is_ok());
  CHECK(tok->bos_id() == 3);
  CHECK(tok->eos_ids() == std::vector<int32_t>{2});
  auto bad = Tokenizer::from_json(minimal_json(), R"({"bos_token": "<nope>"})", "mem.json");
  CHECK(!bad.is_ok());
}

TEST_CASE("incremental decoder never splits a UTF-8 character") {
  const std::string dir = std::string(LLMCTL_SHARED_DIR) + "/assets/tokenizers/qwen3";
  auto tok = Tokenizer::load(dir);
  REQUIRE(tok.is_ok());
  const std::string text = "emoji 👨‍👩‍👧 中文 done";
  const auto ids = tok->encode(text, false);
  IncrementalDecoder dec(*tok, false);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    CHECK(is_valid_utf8(piece));
    all += piece;
  }
  all += dec.finish();
  CHECK(all == text);
}

// SentencePiece-style: the whole text is one word; encode cuts it before
// each "\u2581" only when no token spans such a cut ("a\u2581" here does).
std::string metaspace_json(bool with_crossing_token) {
  std::string vocab = R"("\u2581": 0, "a": 1, "b": 2, "\u2581a": 3, "\u2581b": 4)";
  std::string merges = R"(["\u2581 a", "\u2581 b")";
  if (with_crossing_token) {
    vocab += R"(, "a\u2581": 5, "a\u2581b": 6)";
    merges = R"(["a \u2581", "a\u2581 b", "\u2581 a", "\u2581 b")";
  }
  return R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
             {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
           "model": {"type": "BPE", "vocab": {)" + vocab + "}, \"merges\": " + merges + "]}}";
}

TEST_CASE("tokenizer: a one-word SentencePiece text is cut only where no merge can cross") {
  auto safe = Tokenizer::from_json(metaspace_json(false), "", "safe.json");
  REQUIRE_MESSAGE(safe.is_ok(), safe.status().to_string());
  // "\u2581a\u2581b\u2581\u2581a": the run of two markers stays together.
  CHECK(safe->encode("a b  a", false) == std::vector<int32_t>{3, 4, 0, 3});
  auto crossing = Tokenizer::from_json(metaspace_json(true), "", "crossing.json");
  REQUIRE_MESSAGE(crossing.is_ok(), crossing.status().to_string());
  // "a \u2581" ranks first, so "a\u2581b" forms across the would-be cut.
  CHECK(crossing->encode("a b", false) == std::vector<int32_t>{0, 6});
}

TEST_CASE("tokenizer: concurrent encodes share the word cache and agree with a lone encode") {
  const std::string dir = std::string(LLMCTL_SHARED_DIR) + "/assets/tokenizers/";
  for (const char* name : {"llama3.1", "mistral"}) {
    auto tok = Tokenizer::load(dir + name);
    REQUIRE_MESSAGE(tok.is_ok(), tok.status().to_string());
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) {
      std::string t;
      for (int w = 0; w < 400; ++w) t += "word" + std::to_string((w * 7919 + i * 31) % 997) + (w % 5 ? " " : ",\n");
      texts.push_back(t);
    }
    std::vector<std::vector<int32_t>> alone;
    {
      auto fresh = Tokenizer::load(dir + name);
      REQUIRE(fresh.is_ok());
      for (const auto& t : texts) alone.push_back(fresh->encode(t, false));
    }
    std::vector<std::vector<int32_t>> got(texts.size() * 4);
    std::vector<std::thread> threads;
    for (size_t k = 0; k < 4; ++k) {
      threads.emplace_back([&, k] {
        for (size_t i = 0; i < texts.size(); ++i) got[k * texts.size() + i] = tok->encode(texts[(i + k) % texts.size()], false);
      });
    }
    for (auto& th : threads) th.join();
    for (size_t k = 0; k < 4; ++k) {
      for (size_t i = 0; i < texts.size(); ++i) CHECK(got[k * texts.size() + i] == alone[(i + k) % texts.size()]);
    }
  }
}

}  // namespace
}  // namespace llmctl::tokenizer
