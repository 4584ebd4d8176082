#include "cli/cli_context.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/state_dir.h"

namespace llmctl::cli {

int report_error(std::string_view command, const Status& status) {
  fmt::print(stderr, "llmctl {}: {}\n", command, status.message());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:  // a model dir, file or key the user named is not there
    case StatusCode::kUnimplemented:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

CLI::Option* add_load_format_option(CLI::App* cmd, std::string& load_format) {
  return cmd
      ->add_option("--load-format", load_format,
                   "Where weights come from: auto (the folder's safetensors) or dummy (seeded random values of "
                   "config.json's shape, for benchmarks; the folder needs only config.json and a tokenizer)")
      ->check(CLI::IsMember({"auto", "dummy"}))
      ->capture_default_str();
}

void add_step_flags(CLI::App* cmd, bool& enforce_eager, bool& async_scheduling) {
  cmd->add_flag("--enforce-eager", enforce_eager, "CUDA: launch every kernel of a decode step (no CUDA graphs)");
  cmd->add_flag("--async-scheduling", async_scheduling,
                "Schedule each step while the device runs the one before, and send a step's outputs while the "
                "next one runs, so less of the host's work holds up the GPU (a request may join its first batch "
                "a step later)");
}

int not_implemented(std::string_view command, int issue) {
  fmt::print(stderr, "llmctl {}: not implemented yet (tracked in issue #{})\n", command, issue);
  return kExitUsage;
}

std::string resolve_state_dir(const GlobalOptions& global) {
  std::string dir = global.state_dir.empty() ? default_state_dir() : expand_user(global.state_dir);
  setenv("LLMCTL_STATE_DIR", dir.c_str(), 1);
  return dir;
}

void setup_logging(const GlobalOptions& global, std::string_view component, bool to_file) {
  LogOptions options;
  options.level = global.verbose ? "debug" : global.log_level;
  if (to_file) options.file_path = resolve_state_dir(global) + "/logs/" + std::string(component) + ".log";
  init_logging(options);
}

void build_cli(CLI::App& app, CliContext& ctx) {
  app.description(
      "llmctl bootstraps and runs a multi-node LLM inference cluster: diagnose the network, start the\n"
      "cluster, serve models over an OpenAI-compatible API, and search every node's logs.");
  app.footer(
      "Examples:\n"
      "  llmctl doctor                              check this node for cluster pitfalls\n"
      "  llmctl start --head                        start a head node; prints the join command\n"
      "  llmctl start --address lf001:6379 --token T   join a worker\n"
      "  llmctl up cluster.toml                     bring up a whole cluster over SSH\n"
      "  llmctl serve --model /opt/models/qwen --tp 2   serve a model, OpenAI API on :8000\n"
      "  llmctl logs --grep Gloo                    search every node's logs\n"
      "\nRun `llmctl COMMAND --help` for a command's flags.");
  app.set_version_flag("-V,--version", [] { return std::string("__llmctl_version__"); }, "Print the version and exit");
  app.add_option("--state-dir", ctx.global.state_dir,
                 "Where this node keeps logs and state (default: /var/lib/llmctl as root, else ~/.llmctl)")
      ->envname("LLMCTL_STATE_DIR");
  app.add_option("--log-level", ctx.global.log_level, "Log level on stderr: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", ctx.global.verbose, "Same as --log-level debug");
  app.require_subcommand(0, 1);

  register_doctor(app, ctx);
  register_start(app, ctx);
  register_stop(app, ctx);
  register_status(app, ctx);
  register_nodes(app, ctx);
  register_up(app, ctx);
  register_down(app, ctx);
  register_exec(app, ctx);
  register_serve(app, ctx);
  register_generate(app, ctx);
  register_tokenize(app, ctx);
  register_chat_template(app, ctx);
  register_logs(app, ctx);
  register_bench(app, ctx);
  register_version(app, ctx);
  register_config(app, ctx);
  register_completion(app, ctx);
  register_internal(app, ctx);
  register_worker(app, ctx);
}

}  // namespace llmctl::cli
