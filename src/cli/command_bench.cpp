// llmctl bench: a load generator against any OpenAI-compatible endpoint (issue #6).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/cli_context.h"
#include "runtime/server/bench_client.h"

namespace llmctl::cli {

void register_bench(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string url = "http://127.0.0.1:8000", model, dataset, api_key;
    int concurrency = 16, num_prompts = 200, input_len = 512, output_len = 128;
    double request_rate = 0, temperature = 0, top_p = 1;
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
  cmd->add_option("--temperature", o->temperature, "Sampling temperature of every request (0: greedy)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling of every request (with --temperature > 0)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Bearer key")->envname("OPENAI_API_KEY");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      server::BenchOptions b;
      b.url = o->url;
      b.model = o->model;
      b.api_key = o->api_key;
      b.concurrency = o->concurrency;
      b.num_prompts = o->num_prompts;
      b.input_len = o->input_len;
      b.output_len = o->output_len;
      b.temperature = o->temperature;
      b.top_p = o->top_p;
      b.dataset = o->dataset;
      b.request_rate = o->request_rate;
      if (::isatty(STDERR_FILENO) != 0 && !o->json) {
        b.progress = [](int done, int total) {
          std::fprintf(stderr, "\r%d/%d requests", done, total);
          if (done == total) std::fprintf(stderr, "\r\033[K");
          std::fflush(stderr);
        };
      }
      auto r = server::run_bench(b);
      if (!r.is_ok()) return report_error("bench", r.status());
      std::cout << (o->json ? r->to_json().dump(2) + "\n" : r->to_text());
      return r->num_requests > 0 ? kExitOk : kExitFailure;
    };
  });
}

}  // namespace llmctl::cli
