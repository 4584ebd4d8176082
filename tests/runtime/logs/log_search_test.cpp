// Log search over real files in a scratch state dir: the same files the head,
// agents and supervised children write.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/logs/log_search.h"

namespace fs = std::filesystem;
using namespace llmctl::logs;

namespace {

struct ScratchDir {
  fs::path root;
  ScratchDir() {
    root = fs::temp_directory_path() / fmt::format("llmctl-logs-test-{}-{}", ::getpid(), counter()++);
    fs::create_directories(root / "logs");
    fs::create_directories(root / "bundles");
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  void append(const std::string& rel, const std::string& text) const {
    std::ofstream f(root / rel, std::ios::app | std::ios::binary);
    f << text;
  }
};

std::string line(const std::string& time, const std::string& level, const std::string& comp, const std::string& msg) {
  return fmt::format("{} {:<5} [{}] node=h1 pid=42 {}\n", time, level, comp, msg);
}

std::vector<std::string> messages(const LogSearchResult& r) {
  std::vector<std::string> m;
  for (const auto& rec : r.records) m.push_back(rec.message);
  return m;
}

}  // namespace

TEST_CASE("a line in llmctl's format parses into its fields") {
  LogRecord r;
  REQUIRE(parse_log_line("2026-11-28 06:01:02.345 warn  [agent] node=lf002 pid=4242 joined head 10.0.0.1:6379", r));
  CHECK(r.level == LogLevel::kWarn);
  CHECK(r.component == "agent");
  CHECK(r.node == "lf002");
  CHECK(r.pid == 4242);
  CHECK(r.message == "joined head 10.0.0.1:6379");
  CHECK(format_log_time(r.time_ms) == "2026-11-28 06:01:02.345");
  CHECK_FALSE(parse_log_line("NCCL INFO Bootstrap : Using eth0:10.0.0.2<0>", r));
  CHECK_FALSE(parse_log_line("2026-13-28 06:01:02.345 info  [agent] x", r));
  CHECK_FALSE(parse_log_line("2026-11-28 06:01:02.345 loud  [agent] x", r));
}

TEST_CASE("times: durations before now and absolute times; bad ones name the flag") {
  int64_t now = *parse_log_time("2026-11-28 12:00:00.000");
  CHECK(*parse_time_spec("10m", now, "--since") == *parse_log_time("2026-11-28 11:50:00.000"));
  CHECK(*parse_time_spec("2h", now, "--since") == *parse_log_time("2026-11-28 10:00:00.000"));
  CHECK(*parse_time_spec("2026-11-27T23:59:59", now, "--since") == *parse_log_time("2026-11-27 23:59:59.000"));
  CHECK(*parse_time_spec("06:30:00", now, "--until") == *parse_log_time("2026-11-28 06:30:00.000"));
  auto bad = parse_time_spec("ten minutes", now, "--since");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("--since 'ten minutes'") != std::string::npos);
  // Dates round-trip across month, year and leap-day boundaries.
  for (const char* t : {"2024-02-29 23:59:59.999", "1999-12-31 00:00:00.000", "2027-01-01 00:00:00.001"})
    CHECK(format_log_time(*parse_log_time(t)) == t);
}

TEST_CASE("grep, level, component and time filters; merge by time across files") {
  ScratchDir d;
  d.append("logs/head.log", line("2026-11-28 06:00:01.000", "info", "head", "head started") +
                                line("2026-11-28 06:00:05.000", "warn", "head", "node lf002 missed a heartbeat") +
                                line("2026-11-28 06:00:09.000", "error", "head", "node lf002 is Dead"));
  d.append("logs/agent.log", line("2026-11-28 06:00:02.000", "info", "agent", "joined head") +
                                 line("2026-11-28 06:00:06.000", "info", "agent", "bundle pg1[0] started"));
  d.append("bundles/pg1-0.err",
           line("2026-11-28 06:00:07.000", "info", "job/pg1-0", "[Gloo] Connection refused to 10.0.0.3:30001") +
               "    at rendezvous (continuation without a time)\n");

  LogQuery q;
  auto all = search_logs(d.root.string(), "lf001", q);
  REQUIRE(all.is_ok());
  REQUIRE(all.value().records.size() == 7);
  CHECK(messages(all.value()).front() == "head started");
  CHECK(all.value().records[1].component == "agent");
  CHECK(all.value().records[4].component == "job/pg1-0");
  CHECK(all.value().records[4].node == "lf001");  // the cluster's name for the node wins
  CHECK(all.value().records[4].file == "bundles/pg1-0.err");
  // The continuation line sorts with the line before it.
  CHECK(all.value().records[5].message == "    at rendezvous (continuation without a time)");
  CHECK(all.value().records.back().message == "node lf002 is Dead");

  q.grep = "Gloo";
  auto gloo = search_logs(d.root.string(), "lf001", q);
  REQUIRE(gloo.is_ok());
  REQUIRE(gloo.value().records.size() == 1);
  CHECK(gloo.value().records[0].component == "job/pg1-0");

  q.grep = "gloo";
  CHECK(search_logs(d.root.string(), "lf001", q).value().records.empty());
  q.ignore_case = true;
  CHECK(search_logs(d.root.string(), "lf001", q).value().records.size() == 1);

  LogQuery lv;
  lv.min_level = LogLevel::kWarn;
  CHECK(messages(search_logs(d.root.string(), "", lv).value()) ==
        std::vector<std::string>{"node lf002 missed a heartbeat", "node lf002 is Dead"});

  LogQuery comp;
  comp.components = {"job"};
  CHECK(search_logs(d.root.string(), "", comp).value().records.size() == 2);
  comp.components = {"agent"};
  CHECK(messages(search_logs(d.root.string(), "", comp).value()) ==
        std::vector<std::string>{"joined head", "bundle pg1[0] started"});

  LogQuery window;
  window.since_ms = *parse_log_time("2026-11-28 06:00:05.000");
  window.until_ms = *parse_log_time("2026-11-28 06:00:06.500");
  CHECK(messages(search_logs(d.root.string(), "", window).value()) ==
        std::vector<std::string>{"node lf002 missed a heartbeat", "bundle pg1[0] started"});

  LogQuery tail;
  tail.tail = 2;
  auto t = search_logs(d.root.string(), "", tail).value();
  CHECK(messages(t) == std::vector<std::string>{"    at rendezvous (continuation without a time)", "node lf002 is Dead"});

  LogQuery capped;
  capped.max_lines = 3;
  auto c = search_logs(d.root.string(), "", capped).value();
  CHECK(c.records.size() == 3);
  CHECK(c.truncated);
  CHECK(messages(c).front() == "head started");
}

