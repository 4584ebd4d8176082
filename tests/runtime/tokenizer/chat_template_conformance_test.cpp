// Conformance: every real chat template in ../shared/assets/tokenizers rendered
// by llmctl must equal transformers' apply_chat_template(tokenize=False), byte
// for byte, and templates that raise must raise with the same message.
// Fixtures: tests/fixtures/chat_template/cases.json (from generate.py there).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "runtime/tokenizer/chat_template.h"

using llmctl::StatusCode;
using llmctl::tokenizer::ChatRenderOptions;
using llmctl::tokenizer::ChatTemplate;

namespace {

const std::string kAssets = std::string(LLMCTL_SHARED_DIR) + "/assets";

nlohmann::ordered_json load_cases() {
  std::ifstream in(std::string(LLMCTL_SOURCE_DIR) + "/tests/fixtures/chat_template/cases.json");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::ordered_json::parse(ss.str());
}

std::tm fixed_now() {
  // generate.py pins datetime.now() to 2024-07-26 10:00:00.
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_hour = 10;
  tm.tm_wday = 5;
  tm.tm_yday = 207;
  return tm;
}

}  // namespace

TEST_CASE("chat templates render exactly as transformers does") {
  nlohmann::ordered_json fixtures = load_cases();
  std::map<std::string, ChatTemplate> templates;
  int checked = 0, raised = 0;
  for (const auto& c : fixtures["cases"]) {
    std::string model = c["model"];
    std::string dir = kAssets + "/tokenizers/" + model;
    std::string file = c["template_file"].is_null() ? "" : dir + "/" + c["template_file"].get<std::string>();
    if (!templates.count(model)) {
      auto loaded = file.empty() ? ChatTemplate::load(dir) : ChatTemplate::load(dir, file);
      REQUIRE_MESSAGE(loaded.is_ok(), model << ": " << loaded.status().to_string());
      templates.emplace(model, std::move(loaded).value());
    }
    ChatRenderOptions opts;
    opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    opts.tools = c["tools"];
    opts.kwargs = c["kwargs"];
    opts.now = fixed_now;
    auto rendered = templates.at(model).render(c["messages"], opts);
    std::string label = model + "/" + c["name"].get<std::string>();
    CAPTURE(label);
    if (c.contains("error")) {
      REQUIRE_FALSE(rendered.is_ok());
      CHECK(rendered.status().message().find(c["error"].get<std::string>()) != std::string::npos);
      ++raised;
    } else {
      REQUIRE_MESSAGE(rendered.is_ok(), rendered.status().to_string());
      CHECK(rendered.value() == c["expected"].get<std::string>());
      ++checked;
    }
  }
  CHECK(checked >= 40);
  CHECK(raised >= 5);
  CHECK(templates.size() == 5);
}

TEST_CASE("llama 3.1 uses strftime_now with the injected clock") {
  auto t = ChatTemplate::load(kAssets + "/tokenizers/llama3.1");
  REQUIRE(t.is_ok());
  ChatRenderOptions opts;
  opts.now = fixed_now;
  auto r = t->render(nlohmann::ordered_json::parse(R"([{"role":"user","content":"hi"}])"), opts);
  REQUIRE(r.is_ok());
  CHECK(r->find("Today Date: 26 Jul 2024\n") != std::string::npos);
  CHECK(r->rfind("<|begin_of_text|>", 0) == 0);
}

TEST_CASE("models without a chat template are a clear NOT_FOUND") {
  for (const char* dir : {"/tokenizers/gpt2", "/stories260K"}) {
    auto t = ChatTemplate::load(kAssets + dir);
    REQUIRE_FALSE(t.is_ok());
    CHECK(t.status().code() == StatusCode::kNotFound);
    CHECK(t.status().message().find("has no chat template") != std::string::npos);
  }
  auto missing = ChatTemplate::load(kAssets + "/no-such-model");
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

TEST_CASE("bad messages are INVALID_ARGUMENT, not crashes") {
  auto t = ChatTemplate::load(kAssets + "/tokenizers/qwen2.5");
  REQUIRE(t.is_ok());
  ChatRenderOptions opts;
  CHECK(t->render(nlohmann::ordered_json::object(), opts).status().code() == StatusCode::kInvalidArgument);
  CHECK(t->render(nlohmann::ordered_json::array(), opts).status().code() == StatusCode::kInvalidArgument);
  CHECK(t->render(nlohmann::ordered_json::parse(R"(["hello"])"), opts).status().message().find("messages[0]") !=
        std::string::npos);
  // A message without content: the template's own error, with its position.
  auto r = t->render(nlohmann::ordered_json::parse(R"([{"role":"user"}])"), opts);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("tokenizer_config.json:") != std::string::npos);
}
