// llmctl completion bash|zsh|fish: print a shell completion script.
#include <cstdio>

#include "cli/cli_context.h"
#include "cli/completion_script.h"

namespace llmctl::cli {

void register_completion(CLI::App& app, CliContext& ctx) {
  auto shell = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("completion", "Print a shell completion script (bash, zsh, fish)");
  cmd->add_option("shell", *shell, "bash, zsh or fish")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->footer(
      "Install:\n"
      "  bash: llmctl completion bash > /etc/bash_completion.d/llmctl\n"
      "  zsh:  llmctl completion zsh > \"${fpath[1]}/_llmctl\"\n"
      "  fish: llmctl completion fish > ~/.config/fish/completions/llmctl.fish");
  const CLI::App* root = &app;
  cmd->callback([&ctx, shell, root] {
    ctx.action = [shell, root] {
      std::fputs(completion_script(*root, *shell).c_str(), stdout);
      return kExitOk;
    };
  });
}

}  // namespace llmctl::cli
