// llmctl: parse the command line, run the chosen subcommand, map to an exit code.
#include <cstdio>
#include <exception>

#include "cli/cli_context.h"
#include "cli/version_text.h"

int main(int argc, char** argv) {
  using namespace llmctl::cli;
  CLI::App app{"", "llmctl"};
  CliContext ctx;
  build_cli(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion&) {
    std::fputs(version_text(/*probe_gpus=*/true).c_str(), stdout);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!ctx.action) {
    std::fputs(app.help().c_str(), stdout);
    return kExitOk;
  }
  try {
    return ctx.action();
  } catch (const std::exception& e) {
    // Library code reports errors as Status; reaching here is a bug, but the
    // user still gets a message and a non-zero exit instead of an abort.
    std::fprintf(stderr, "llmctl: internal error: %s\n", e.what());
    return kExitFailure;
  }
}
