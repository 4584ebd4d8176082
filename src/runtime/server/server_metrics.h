// ServerMetrics: counters and latency histograms the server measures itself,
// rendered with the backend's gauges as Prometheus text under vLLM's metric
// names with an "llmctl:" prefix. Io thread only (no locking).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/server/generation_backend.h"

namespace llmctl::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double value);
  // Prometheus lines for `name` with `labels` ("model_name=\"m\"").
  std::string render(const std::string& name, const std::string& help, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void add_prompt_tokens(int64_t n) { prompt_tokens_total_ += n; }
  void add_generation_tokens(int64_t n) { generation_tokens_total_ += n; }
  void request_finished(const std::string& finish_reason);
  Histogram& ttft() { return ttft_; }
  Histogram& itl() { return itl_; }
  Histogram& e2e() { return e2e_; }
  std::string render(const std::string& model_name, const BackendStats& stats) const;

 private:
  int64_t prompt_tokens_total_ = 0;
  int64_t generation_tokens_total_ = 0;
  int64_t success_stop_ = 0, success_length_ = 0, success_abort_ = 0, success_error_ = 0;
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
};

}  // namespace llmctl::server
