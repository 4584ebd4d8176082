// The load generator behind `llmctl bench`, modelled on vLLM's serving
// benchmark: streaming /v1/completions requests (ignore_eos, fixed output
// length) from `concurrency` workers, each over its own asio TCP connection,
// optionally paced by a Poisson request rate; per request it records TTFT,
// inter-token gaps and token counts (from stream_options.include_usage).
// Works against any OpenAI-compatible server.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::server {

struct BenchOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string api_key;
  int concurrency = 16;
  int num_prompts = 200;
  int input_len = 512;   // synthetic prompts: about this many tokens ("hello" words)
  int output_len = 128;
  std::string dataset;   // JSONL lines {"prompt": str, "output_len"?: int} instead
  double request_rate = 0;  // requests/s, Poisson; 0: as fast as concurrency allows
  // Sampling of every request: 0 is greedy (what vLLM's serving benchmark
  // sends); above 0 measures the sampling path, with top_p when below 1.
  double temperature = 0;
  double top_p = 1;
  uint64_t seed = 0;
  std::function<void(int done, int total)> progress;  // called from worker threads, serialized
};

struct LatencyStats {
  double mean_ms = 0, p50_ms = 0, p99_ms = 0;
};

struct BenchResult {
  int num_requests = 0;
  int num_errors = 0;
  std::string first_error;
  double duration_s = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double request_throughput = 0;  // requests/s
  double input_throughput = 0;    // tokens/s
  double output_throughput = 0;   // tokens/s
  LatencyStats ttft, tpot, itl, e2e;
  nlohmann::json to_json() const;
  std::string to_text() const;
};

Result<BenchResult> run_bench(const BenchOptions& options);

}  // namespace llmctl::server
