#include "runtime/control/state_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

using namespace llmctl::control;

namespace {

std::string temp_dir() {
  std::string d = std::filesystem::temp_directory_path() / ("llmctl-statelog-" + std::to_string(::getpid()) + "-" +
                                                           std::to_string(std::rand()));
  std::filesystem::remove_all(d);
  return d;
}

NodeRecord make_node(const std::string& id) {
  NodeRecord n;
  n.node_id = id;
  n.name = "host-" + id;
  n.address = "10.0.0." + id;
  n.resources = {{"GPU", 1}, {"CPU", 8}};
  return n;
}

}  // namespace

TEST_CASE("records appended survive a reopen: nodes, KV, groups, failures") {
  std::string dir = temp_dir();
  {
    ClusterState s;
    auto log = StateLog::open(dir, &s, nullptr);
    REQUIRE(log.is_ok());
    for (auto r : {node_record(make_node("1")), node_record(make_node("2")), kv_put_record("rdv/a", "x"),
                   kv_put_record("rdv/b", "y"), kv_put_record("other", "z"), kv_delete_record("rdv/"),
                   failure_record(5, "node 2 died")}) {
      REQUIRE((*log)->append(r).is_ok());
      REQUIRE(s.apply(r).is_ok());
    }
  }
  ClusterState s;
  RecoveryStats stats;
  auto log = StateLog::open(dir, &s, &stats);
  REQUIRE(log.is_ok());
  CHECK(stats.num_records_replayed == 7);
  CHECK(s.nodes.size() == 2);
  CHECK(s.nodes.at("2").address == "10.0.0.2");
  CHECK(s.kv == std::map<std::string, std::string>{{"other", "z"}});
  CHECK(s.failures.size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a torn or corrupt tail is cut off and earlier records kept") {
  std::string dir = temp_dir();
  {
    ClusterState s;
    auto log = StateLog::open(dir, &s, nullptr);
    REQUIRE((*log)->append(kv_put_record("a", "1")).is_ok());
    REQUIRE((*log)->append(kv_put_record("b", "2")).is_ok());
  }
  {
    std::ofstream out(dir + "/state.log", std::ios::app);
    out << "0123456789abcdef {\"op\":\"kv_put\",\"key\":\"c\",\"value\":\"3\"}\n";  // wrong checksum
    out << "{\"op\":\"kv_put\"";                                                  // torn, no newline
  }
  ClusterState s;
  RecoveryStats stats;
  auto log = StateLog::open(dir, &s, &stats);
  REQUIRE(log.is_ok());
  CHECK(stats.num_records_replayed == 2);
  CHECK(stats.num_bytes_discarded > 0);
  CHECK(s.kv.size() == 2);
  // The log is usable after the cut: a new record follows the good ones.
  REQUIRE((*log)->append(kv_put_record("d", "4")).is_ok());
  log.value().reset();
  ClusterState s2;
  REQUIRE(StateLog::open(dir, &s2, nullptr).is_ok());
  CHECK(s2.kv.count("d") == 1);
  CHECK(s2.kv.count("c") == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a snapshot replaces the log and recovery combines snapshot and later records") {
  std::string dir = temp_dir();
  {
    ClusterState s;
    auto log = StateLog::open(dir, &s, nullptr);
    for (int i = 0; i < 10; ++i) {
      auto r = kv_put_record("k" + std::to_string(i), "v");
      REQUIRE((*log)->append(r).is_ok());
      REQUIRE(s.apply(r).is_ok());
    }
    REQUIRE((*log)->snapshot(s).is_ok());
    CHECK((*log)->num_records_since_snapshot() == 0);
    CHECK(std::filesystem::file_size(dir + "/state.log") == 0);
    auto r = node_record(make_node("9"));
    REQUIRE((*log)->append(r).is_ok());
  }
  ClusterState s;
  RecoveryStats stats;
  REQUIRE(StateLog::open(dir, &s, &stats).is_ok());
  CHECK(stats.had_snapshot);
  CHECK(stats.num_records_replayed == 1);
  CHECK(s.kv.size() == 10);
  CHECK(s.nodes.count("9") == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("apply rejects malformed records with a message, never crashes") {
  ClusterState s;
  CHECK_FALSE(s.apply(nlohmann::json::array()).is_ok());
  CHECK_FALSE(s.apply({{"op", "nope"}}).is_ok());
  CHECK_FALSE(s.apply({{"op", "kv_put"}, {"key", 3}}).is_ok());
  CHECK_FALSE(s.apply({{"op", "node"}, {"node", {{"node_id", ""}}}}).is_ok());
  CHECK_FALSE(s.apply({{"op", "group"}, {"group", {{"group_id", "g1"}, {"strategy", "WEIRD"}, {"bundles", nlohmann::json::array()}}}}).is_ok());
}

TEST_CASE("group ids keep increasing across replay") {
  ClusterState s;
  GroupRecord g;
  g.group_id = "g7";
  REQUIRE(s.apply(group_record(g)).is_ok());
  CHECK(s.next_group_seq == 8);
  auto round = ClusterState::from_json(s.to_json());
  REQUIRE(round.is_ok());
  CHECK(round->next_group_seq == 8);
  CHECK(round->groups.count("g7") == 1);
}
