// Shell completion scripts generated from the CLI definition itself, so they
// can never list a subcommand or flag that does not exist.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace llmctl::cli {

// shell: "bash", "zsh" or "fish". Hidden subcommands (group "") are left out.
std::string completion_script(const CLI::App& app, std::string_view shell);

}  // namespace llmctl::cli
