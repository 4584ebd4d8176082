#include "runtime/control/cluster_report.h"

#include <doctest/doctest.h>

using namespace llmctl::control;

namespace {

nlohmann::json sample_status() {
  return nlohmann::json::parse(R"({
    "now_ms": 0, "head": {"address": "10.0.0.1:6379", "version": "0.1.0", "dead_after_ms": 1000},
    "nodes": [
      {"node_id": "aa", "name": "lf001", "address": "10.0.0.1", "role": "head", "state": "Active", "version": "0.1.0",
       "resources": {"CPU": 8, "GPU": 1, "node:lf001": 1}, "heartbeat_age_ms": 120, "reason": "",
       "usage": {"cpu_percent": 12.5, "memory_used_bytes": 2147483648, "memory_total_bytes": 8589934592,
                 "gpus": [{"index": 0, "memory_used_bytes": 10737418240, "memory_total_bytes": 85899345920,
                           "utilization_percent": 45}]}},
      {"node_id": "bb", "name": "lf002", "address": "10.0.0.2", "role": "worker", "state": "Dead", "version": "0.1.0",
       "resources": {"CPU": 8, "GPU": 1}, "heartbeat_age_ms": null, "reason": "stopped"}],
    "resources": {"total": {"CPU": 8, "GPU": 1, "node:lf001": 1}, "used": {"GPU": 1}},
    "pending": [{"group_id": "g2", "name": "big", "strategy": "STRICT_SPREAD", "bundles": [{"GPU": 1}, {"GPU": 1}],
                 "reason": "infeasible: STRICT_SPREAD needs 2 distinct nodes"}],
    "groups": [], "failures": [{"time_ms": 0, "what": "node lf003 (cc) at 10.0.0.3 is Dead: missed heartbeats"}]
  })");
}

}  // namespace

TEST_CASE("status text groups nodes by state and shows used/total, demands and failures") {
  std::string s = format_status(sample_status());
  CHECK(s.find("Active:\n 1 node\n  aa lf001 10.0.0.1 (head)") != std::string::npos);
  CHECK(s.find("bb lf002 10.0.0.2 (worker)  reason: stopped") != std::string::npos);
  CHECK(s.find(" 1.0/1.0 GPU") != std::string::npos);
  CHECK(s.find(" 0.0/8.0 CPU") != std::string::npos);
  CHECK(s.find(" 0.0/1.0 node:lf001") != std::string::npos);
  CHECK(s.find("reason: infeasible: STRICT_SPREAD") != std::string::npos);
  CHECK(s.find("missed heartbeats") != std::string::npos);
}

TEST_CASE("nodes table has one row per node with heartbeat age and state") {
  std::string t = format_nodes(sample_status());
  CHECK(t.rfind("NODE_ID", 0) == 0);
  CHECK(t.find("Dead(stopped)") != std::string::npos);
  CHECK(t.find("120ms") != std::string::npos);
  auto j = nodes_json(sample_status());
  REQUIRE(j.size() == 2);
  CHECK(j[0]["resources"]["GPU"] == 1);
}

TEST_CASE("GPU memory and utilisation from heartbeats show in status, nodes text and nodes JSON") {
  std::string s = format_status(sample_status());
  CHECK(s.find("lf001            cpu  12.5%  memory 2.0/8.0GiB  gpu0 45% 10.0/80.0GiB") != std::string::npos);
  std::string t = format_nodes(sample_status());
  CHECK(t.find("GPU_USE") != std::string::npos);
  CHECK(t.find("gpu0 45% 10.0/80.0GiB") != std::string::npos);
  auto j = nodes_json(sample_status());
  CHECK(j[0]["usage"]["gpus"][0]["utilization_percent"] == 45);
  CHECK(j[0]["usage"]["gpus"][0]["memory_used_bytes"] == 10737418240ULL);
  // A node without GPUs (or a Dead one without usage) shows "-".
  CHECK(t.find("Dead(stopped)") != std::string::npos);
}
