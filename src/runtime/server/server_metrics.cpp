#include "runtime/server/server_metrics.h"

#include <fmt/format.h>

namespace llmctl::server {

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help, const std::string& labels) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_[i], cumulative);
  }
  cumulative += counts_.back();
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum_, name, labels, count_);
  return out;
}

ServerMetrics::ServerMetrics()
    // vLLM's bucket boundaries in seconds, rounded to the same decades.
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
             80.0, 160.0, 640.0, 2560.0}),
      itl_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      e2e_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
            960.0, 1920.0, 7680.0}) {}

void ServerMetrics::request_finished(const std::string& finish_reason) {
  if (finish_reason == "stop") {
    ++success_stop_;
  } else if (finish_reason == "length") {
    ++success_length_;
  } else if (finish_reason == "abort") {
    ++success_abort_;
  } else {
    ++success_error_;
  }
}

std::string ServerMetrics::render(const std::string& model_name, const BackendStats& stats) const {
  std::string labels = fmt::format("model_name=\"{}\"", model_name);
  std::string out;
  auto gauge = [&](const char* name, const char* help, double value) {
    out += fmt::format("# HELP llmctl:{} {}\n# TYPE llmctl:{} gauge\nllmctl:{}{{{}}} {}\n", name, help, name, name,
                       labels, value);
  };
  auto counter = [&](const char* name, const char* help, double value) {
    out += fmt::format("# HELP llmctl:{} {}\n# TYPE llmctl:{} counter\nllmctl:{}{{{}}} {}\n", name, help, name, name,
                       labels, value);
  };
  gauge("num_requests_running", "Number of requests in model execution batches.", stats.num_running);
  gauge("num_requests_waiting", "Number of requests waiting to be processed.", stats.num_waiting);
  gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", stats.kv_cache_usage);
  gauge("kv_cache_used_blocks", "KV-cache blocks in use.", static_cast<double>(stats.kv_cache_num_blocks_used));
  counter("num_preemptions_total", "Cumulative number of preemptions from the engine.",
          static_cast<double>(stats.num_preemptions_total));
  counter("prompt_tokens_total", "Number of prefill tokens processed.", static_cast<double>(prompt_tokens_total_));
  counter("generation_tokens_total", "Number of generation tokens processed.",
          static_cast<double>(generation_tokens_total_));
  out += "# HELP llmctl:request_success_total Count of finished requests by finish reason.\n"
         "# TYPE llmctl:request_success_total counter\n";
  out += fmt::format("llmctl:request_success_total{{{},finished_reason=\"stop\"}} {}\n", labels, success_stop_);
  out += fmt::format("llmctl:request_success_total{{{},finished_reason=\"length\"}} {}\n", labels, success_length_);
  out += fmt::format("llmctl:request_success_total{{{},finished_reason=\"abort\"}} {}\n", labels, success_abort_);
  out += fmt::format("llmctl:request_success_total{{{},finished_reason=\"error\"}} {}\n", labels, success_error_);
  out += ttft_.render("llmctl:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels);
  out += itl_.render("llmctl:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels);
  out += e2e_.render("llmctl:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
                     labels);
  return out;
}

}  // namespace llmctl::server
