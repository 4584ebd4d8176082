// llmctl chat-template: render a conversation with the model's Jinja chat template (issue #4).
// Prints the prompt's exact bytes (no newline added), as transformers'
// apply_chat_template(tokenize=False) would produce them.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "runtime/tokenizer/chat_template.h"

namespace llmctl::cli {
namespace {

// Reads and parses a JSON file ("-" is stdin), keeping key order (it shows in prompts).
Result<nlohmann::ordered_json> read_json_file(const std::string& path, const std::string& what) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::not_found(what + " file " + path + " cannot be read");
    ss << in.rdbuf();
  }
  try {
    return nlohmann::ordered_json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the 1-based offset of the bad character.
    return Status::invalid_argument(what + " file " + path + " is not valid JSON (at byte " +
                                    std::to_string(e.byte) + ")");
  }
}

struct Options {
  std::string model, messages, tools, kwargs, template_file, template_name;
  bool add_generation_prompt = false;
};

Status run(const Options& o) {
  ASSIGN_OR_RETURN(nlohmann::ordered_json messages, read_json_file(o.messages, "--messages"));
  // Accept an OpenAI request body too: {"messages": [...], "tools": [...]}.
  nlohmann::ordered_json tools = nullptr;
  if (messages.is_object() && messages.contains("messages")) {
    if (messages.contains("tools")) tools = messages["tools"];
    messages = nlohmann::ordered_json(messages["messages"]);
  }
  if (!messages.is_array()) {
    return Status::invalid_argument("--messages file " + o.messages +
                                    " must hold a JSON array of messages, e.g. [{\"role\":\"user\",\"content\":\"hi\"}]");
  }
  if (!o.tools.empty()) {
    ASSIGN_OR_RETURN(tools, read_json_file(o.tools, "--tools"));
    if (!tools.is_array()) return Status::invalid_argument("--tools file " + o.tools + " must hold a JSON array");
  }
  tokenizer::ChatRenderOptions opts;
  opts.add_generation_prompt = o.add_generation_prompt;
  opts.tools = tools;
  opts.template_name = o.template_name;
  if (!o.kwargs.empty()) {
    try {
      opts.kwargs = nlohmann::ordered_json::parse(o.kwargs);
    } catch (const nlohmann::json::parse_error&) {
      return Status::invalid_argument("--kwargs is not valid JSON: " + o.kwargs);
    }
    if (!opts.kwargs.is_object()) return Status::invalid_argument("--kwargs must be a JSON object, e.g. '{\"enable_thinking\":false}'");
  }
  auto tpl = o.template_file.empty() ? tokenizer::ChatTemplate::load(o.model)
                                     : tokenizer::ChatTemplate::load(o.model, o.template_file);
  if (!tpl.is_ok()) return tpl.status();
  auto prompt = tpl->render(messages, opts);
  if (!prompt.is_ok()) return prompt.status().with_context("rendering " + o.messages);
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  std::fflush(stdout);
  return Status::ok();
}

}  // namespace

void register_chat_template(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("chat-template", "Render messages with the model's chat template and print the prompt");
  cmd->add_option("--model", o->model, "Model folder holding tokenizer_config.json")->required();
  cmd->add_option("--messages", o->messages,
                  R"(JSON file ('-' for stdin): [{"role":"user","content":"..."}] or an OpenAI request body)")
      ->required();
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's opening");
  cmd->add_option("--tools", o->tools, "JSON file with the tool definitions (OpenAI function schemas)");
  cmd->add_option("--kwargs", o->kwargs, R"(Extra template variables as a JSON object, e.g. '{"enable_thinking":false}')");
  cmd->add_option("--template", o->template_file,
                  "Use this template file instead of the model's (.jinja, or .json with a \"chat_template\" key)");
  cmd->add_option("--template-name", o->template_name, "Which named template to use when the model has several");
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      Status s = run(*o);
      return s.is_ok() ? kExitOk : report_error("chat-template", s);
    };
  });
}

}  // namespace llmctl::cli
