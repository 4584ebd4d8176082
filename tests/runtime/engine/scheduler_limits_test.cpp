// Which batch limits a device gets when the user sets none.
#include <doctest/doctest.h>

#include <string>

#include "runtime/engine/scheduler_limits.h"

using namespace llmctl::engine;

namespace {
constexpr uint64_t kGiB = uint64_t{1} << 30;
}

TEST_CASE("scheduler limits: 1024 / 8192 on a GPU of 70 GiB or more, 256 / 2048 below, 64 on the CPU") {
  const uint64_t h100 = uint64_t{81559} << 20;  // what an H100 80GB reports
  SchedulerLimits l = default_scheduler_limits(h100, 2048);
  CHECK(l.max_num_seqs == 1024);
  CHECK(l.max_num_batched_tokens == 8192);
  l = default_scheduler_limits(70 * kGiB, 2048);
  CHECK(l.max_num_seqs == 1024);
  l = default_scheduler_limits(70 * kGiB - 1, 2048);
  CHECK(l.max_num_seqs == 256);
  CHECK(l.max_num_batched_tokens == 2048);
  l = default_scheduler_limits(0, 256);
  CHECK(l.max_num_seqs == 64);
  CHECK(l.max_num_batched_tokens == 2048);
}

TEST_CASE("scheduler limits: the token budget holds one max-model-len prompt") {
  CHECK(default_scheduler_limits(0, 4096).max_num_batched_tokens == 4096);
  CHECK(default_scheduler_limits(24 * kGiB, 32768).max_num_batched_tokens == 32768);
  CHECK(default_scheduler_limits(80 * kGiB, 4096).max_num_batched_tokens == 8192);
}

TEST_CASE("resolve_scheduler_limits fills only the limits left at 0 and says so") {
  SchedulerConfig c;
  c.max_model_len = 1024;
  c.max_num_seqs = 0;
  c.max_num_batched_tokens = 0;
  std::string line = resolve_scheduler_limits(c, 80 * kGiB);
  CHECK(c.max_num_seqs == 1024);
  CHECK(c.max_num_batched_tokens == 8192);
  CHECK(line.find("1024 sequences and 8192 tokens") != std::string::npos);
  CHECK(line.find("a GPU of 80.0 GiB") != std::string::npos);

  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 0;
  line = resolve_scheduler_limits(c, 0);
  CHECK(c.max_num_seqs == 8);
  CHECK(c.max_num_batched_tokens == 2048);
  CHECK(line.find("the CPU") != std::string::npos);

  c.max_num_seqs = 3;
  c.max_num_batched_tokens = 100;
  CHECK(resolve_scheduler_limits(c, 80 * kGiB).empty());
  CHECK(c.max_num_seqs == 3);
  CHECK(c.max_num_batched_tokens == 100);
}

TEST_CASE("serve's --help states the same defaults the rule applies") {
  const SchedulerLimits big = default_scheduler_limits(70 * kGiB, 1), small = default_scheduler_limits(70 * kGiB - 1, 1),
                        cpu = default_scheduler_limits(0, 1);
  const std::string seqs = default_max_num_seqs_help();
  CHECK(seqs.find(std::to_string(big.max_num_seqs) + " on a GPU of 70 GiB or more, " +
                  std::to_string(small.max_num_seqs) + " on a smaller GPU, " + std::to_string(cpu.max_num_seqs) +
                  " on the CPU") != std::string::npos);
  const std::string tokens = default_max_num_batched_tokens_help();
  CHECK(tokens.find(std::to_string(big.max_num_batched_tokens) + " on a GPU of 70 GiB or more, " +
                    std::to_string(small.max_num_batched_tokens) + " on a smaller GPU, " +
                    std::to_string(cpu.max_num_batched_tokens) + " on the CPU") != std::string::npos);
  CHECK(tokens.find("at least max-model-len") != std::string::npos);
}
