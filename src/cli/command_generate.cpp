// llmctl generate: one generation in-process, streamed to stdout (issue #5).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_generate(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string model, prompt, device = "auto";
    int max_tokens = 128, top_k = -1;
    double temperature = 1.0, top_p = 1.0;
    long long seed = -1;
    bool ignore_eos = false, json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt in-process, streaming as it comes");
  cmd->add_option("--model", o->model, "Hugging Face model folder")->required();
  cmd->add_option("--prompt", o->prompt, "The prompt")->required();
  cmd->add_option("--max-tokens", o->max_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 for greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Keep the k most likely tokens (-1: all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for reproducible sampling");
  cmd->add_option("--device", o->device, "cpu, cuda, or auto")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the end-of-sequence token");
  cmd->add_flag("--json", o->json, R"(Print {"text","token_ids","finish_reason","usage"})");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("generate", 5); }; });
}

}  // namespace llmctl::cli
