// llmctl version: build facts, compiled-in CUDA/NCCL, and the driver and GPUs found now.
#include <cstdio>

#include "cli/cli_context.h"
#include "cli/version_text.h"

namespace llmctl::cli {

void register_version(CLI::App& app, CliContext& ctx) {
  struct Options {
    bool json = false;
    bool no_gpu = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("version", "Show the version, build, compiled-in CUDA/NCCL, driver and GPUs");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->add_flag("--no-gpu", opts->no_gpu, "Do not probe the GPU driver");
  cmd->callback([&ctx, opts] {
    ctx.action = [opts] {
      if (opts->json) {
        std::printf("%s\n", version_json(!opts->no_gpu).dump(2).c_str());
      } else {
        std::fputs(version_text(!opts->no_gpu).c_str(), stdout);
      }
      return kExitOk;
    };
  });
}

}  // namespace llmctl::cli
