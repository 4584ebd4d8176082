// llmctl chat-template: render a conversation with the model's Jinja chat template (issue #4).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_chat_template(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string model, messages;
    bool add_generation_prompt = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("chat-template", "Render messages with the model's chat template and print the prompt");
  cmd->add_option("--model", o->model, "Model folder holding tokenizer_config.json")->required();
  cmd->add_option("--messages", o->messages, R"(JSON file: [{"role":"user","content":"..."}])")->required();
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's opening");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("chat-template", 4); }; });
}

}  // namespace llmctl::cli
