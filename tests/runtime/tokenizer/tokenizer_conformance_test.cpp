// Conformance with Hugging Face `tokenizers` on every real tokenizer in
// ../shared/assets: fixtures made by tests/fixtures/tokenizer/generate.py.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"

namespace llmctl::tokenizer {
namespace {

nlohmann::json read_fixture(const std::string& name) {
  std::ifstream in(std::string(LLMCTL_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name + ".json");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + ",";
  return s;
}

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDecoder dec(tok, skip);
  std::string out;
  for (int32_t id : ids) out += dec.push(id);
  out += dec.finish();
  return out;
}

void check_fixture(const std::string& name) {
  const nlohmann::json fixture = read_fixture(name);
  const std::string dir = std::string(LLMCTL_SHARED_DIR) + "/assets/" + fixture["tokenizer"].get<std::string>();
  auto loaded = Tokenizer::load(dir);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  const Tokenizer& tok = *loaded;
  for (const auto& c : fixture["cases"]) {
    const std::string text = c.contains("text") ? c["text"].get<std::string>() : from_hex(c["bytes_hex"]);
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto want_plain = c["ids_no_special"].get<std::vector<int32_t>>();
    INFO(name << " text: " << text);
    CHECK(ids_str(tok.encode(text, true)) == ids_str(want));
    CHECK(ids_str(tok.encode(text, false)) == ids_str(want_plain));
    CHECK(tok.decode(want, false) == c["decoded"].get<std::string>());
    CHECK(tok.decode(want, true) == c["decoded_skip_special"].get<std::string>());
    CHECK(stream(tok, want, false) == c["decoded"].get<std::string>());
    CHECK(stream(tok, want, true) == c["decoded_skip_special"].get<std::string>());
  }
  for (const auto& c : fixture["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    INFO(name << " decode ids: " << ids_str(ids));
    CHECK(tok.decode(ids, false) == c["decoded"].get<std::string>());
    CHECK(tok.decode(ids, true) == c["decoded_skip_special"].get<std::string>());
    CHECK(stream(tok, ids, false) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("conformance: gpt2") { check_fixture("gpt2"); }
TEST_CASE("conformance: llama3.1") { check_fixture("llama3.1"); }
TEST_CASE("conformance: qwen2.5") { check_fixture("qwen2.5"); }
TEST_CASE("conformance: qwen3") { check_fixture("qwen3"); }
TEST_CASE("conformance: mistral") { check_fixture("mistral"); }
TEST_CASE("conformance: mistral-nemo") { check_fixture("mistral-nemo"); }
TEST_CASE("conformance: stories260K") { check_fixture("stories260K"); }

}  // namespace
}  // namespace llmctl::tokenizer
