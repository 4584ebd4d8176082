#include "runtime/engine/step_size_histogram.h"

#include <fmt/format.h>

namespace llmctl::engine {

void StepSizeHistogram::add(int64_t size, double step_ms) {
  int bucket = 0;
  while (bucket + 1 < kBuckets && size > limits[bucket]) ++bucket;
  ++steps[bucket];
  sizes[bucket] += size;
  ms[bucket] += step_ms;
}

std::string StepSizeHistogram::describe(const char* unit) const {
  std::string out;
  for (int i = 0; i < kBuckets; ++i) {
    if (steps[i] == 0) continue;
    const int64_t low = i == 0 ? 1 : limits[i - 1] + 1;
    const bool last = i + 1 == kBuckets;
    out += fmt::format("{}{}-{} {}: {} steps, {} {}, {:.1f} ms", out.empty() ? "" : "; ", low,
                       last ? std::string() : std::to_string(limits[i]), unit, steps[i], sizes[i], unit, ms[i]);
  }
  return out;
}

int64_t StepSizeHistogram::total_steps() const {
  int64_t n = 0;
  for (int64_t s : steps) n += s;
  return n;
}

double StepSizeHistogram::total_ms() const {
  double t = 0;
  for (double m : ms) t += m;
  return t;
}

}  // namespace llmctl::engine