TEST_CASE("a daemon's .out adds only what its logger did not write; agent/bundles is searched") {
  ScratchDir d;
  std::string logged = line("2026-11-28 06:00:01.000", "info", "agent", "joined head");
  d.append("logs/agent.log", logged);
  d.append("logs/agent.out", logged + "terminate called after throwing an instance of 'std::bad_alloc'\n");
  fs::create_directories(d.root / "agent/bundles");
  d.append("agent/bundles/pg3-0.err", line("2026-11-28 06:00:02.000", "info", "job/pg3-0", "NCCL WARN peer closed"));
  auto r = search_logs(d.root.string(), "", LogQuery{}).value();
  REQUIRE(r.records.size() == 3);
  CHECK(r.records[0].message == "joined head");
  CHECK(r.records[0].file == "logs/agent.log");
  CHECK(r.records[1].message == "terminate called after throwing an instance of 'std::bad_alloc'");
  CHECK(r.records[1].file == "logs/agent.out");
  CHECK(r.records[2].component == "job/pg3-0");
  CHECK(r.records[2].file == "agent/bundles/pg3-0.err");
}

TEST_CASE("a bad pattern is an error naming it") {
  ScratchDir d;
  LogQuery q;
  q.grep = "Gloo(";
  auto r = search_logs(d.root.string(), "", q);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("--grep 'Gloo('") != std::string::npos);
}

TEST_CASE("--since seeks into a large file and finds exactly the lines after it") {
  ScratchDir d;
  std::string big;
  int64_t t0 = *parse_log_time("2026-11-28 00:00:00.000");
  for (int i = 0; i < 50000; ++i)
    big += line(format_log_time(t0 + i * 100), "info", "engine", fmt::format("step {}", i));
  d.append("logs/engine.log", big);
  LogQuery q;
  q.since_ms = t0 + 49990 * 100;
  auto r = search_logs(d.root.string(), "", q).value();
  REQUIRE(r.records.size() == 10);
  CHECK(r.records.front().message == "step 49990");
  CHECK(r.bytes_scanned < big.size() / 100);  // it seeked rather than read everything
  q.grep = "step 4999[0-9]";
  CHECK(search_logs(d.root.string(), "", q).value().records.size() == 10);
}

TEST_CASE("follow: appended lines, new files and rotation are seen; old lines are not") {
  ScratchDir d;
  d.append("logs/head.log", line("2026-11-28 06:00:01.000", "info", "head", "Gloo old line"));
  LogQuery q;
  q.grep = "Gloo";
  auto f = LogFollower::create(d.root.string(), "lf001", q);
  REQUIRE(f.is_ok());
  CHECK(f.value().poll().empty());
  d.append("logs/head.log", line("2026-11-28 06:00:02.000", "info", "head", "Gloo new line") + "no match\n");
  d.append("bundles/pg2-1.err", "Gloo partial");  // no newline yet: not a line
  auto got = f.value().poll();
  REQUIRE(got.size() == 1);
  CHECK(got[0].message == "Gloo new line");
  d.append("bundles/pg2-1.err", " written in two parts\n");
  got = f.value().poll();
  REQUIRE(got.size() == 1);
  CHECK(got[0].message == "Gloo partial written in two parts");
  CHECK(got[0].component == "job/pg2-1");
  // Rotation: the file is replaced by a new, shorter one.
  fs::rename(d.root / "logs/head.log", d.root / "logs/head.1.log");
  d.append("logs/head.log", line("2026-11-28 06:00:03.000", "info", "head", "Gloo after rotation"));
  got = f.value().poll();
  REQUIRE(got.size() == 1);
  CHECK(got[0].message == "Gloo after rotation");
}

TEST_CASE("queries and records survive a JSON round trip (what travels to agents)") {
  LogQuery q;
  q.grep = "NCCL";
  q.nodes = {"a", "b"};
  q.components = {"job"};
  q.min_level = LogLevel::kWarn;
  q.since_ms = 5;
  q.tail = 7;
  auto back = log_query_from_json(to_json(q));
  REQUIRE(back.is_ok());
  CHECK(back.value().grep == "NCCL");
  CHECK(back.value().nodes == q.nodes);
  CHECK(back.value().min_level == LogLevel::kWarn);
  CHECK(back.value().since_ms == 5);
  CHECK_FALSE(back.value().until_ms.has_value());
  CHECK(back.value().tail == 7);
  CHECK_FALSE(log_query_from_json(nlohmann::json{{"min_level", "loud"}}).is_ok());
  CHECK_FALSE(log_record_from_json(nlohmann::json::array()).is_ok());
}
