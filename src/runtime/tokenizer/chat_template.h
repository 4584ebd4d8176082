// ChatTemplate: a model's Jinja chat template, rendered the way Hugging Face
// transformers' apply_chat_template(tokenize=False) renders it, by llmctl's own
// Jinja-subset interpreter (jinja_*.h). CPU only; no Python.
//
// Where the template comes from (the order transformers uses):
//   1. <dir>/chat_template.jinja (plus <dir>/additional_chat_templates/*.jinja,
//      which turn it into a set of named templates, the file being "default");
//   2. tokenizer_config.json "chat_template": a string, or a list of
//      {"name": ..., "template": ...} (named templates);
//   3. <dir>/chat_template.json {"chat_template": ...} (the processor format).
// bos_token / eos_token / unk_token / pad_token come from tokenizer_config.json
// (plain strings or AddedToken objects {"content": ...}).
//
// Thread safety: a loaded ChatTemplate is immutable; render() is const and may
// be called from several threads at once.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::tokenizer {

namespace jinja {
class Template;
}

struct ChatRenderOptions {
  // Ends the prompt with the assistant turn's opening (transformers' add_generation_prompt).
  bool add_generation_prompt = false;
  // Tool definitions (OpenAI JSON schema list); null means "no tools" (the
  // template sees `tools` as none), exactly as transformers passes tools=None.
  nlohmann::ordered_json tools = nullptr;
  // Documents for RAG templates; null means none.
  nlohmann::ordered_json documents = nullptr;
  // Extra template variables (enable_thinking, date_string, ...); a JSON object.
  // They override bos_token / eos_token if both are given, as in transformers.
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  // Named template to use when the model has several ("default", "tool_use",
  // ...). Empty: "tool_use" when tools are given and it exists, else "default".
  std::string template_name;
  // The local time strftime_now() formats; empty means the real clock.
  // Tests inject a fixed time.
  std::function<std::tm()> now;
};

class ChatTemplate {
 public:
  // Reads the template(s) and special tokens from a model folder (see above).
  // NOT_FOUND when the folder has no chat template at all; INVALID_ARGUMENT
  // naming the file, line and column when a template does not parse.
  static Result<ChatTemplate> load(const std::string& model_dir);
  // As load(), but the template comes from `template_file`: a .jinja file
  // (raw template text) or a .json file holding {"chat_template": ...}.
  static Result<ChatTemplate> load(const std::string& model_dir, const std::string& template_file);
  // A template from text; `special_tokens` maps names such as "bos_token" to values.
  static Result<ChatTemplate> from_string(const std::string& source,
                                          std::map<std::string, std::string> special_tokens = {},
                                          std::string origin = "chat_template");

  // Renders `messages` (a JSON array of message objects). Message keys whose
  // value is null are dropped, and reasoning is aliased between
  // reasoning_content / thinking / reasoning, as transformers does before
  // rendering. Errors: INVALID_ARGUMENT for bad input, a template's
  // raise_exception() message, or a runtime error naming the template line and
  // column.
  // JSON is taken as nlohmann::ordered_json because key order is visible in
  // the prompt (tojson of tool schemas, arguments): parse requests with
  // nlohmann::ordered_json::parse, not nlohmann::json (which sorts keys).
  Result<std::string> render(const nlohmann::ordered_json& messages, const ChatRenderOptions& opts) const;

  // Names of the templates this model has ("default" for a single one).
  std::vector<std::string> template_names() const;
  const std::map<std::string, std::string>& special_tokens() const { return special_tokens_; }
  // Where the template was read from, for messages ("<dir>/tokenizer_config.json").
  const std::string& origin() const { return origin_; }

 private:
  static Result<ChatTemplate> from_parts(std::map<std::string, std::string> sources,
                                         std::map<std::string, std::string> special_tokens, std::string origin);

  std::map<std::string, std::shared_ptr<const jinja::Template>> templates_;
  std::map<std::string, std::string> special_tokens_;
  std::string origin_;
};

}  // namespace llmctl::tokenizer
