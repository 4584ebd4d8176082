// The head's KV as the rendezvous store: a real Head (control/head.h) serves
// from a child process on loopback, and ranks in other processes rendezvous
// through it and run collectives; wrong tokens and absent keys name the head.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <asio.hpp>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "rank_processes.h"
#include "runtime/control/clock.h"
#include "runtime/control/head.h"
#include "runtime/dist/gloo_communicator.h"
#include "runtime/dist/head_store.h"

namespace llmctl::dist {
namespace {

using namespace std::chrono_literals;

// A head in a child process (the test process stays single-threaded, so it
// may fork the ranks); killed when this goes out of scope.
struct HeadProcess {
  pid_t pid = 0;
  std::uint16_t port = 0;
  std::string dir;

  HeadProcess() {
    dir = (std::filesystem::temp_directory_path() / fmt::format("llmctl-dist-head-{}", ::getpid())).string();
    std::filesystem::remove_all(dir);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      asio::io_context io;
      control::SteadyClock clock;
      control::HeadOptions o;
      o.state_dir = dir;
      o.bind_address = "127.0.0.1";
      o.port = 0;
      o.token = "secret";
      control::Head head(io, o, clock);
      auto bound = head.start();
      std::uint16_t bound_port = bound.is_ok() ? *bound : 0;
      if (::write(p[1], &bound_port, sizeof(bound_port)) != sizeof(bound_port)) ::_exit(1);
      ::close(p[1]);
      if (!bound.is_ok()) ::_exit(1);
      io.run();
      ::_exit(0);
    }
    ::close(p[1]);
    REQUIRE(::read(p[0], &port, sizeof(port)) == sizeof(port));
    ::close(p[0]);
    REQUIRE(port != 0);
  }
  ~HeadProcess() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(dir);
  }
  std::string address() const { return fmt::format("127.0.0.1:{}", port); }
};

TEST_CASE("head store: ranks rendezvous through a real head and all_reduce exactly; binary values survive") {
  HeadProcess head;
  auto outcomes = testing::run_ranks(
      {0, 1, 2},
      [&](int rank) -> std::string {
        HeadStoreOptions so;
        so.address = head.address();
        so.token = "secret";
        auto store = open_head_store(so);
        if (!store.is_ok()) return store.status().to_string();
        std::string binary("\0\x01\xfe\xff zero", 9);
        if (rank == 0) {
          if (Status s = (*store)->set("check/binary", binary); !s.is_ok()) return s.to_string();
        }
        auto got = (*store)->get("check/binary", 5s);
        if (!got.is_ok()) return got.status().to_string();
        if (*got != binary) return "binary value changed on the way";
        GlooOptions options;
        options.rank = rank;
        options.world_size = 3;
        options.group = "tp-head-test";
        options.interface = "lo";
        options.timeout = 10s;
        auto comm = connect_gloo(options, **store);
        if (!comm.is_ok()) return comm.status().to_string();
        std::vector<float> data(10000);
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>((rank + 1) * static_cast<int>(i % 97));
        if (Status s = (*comm)->all_reduce_sum(data.data(), 10000); !s.is_ok()) return s.to_string();
        for (std::size_t i = 0; i < data.size(); ++i) {
          float want = static_cast<float>(6 * static_cast<int>(i % 97));  // (1 + 2 + 3) * v
          if (data[i] != want) return fmt::format("[{}] = {}, expected {}", i, data[i], want);
        }
        // Leave together so no rank breaks another's last collective.
        return (*comm)->barrier().is_ok() ? "" : "barrier failed";
      },
      30s);
  for (const auto& o : outcomes) {
    INFO("rank ", o.rank, ": ", o.report);
    CHECK(o.report.empty());
    CHECK(o.exit_code == 0);
  }
}

TEST_CASE("head store: a key never set and a wrong token both name the head") {
  HeadProcess head;
  auto outcomes = testing::run_ranks(
      {0},
      [&](int) -> std::string {
        HeadStoreOptions so;
        so.address = head.address();
        so.token = "secret";
        auto store = open_head_store(so);
        if (!store.is_ok()) return "open: " + store.status().to_string();
        if ((*store)->describe() != "head " + head.address()) return "describe: " + (*store)->describe();
        auto started = std::chrono::steady_clock::now();
        auto missing = (*store)->get("tp/rank/7", 300ms);
        auto waited = std::chrono::steady_clock::now() - started;
        if (missing.is_ok()) return "a key nobody set was found";
        std::string m = missing.status().to_string();
        if (missing.status().code() != StatusCode::kDeadlineExceeded || m.find("\"tp/rank/7\"") == std::string::npos ||
            m.find("head " + head.address()) == std::string::npos || waited < 250ms || waited > 2s) {
          return "missing key: " + m;
        }
        so.token = "wrong";
        auto denied = open_head_store(so);
        if (denied.is_ok()) return "a wrong token was accepted";
        if (denied.status().message().find(head.address()) == std::string::npos) {
          return "wrong token: " + denied.status().to_string();
        }
        return "";
      },
      20s);
  INFO(outcomes[0].report);
  CHECK(outcomes[0].report.empty());
}

}  // namespace
}  // namespace llmctl::dist
