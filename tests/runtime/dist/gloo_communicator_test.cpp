// The Gloo communicator between real processes over loopback: exact results
// against sums computed here from the same seeds, and the failures a
// tensor-parallel group meets (a rank that never joins, one killed
// mid-collective, one stuck) each ending in an error that names the rank,
// well within the time-out.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "runtime/dist/gloo_communicator.h"
#include "runtime/dist/rendezvous_store.h"
#include "rank_processes.h"

namespace llmctl::dist {
namespace {

using testing::RankOutcome;
using testing::run_ranks;
using namespace std::chrono_literals;

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("llmctl-dist-{}-{}", name, ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Small integers: every summation order gives the same float, so results
// must match exactly.
std::vector<float> integer_data(int rank, std::size_t count, unsigned seed) {
  std::mt19937 rng(seed * 131 + static_cast<unsigned>(rank));
  std::uniform_int_distribution<int> dist(-1000, 1000);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(dist(rng));
  return v;
}

std::vector<float> real_data(int rank, std::size_t count, unsigned seed) {
  std::mt19937 rng(seed * 131 + static_cast<unsigned>(rank));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

Result<std::unique_ptr<Communicator>> join(const std::string& dir, int rank, int world_size,
                                           std::chrono::milliseconds timeout) {
  auto store = open_file_store(dir);
  if (!store.is_ok()) return store.status();
  GlooOptions options;
  options.rank = rank;
  options.world_size = world_size;
  options.interface = "lo";
  options.timeout = timeout;
  // The store must outlive the rendezvous only; a leaked one is harmless in a child.
  return connect_gloo(options, *store->release());
}

// Every collective once per size on random data; "" when all results are exact.
std::string check_collectives(const std::string& dir, int rank, int world_size) {
  auto comm = join(dir, rank, world_size, 10000ms);
  if (!comm.is_ok()) return comm.status().to_string();
  if ((*comm)->rank() != rank || (*comm)->world_size() != world_size) return "wrong rank or world size";
  unsigned seed = 7;
  for (std::size_t count : {std::size_t{1}, std::size_t{4097}, std::size_t{300000}}) {
    ++seed;
    std::vector<float> data = integer_data(rank, count, seed);
    if (Status s = (*comm)->all_reduce_sum(data.data(), static_cast<int64_t>(count)); !s.is_ok()) return s.to_string();
    std::vector<float> expected(count, 0.0f);
    for (int r = 0; r < world_size; ++r) {
      std::vector<float> theirs = integer_data(r, count, seed);
      for (std::size_t i = 0; i < count; ++i) expected[i] += theirs[i];
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (data[i] != expected[i]) {
        return fmt::format("all_reduce_sum count {}: [{}] = {}, expected {}", count, i, data[i], expected[i]);
      }
    }

    std::vector<float> real = real_data(rank, count, seed);
    if (Status s = (*comm)->all_reduce_sum(real.data(), static_cast<int64_t>(count)); !s.is_ok()) return s.to_string();
    for (std::size_t i = 0; i < count; ++i) {
      double want = 0;
      for (int r = 0; r < world_size; ++r) want += real_data(r, i + 1, seed)[i];
      if (std::abs(real[i] - want) > 1e-5) {
        return fmt::format("all_reduce_sum (real) count {}: [{}] = {}, expected {}", count, i, real[i], want);
      }
      if (i >= 16) break;  // regenerating prefixes is quadratic; the integer pass covers every element
    }

    std::vector<float> in = integer_data(rank, count, seed + 1000);
    std::vector<float> out(count * static_cast<std::size_t>(world_size), -12345.0f);
    if (Status s = (*comm)->all_gather(in.data(), out.data(), static_cast<int64_t>(count)); !s.is_ok()) {
      return s.to_string();
    }
    for (int r = 0; r < world_size; ++r) {
      std::vector<float> theirs = integer_data(r, count, seed + 1000);
      for (std::size_t i = 0; i < count; ++i) {
        if (out[static_cast<std::size_t>(r) * count + i] != theirs[i]) {
          return fmt::format("all_gather count {}: rank {}'s [{}] wrong", count, r, i);
        }
      }
    }
  }
  int root = world_size - 1;
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{1} << 20}) {
    std::string want = random_bytes(size, static_cast<unsigned>(size) + 3);
    std::string bytes = rank == root ? want : std::string("stale bytes of a non-root rank");
    if (Status s = (*comm)->broadcast_bytes(bytes, root); !s.is_ok()) return s.to_string();
    if (bytes != want) return fmt::format("broadcast_bytes of {} bytes: got {} bytes that differ", size, bytes.size());
  }
  if (Status s = (*comm)->barrier(); !s.is_ok()) return s.to_string();
  // Leave together, through the store: a rank that closes its sockets while
  // a slower one is still inside the last collective breaks that collective.
  auto store = open_file_store(dir);
  if (!store.is_ok()) return store.status().to_string();
  if (Status s = (*store)->set(fmt::format("done/{}", rank), "1"); !s.is_ok()) return s.to_string();
  for (int r = 0; r < world_size; ++r) {
    if (auto done = (*store)->get(fmt::format("done/{}", r), 10s); !done.is_ok()) return done.status().to_string();
  }
  return "";
}

void expect_all_ok(const std::vector<RankOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    INFO("rank ", o.rank, ": ", o.report);
    CHECK_FALSE(o.timed_out);
    CHECK(o.exited);
    CHECK(o.exit_code == 0);
    CHECK(o.report.empty());
  }
}

TEST_CASE("all_reduce_sum, all_gather, broadcast_bytes and barrier are exact at tp=2 and tp=4") {
  for (int world_size : {2, 4}) {
    CAPTURE(world_size);
    std::string dir = fresh_dir(fmt::format("exact{}", world_size));
    std::vector<int> ranks;
    for (int r = 0; r < world_size; ++r) ranks.push_back(r);
    expect_all_ok(run_ranks(ranks, [&](int rank) { return check_collectives(dir, rank, world_size); }, 30s));
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("a group of one needs no peers") {
  std::string dir = fresh_dir("one");
  auto comm = join(dir, 0, 1, 1000ms);
  REQUIRE(comm.is_ok());
  std::vector<float> v{1.5f, -2.0f};
  CHECK((*comm)->all_reduce_sum(v.data(), 2).is_ok());
  CHECK(v == std::vector<float>{1.5f, -2.0f});
  std::vector<float> out(2);
  CHECK((*comm)->all_gather(v.data(), out.data(), 2).is_ok());
  CHECK(out == v);
  std::string bytes = "x";
  CHECK((*comm)->broadcast_bytes(bytes, 0).is_ok());
  CHECK(bytes == "x");
  CHECK((*comm)->barrier().is_ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad options are refused, naming what is wrong") {
  std::string dir = fresh_dir("bad");
  auto store = open_file_store(dir);
  REQUIRE(store.is_ok());
  GlooOptions options;
  options.rank = 2;
  options.world_size = 2;
  auto r = connect_gloo(options, **store);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message().find("rank 2 of world size 2") != std::string::npos);

  options.rank = 0;
  options.interface = "nosuchnic0";
  r = connect_gloo(options, **store);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message().find("\"nosuchnic0\"") != std::string::npos);
  CHECK(r.status().message().find("lo") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a rank that never joins: the others fail at rendezvous naming it, within the time-out") {
  std::string dir = fresh_dir("missing");
  auto outcomes = run_ranks(
      {0, 1},
      [&](int rank) {
        auto comm = join(dir, rank, 3, 1000ms);
        return comm.is_ok() ? std::string("joined a group whose rank 2 never started") : comm.status().to_string();
      },
      10s);
  for (const auto& o : outcomes) {
    INFO("rank ", o.rank, ": ", o.report);
    CHECK_FALSE(o.timed_out);
    CHECK(o.seconds < 3.0);
    CHECK(o.report.find("DEADLINE_EXCEEDED") == 0);
    CHECK(o.report.find(fmt::format("tp rank {} on ", o.rank)) != std::string::npos);
    CHECK(o.report.find("rank 2 of 3 did not join") != std::string::npos);
    CHECK(o.report.find("file store " + dir) != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

// Usually the survivors know within ~0.4 s (the dead rank's sockets reset);
// when a survivor's Gloo thread is parked on data for a collective it has not
// started yet, only the time-out frees it. Either way: named, and bounded.
TEST_CASE("a rank killed mid-collective: every survivor names it, within the time-out") {
  std::string dir = fresh_dir("killed");
  constexpr int kWorld = 3;
  constexpr int kVictim = 1;
  auto outcomes = run_ranks(
      {0, 1, 2},
      [&](int rank) -> std::string {
        auto comm = join(dir, rank, kWorld, 3000ms);
        if (!comm.is_ok()) return comm.status().to_string();
        if (rank == kVictim) {
          std::thread([] {
            std::this_thread::sleep_for(300ms);
            ::raise(SIGKILL);
          }).detach();
        }
        std::vector<float> data(1 << 18, 1.0f);
        auto until = std::chrono::steady_clock::now() + 8s;
        while (std::chrono::steady_clock::now() < until) {
          std::fill(data.begin(), data.end(), 1.0f);
          Status s = (*comm)->all_reduce_sum(data.data(), static_cast<int64_t>(data.size()));
          if (!s.is_ok()) {
            // Later calls must fail at once with the same error, not hang.
            Status again = (*comm)->barrier();
            if (again.message() != s.message()) return "a second call gave another error: " + again.to_string();
            return s.to_string();
          }
          if (data[0] != kWorld) return fmt::format("sum {} while all ranks were alive", data[0]);
        }
        return std::string("no error although rank 1 was killed");
      },
      20s);
  REQUIRE(outcomes.size() == 3);
  CHECK_FALSE(outcomes[kVictim].exited);
  for (const auto& o : outcomes) {
    if (o.rank == kVictim) continue;
    INFO("rank ", o.rank, ": ", o.report);
    CHECK_FALSE(o.timed_out);
    CHECK(o.seconds < 4.5);  // 0.3 s until the kill + the 3 s time-out + probing
    CHECK(o.report.find("UNAVAILABLE") == 0);
    CHECK(o.report.find(fmt::format("tp rank {} on ", o.rank)) != std::string::npos);
    CHECK(o.report.find(fmt::format("rank {} (", kVictim)) != std::string::npos);
    CHECK(o.report.find(fmt::format("pid {})", outcomes[kVictim].pid)) != std::string::npos);
    CHECK(o.report.find("exited") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a stuck rank: the other times out after the group's time-out, saying every peer still runs") {
  std::string dir = fresh_dir("stuck");
  auto outcomes = run_ranks(
      {0, 1},
      [&](int rank) -> std::string {
        auto comm = join(dir, rank, 2, 800ms);
        if (!comm.is_ok()) return comm.status().to_string();
        if (rank == 1) {
          std::this_thread::sleep_for(2500ms);  // alive, holding its sockets, not calling
          return "";
        }
        std::vector<float> data(1024, 1.0f);
        auto started = std::chrono::steady_clock::now();
        Status s = (*comm)->all_reduce_sum(data.data(), 1024);
        double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (s.is_ok()) return std::string("all_reduce_sum succeeded without its peer");
        if (waited < 0.7 || waited > 2.3) return fmt::format("failed after {:.2f} s, time-out 0.8 s: {}", waited, s.to_string());
        return s.to_string();
      },
      10s);
  INFO("rank 0: ", outcomes[0].report);
  CHECK(outcomes[0].report.find("DEADLINE_EXCEEDED") == 0);
  CHECK(outcomes[0].report.find("tp rank 0 on ") != std::string::npos);
  CHECK(outcomes[0].report.find("timed out after 800 ms") != std::string::npos);
  CHECK(outcomes[0].report.find("still running") != std::string::npos);
  CHECK(outcomes[1].report.empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmctl::dist
