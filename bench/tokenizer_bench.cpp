// tokenizer_bench: encode throughput of llmctl's tokenizer on one core.
//   tokenizer_bench MODEL_DIR TEXT_FILE [SECONDS]
// Prints MB/s for the first pass (cold word cache) and for repeated passes,
// by wall time and by this thread's CPU time (the machine is shared, so CPU
// time is the fair "one core" figure).
// The peer number comes from bench/tokenizer_bench_hf.py on the same file.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR TEXT_FILE [SECONDS]\n", argv[0]);
    return 2;
  }
  auto tok = llmctl::tokenizer::Tokenizer::load(argv[1]);
  if (!tok.is_ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const double seconds = argc > 3 ? std::stod(argv[3]) : 3.0;
  using Clock = std::chrono::steady_clock;
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  };

  auto t0 = Clock::now();
  size_t num_tokens = tok->encode(text, false).size();
  const double cold = std::chrono::duration<double>(Clock::now() - t0).count();

  size_t passes = 0;
  t0 = Clock::now();
  const double cpu0 = cpu_now();
  double elapsed = 0;
  while (elapsed < seconds) {
    num_tokens = tok->encode(text, false).size();
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double cpu = cpu_now() - cpu0;
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("model=%s bytes=%zu tokens=%zu first_pass=%.1f MB/s warm=%.1f MB/s (wall) warm=%.1f MB/s (thread cpu, %zu passes)\n",
              argv[1], text.size(), num_tokens, mb / cold, mb * static_cast<double>(passes) / elapsed,
              mb * static_cast<double>(passes) / cpu, passes);
  return 0;
}
