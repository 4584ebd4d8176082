// The parsers under the probes: /etc/hosts, /proc/net/tcp, NCCL's interface syntax, the reports.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "netcheck/hosts_file.h"
#include "netcheck/interface_selector.h"
#include "netcheck/report/report_json.h"
#include "netcheck/report/report_table.h"
#include "netcheck/socket_owner.h"

using namespace llmctl::netcheck;

TEST_CASE("hosts file: comments, aliases, case-insensitive lookup") {
  auto hosts = HostsFile::parse("# c\n127.0.0.1 localhost\n\n10.0.0.1  LF001 lf001.lan # head\n10.0.0.2\n");
  REQUIRE(hosts.entries().size() == 2);
  auto found = hosts.lookup("lf001");
  REQUIRE(found.size() == 1);
  CHECK(found[0]->line == 4);
  CHECK(found[0]->address == "10.0.0.1");
  CHECK(hosts.lookup("lf001.lan").size() == 1);
  CHECK(hosts.lookup("lf002").empty());
}

TEST_CASE("/proc/net/tcp: only listening sockets, ports in hex") {
  auto found = parse_proc_net_tcp_listeners(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0\n"
      "   1: 0100007F:18EB 0100007F:D000 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0\n"
      "   2: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 333 1\n"
      "garbage\n");
  CHECK(found.count(6379) == 1);
  CHECK(found.find(6379)->second == "111");
  CHECK(found.count(8000) == 1);
  CHECK(found.size() == 2);
}

TEST_CASE("NCCL interface syntax: prefixes, ^exclusion, =exact") {
  CHECK(InterfaceSelector::parse_nccl("eth").matches("eth0"));
  CHECK_FALSE(InterfaceSelector::parse_nccl("eth").matches("ens5"));
  CHECK(InterfaceSelector::parse_nccl("eth,ens").matches("ens5"));
  CHECK(InterfaceSelector::parse_nccl("=eth0").matches("eth0"));
  CHECK_FALSE(InterfaceSelector::parse_nccl("=eth0").matches("eth01"));
  CHECK_FALSE(InterfaceSelector::parse_nccl("^docker,lo").matches("docker0"));
  CHECK_FALSE(InterfaceSelector::parse_nccl("^docker,lo").matches("lo"));
  CHECK(InterfaceSelector::parse_nccl("^docker,lo").matches("eth0"));
  CHECK(InterfaceSelector::parse_nccl("^=eth1").matches("eth10"));
  CHECK_FALSE(InterfaceSelector::parse_nccl("^=eth1").matches("eth1"));
  CHECK_FALSE(InterfaceSelector::parse_exact_list("eth0,eth1").matches("eth"));
  CHECK(InterfaceSelector::parse_exact_list("eth0, eth1").matches("eth1"));

  std::vector<NetInterface> ifs = {{"lo", true, true, 65536, {{"127.0.0.1", 8, false}}},
                                   {"docker0", true, false, 1500, {{"172.17.0.1", 16, false}}},
                                   {"eth0", false, false, 1500, {{"10.0.0.1", 24, false}}},
                                   {"ib0", true, false, 2044, {{"10.1.0.1", 24, false}}}};
  REQUIRE(nccl_default_interface(ifs) != nullptr);
  CHECK(nccl_default_interface(ifs)->name == "ib0");
  ifs.pop_back();
  CHECK(nccl_default_interface(ifs)->name == "docker0");  // eth0 is down
}

TEST_CASE("reports: table groups by node, JSON has the documented shape") {
  std::vector<CheckResult> results = {{"a", "ports.head", CheckStatus::kOk, "free", ""},
                                      {"b", "reach.head", CheckStatus::kFail, "timeout", "open it"},
                                      {"a", "gpu.devices", CheckStatus::kWarn, "none", "install"}};
  std::string table = render_table(results, false);
  CHECK(table.find("a\n  ok    ports.head") != std::string::npos);
  CHECK(table.find("fix: open it") != std::string::npos);
  CHECK(table.find("1 ok, 1 warn, 1 fail, 0 skip") != std::string::npos);
  CHECK(table.find("gpu.devices") < table.find("\nb\n"));  // a's lines stay together
  auto doc = nlohmann::json::parse(render_json(results));
  CHECK(doc["checks"].size() == 3);
  CHECK(doc["checks"][1]["node"] == "b");
  CHECK(doc["checks"][1]["status"] == "fail");
  CHECK(doc["checks"][1]["fix"] == "open it");
  CHECK(doc["summary"]["fail"] == 1);
  CHECK(doc["summary"]["ok"] == 1);
}
