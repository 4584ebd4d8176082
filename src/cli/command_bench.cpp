// llmctl bench: a load generator against any OpenAI-compatible endpoint (issue #6).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_bench(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string url = "http://127.0.0.1:8000", model, dataset, api_key;
    int concurrency = 16, num_prompts = 200, input_len = 512, output_len = 128;
    double request_rate = 0;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bench", "Load-test an OpenAI endpoint: throughput, TTFT, TPOT and ITL percentiles");
  cmd->add_option("--url", o->url, "Base URL of the server")->capture_default_str();
  cmd->add_option("--model", o->model, "Model name to request");
  cmd->add_option("--concurrency", o->concurrency, "Requests in flight at once")->capture_default_str();
  cmd->add_option("--num-prompts", o->num_prompts, "Requests to send")->capture_default_str();
  cmd->add_option("--input-len", o->input_len, "Prompt length in tokens (synthetic prompts)")->capture_default_str();
  cmd->add_option("--output-len", o->output_len, "Tokens to generate per request")->capture_default_str();
  cmd->add_option("--dataset", o->dataset, "JSONL file of prompts instead of synthetic ones");
  cmd->add_option("--request-rate", o->request_rate, "Requests per second (Poisson); 0 sends all at once");
  cmd->add_option("--api-key", o->api_key, "Bearer key")->envname("OPENAI_API_KEY");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("bench", 6); }; });
}

}  // namespace llmctl::cli
