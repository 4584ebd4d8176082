// control_plane_bench: one head, N simulated agents heartbeating every 200 ms.
//
//   control_plane_bench [num_agents=1000] [measure_s=10]
//
// The head runs in a child process (a real Head on one io_context thread,
// like `llmctl head`, state dir on /tmp); the agents are N real Channels over
// loopback TCP in this process, each registering and pushing heartbeats with
// its send time (CLOCK_MONOTONIC, shared by both processes). Reported:
//   head CPU (% of one core, utime+stime over the window), head RSS,
//   p50/p99 heartbeat latency (agent send -> head handled, from the head),
//   failure-detection time: 10 agents stop heartbeating (connections stay
//   open, so only the failure detector can notice); time from each one's last
//   heartbeat to the head closing it as Dead.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>
#include <fmt/format.h>

#include "runtime/control/control_client.h"
#include "runtime/control/head.h"

using namespace llmctl;
using namespace llmctl::control;
using namespace std::chrono_literals;

namespace {

struct SimAgent {
  std::shared_ptr<transport::Channel> channel;
  std::unique_ptr<asio::steady_timer> timer;
  bool silent = false;
  std::int64_t last_beat_us = 0;
  std::int64_t closed_us = 0;
};

double proc_cpu_seconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string s;
  std::getline(in, s);
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  // Fields after the command: state is [0]; utime [11], stime [12].
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long proc_rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string key;
  long v = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> v;
      return v;
    }
    std::getline(in, key);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int num_agents = argc > 1 ? std::atoi(argv[1]) : 1000;
  int measure_s = argc > 2 ? std::atoi(argv[2]) : 10;
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  std::string dir = fmt::format("/tmp/llmctl-bench-head-{}", getpid());
  std::filesystem::remove_all(dir);

  int ready_pipe[2];
  if (pipe(ready_pipe) != 0) return 1;
  pid_t head_pid = fork();
  if (head_pid == 0) {
    asio::io_context io(1);
    SteadyClock clock;
    HeadOptions o;
    o.state_dir = dir;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.token = "bench-token";
    o.idle_timeout_ms = 0;
    Head head(io, o, clock);
    auto port = head.start();
    std::uint16_t p = port.is_ok() ? *port : 0;
    if (write(ready_pipe[1], &p, sizeof p) != sizeof p) _exit(1);
    io.run();
    _exit(0);
  }
  std::uint16_t port = 0;
  if (read(ready_pipe[0], &port, sizeof port) != sizeof port || port == 0) {
    fmt::print(stderr, "head failed to start\n");
    return 1;
  }

  asio::io_context io(1);
  std::vector<SimAgent> agents(static_cast<std::size_t>(num_agents));
  std::mt19937 rng(42);
  int num_registered = 0, num_failed = 0;
  std::function<void(std::size_t)> beat = [&](std::size_t i) {
    SimAgent& a = agents[i];
    if (!a.silent && a.channel && a.channel->is_open()) {
      a.last_beat_us = monotonic_us();
      a.channel->push("node.heartbeat", {{"usage", {{"cpu_percent", 3.5}, {"memory_used_bytes", 1u << 30}}},
                                         {"sent_us", a.last_beat_us}});
    }
    a.timer->expires_after(200ms);
    a.timer->async_wait([&, i](asio::error_code ec) {
      if (!ec) beat(i);
    });
  };
  auto t_connect = std::chrono::steady_clock::now();
  // Connect in waves so the head's accept backlog is not the benchmark.
  std::function<void(std::size_t)> connect_one = [&](std::size_t i) {
    if (i >= agents.size()) return;
    transport::ChannelOptions co;
    co.handshake_timeout_ms = 30000;
    transport::Channel::async_connect(io, "127.0.0.1", port, "bench-token", co, [&, i](Result<std::shared_ptr<transport::Channel>> r) {
      if (!r.is_ok()) {
        if (num_failed++ == 0) fmt::print(stderr, "first connect failure: {}\n", r.status().message());
        return;
      }
      SimAgent& a = agents[i];
      a.channel = *r;
      a.timer = std::make_unique<asio::steady_timer>(io);
      a.channel->start([](const transport::Message&, std::uint64_t) {}, [&, i](const Status&) { agents[i].closed_us = monotonic_us(); });
      nlohmann::json reg = {{"node_id", fmt::format("sim{:05d}", i)}, {"name", fmt::format("sim{:05d}", i)},
                            {"address", fmt::format("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)},
                            {"resources", {{"CPU", 8}, {"GPU", 1}}}};
      a.channel->request("node.register", reg, 60s, [&, i](Result<nlohmann::json> rr) {
        if (!rr.is_ok()) {
          if (num_failed++ == 0) fmt::print(stderr, "first registration failure: {}\n", rr.status().message());
          return;
        }
        ++num_registered;
        // Stagger the first beat over one period, like agents started at different times.
        agents[i].timer->expires_after(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 199)(rng)));
        agents[i].timer->async_wait([&, i](asio::error_code ec) {
          if (!ec) beat(i);
        });
      });
    });
  };
  // Waves of 200, each registered before the next starts: every registration
  // is an fsync'd log record on the head, and a join storm is not what this
  // measures (its cost shows in the registration time printed below).
  constexpr std::size_t kWave = 200;
  for (std::size_t first = 0; first < agents.size(); first += kWave) {
    std::size_t last = std::min(agents.size(), first + kWave);
    for (std::size_t i = first; i < last; ++i) connect_one(i);
    while (static_cast<std::size_t>(num_registered + num_failed) < last) io.run_for(10ms);
  }
  double connect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_connect).count();
  fmt::print("{} agents registered ({} failed) in {:.2f}s\n", num_registered, num_failed, connect_s);

  // Warm up, then measure the head's CPU over the window.
  auto run_for = [&](std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) io.run_for(10ms);
  };
  run_for(2s);
  // The latency percentiles cover the measured window only.
  auto client = ControlClient::connect("127.0.0.1", port, "bench-token", 10s);
  if (!client.is_ok()) {
    fmt::print(stderr, "cannot query the head: {}\n", client.status().message());
    return 1;
  }
  {
    std::thread pump([&] { run_for(1s); });
    auto reset = (*client)->call("stats.reset", nlohmann::json::object(), 10s);
    pump.join();
    if (!reset.is_ok()) fmt::print(stderr, "stats.reset: {}\n", reset.status().message());
  }
  double cpu0 = proc_cpu_seconds(head_pid);
  auto w0 = std::chrono::steady_clock::now();
  // Failure detection under load: 10 agents go silent mid-window.
  run_for(std::chrono::milliseconds(measure_s * 1000 / 2));
  std::vector<std::size_t> victims;
  for (int k = 0; k < 10; ++k) victims.push_back(static_cast<std::size_t>(k * (num_agents / 10)));
  for (auto v : victims) agents[v].silent = true;
  run_for(std::chrono::milliseconds(measure_s * 1000 / 2));
  double cpu1 = proc_cpu_seconds(head_pid);
  double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  long rss = proc_rss_kib(head_pid);

  std::vector<double> detect_ms;
  for (auto v : victims) {
    if (agents[v].closed_us > 0 && agents[v].last_beat_us > 0) detect_ms.push_back(static_cast<double>(agents[v].closed_us - agents[v].last_beat_us) / 1000.0);
  }
  std::sort(detect_ms.begin(), detect_ms.end());

  // Latency percentiles from the head (its status; big at 10k nodes, so a big frame).
  nlohmann::json stats;
  {
    std::thread pump([&] { run_for(3s); });  // keep agents beating while we ask
    auto st = (*client)->call("cluster.status", nlohmann::json::object(), 30s);
    pump.join();
    if (st.is_ok()) stats = (*st)["stats"];
    int num_dead = 0;
    if (st.is_ok()) {
      for (const auto& n : (*st)["nodes"]) num_dead += n["state"] == "Dead";
    }
    fmt::print("nodes Dead at the end: {} (expected {})\n", num_dead, victims.size());
  }
  nlohmann::json lat = stats.is_object() ? stats.value("heartbeat_latency_us", nlohmann::json::object()) : nlohmann::json::object();
  fmt::print("RESULT agents={} head_cpu_percent={:.1f} head_rss_mib={:.1f} heartbeats={} "
             "hb_latency_p50_us={} hb_latency_p99_us={} detect_ms_min={:.0f} detect_ms_max={:.0f} detected={}/{}\n",
             num_agents, 100.0 * (cpu1 - cpu0) / window, static_cast<double>(rss) / 1024.0,
             stats.is_object() ? stats.value("num_heartbeats", 0) : 0, lat.value("p50", -1), lat.value("p99", -1), detect_ms.empty() ? -1.0 : detect_ms.front(),
             detect_ms.empty() ? -1.0 : detect_ms.back(), detect_ms.size(), victims.size());
  kill(head_pid, SIGKILL);
  waitpid(head_pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
