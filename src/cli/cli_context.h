// What every subcommand shares: global flags, exit codes and the helpers that
// turn a Status into a message and an exit code. Only src/cli includes CLI11.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace llmctl::cli {

// Exit codes shared by every subcommand.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the command ran and found or hit a problem
constexpr int kExitUsage = 2;    // bad flags or input; also "not implemented yet"

struct GlobalOptions {
  std::string state_dir;         // empty: default_state_dir()
  std::string log_level = "warn";
  bool verbose = false;
};

// Set by the chosen subcommand's callback; run by main() after parsing.
struct CliContext {
  GlobalOptions global;
  std::function<int()> action;
};

// Prints "llmctl <command>: <message>" to stderr and returns the exit code for it
// (kExitUsage for INVALID_ARGUMENT / NOT_FOUND of user input, else kExitFailure).
int report_error(std::string_view command, const Status& status);

// "llmctl <command>: not implemented yet (issue #N)"; returns kExitUsage.
int not_implemented(std::string_view command, int issue);

// The state dir from --state-dir, else the default; also exported as
// LLMCTL_STATE_DIR so child processes agree.
std::string resolve_state_dir(const GlobalOptions& global);

// Configures logging: stderr at --log-level, plus <state_dir>/logs/<component>.log.
void setup_logging(const GlobalOptions& global, std::string_view component, bool to_file);

// --load-format on generate, serve and the worker ranks they start: "auto"
// (the folder's safetensors) or "dummy" (engine::EngineConfig::load_format).
CLI::Option* add_load_format_option(CLI::App* cmd, std::string& load_format);
// --enforce-eager and --async-scheduling: how the engine runs its steps.
void add_step_flags(CLI::App* cmd, bool& enforce_eager, bool& async_scheduling);

// One registration function per subcommand file.
void register_doctor(CLI::App& app, CliContext& ctx);
void register_start(CLI::App& app, CliContext& ctx);
void register_stop(CLI::App& app, CliContext& ctx);
void register_status(CLI::App& app, CliContext& ctx);
void register_nodes(CLI::App& app, CliContext& ctx);
void register_up(CLI::App& app, CliContext& ctx);
void register_down(CLI::App& app, CliContext& ctx);
void register_exec(CLI::App& app, CliContext& ctx);
void register_serve(CLI::App& app, CliContext& ctx);
void register_generate(CLI::App& app, CliContext& ctx);
void register_tokenize(CLI::App& app, CliContext& ctx);
void register_chat_template(CLI::App& app, CliContext& ctx);
void register_logs(CLI::App& app, CliContext& ctx);
void register_bench(CLI::App& app, CliContext& ctx);
void register_version(CLI::App& app, CliContext& ctx);
void register_config(CLI::App& app, CliContext& ctx);
void register_completion(CLI::App& app, CliContext& ctx);
void register_internal(CLI::App& app, CliContext& ctx);  // hidden: agent, head, kv, submit
void register_worker(CLI::App& app, CliContext& ctx);    // hidden: one tensor-parallel rank

// Builds the whole command tree (used by main and the completion generator).
void build_cli(CLI::App& app, CliContext& ctx);

}  // namespace llmctl::cli
