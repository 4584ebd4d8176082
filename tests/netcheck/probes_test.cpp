// The local probes against scripted machines: each fault must give the right
// check id and status, and the healthy machine none.
#include <doctest/doctest.h>

#include <algorithm>

#include "fake_host_view.h"
#include "netcheck/local_checks.h"
#include "netcheck/probes/gpu_probe.h"
#include "netcheck/probes/hostname_probe.h"
#include "netcheck/probes/interfaces_probe.h"
#include "netcheck/probes/ports_probe.h"
#include "netcheck/probes/system_probe.h"

using namespace llmctl;
using namespace llmctl::netcheck;
using testing::FakeHostView;

namespace {

ProbeOptions default_options() {
  ProbeOptions o;
  o.node_name = "node1";
  o.state_dir = "/var/lib/llmctl";
  return o;
}

const CheckResult* find(const std::vector<CheckResult>& results, const std::string& id) {
  auto it = std::find_if(results.begin(), results.end(), [&](const CheckResult& r) { return r.id == id; });
  return it == results.end() ? nullptr : &*it;
}

CheckStatus status_of(const std::vector<CheckResult>& results, const std::string& id) {
  const CheckResult* r = find(results, id);
  REQUIRE_MESSAGE(r != nullptr, "no result with id " << id);
  return r->status;
}

}  // namespace

TEST_CASE("a healthy node has no failures") {
  FakeHostView host = FakeHostView::healthy();
  auto o = default_options();
  o.peers = {"node2"};
  auto results = run_local_checks(host, o);
  for (const auto& r : results) {
    CHECK_MESSAGE(r.status != CheckStatus::kFail, r.id << ": " << r.message);
    CHECK(r.node == "node1");
  }
  CHECK(status_of(results, "ports.head") == CheckStatus::kOk);
  CHECK(status_of(results, "hostname.loopback") == CheckStatus::kOk);
  CHECK(status_of(results, "gpu.devices") == CheckStatus::kWarn);  // no GPU: CPU node
  // The range is bound port by port: 4 named ports + 2001.
  CHECK(host.num_bind_calls_ == 4 + 2001);
}

TEST_CASE("a taken port names the process holding it from /proc") {
  FakeHostView host = FakeHostView::healthy();
  host.taken_ports_ = {8265};
  // 8265 = 0x2049, listening (0A), inode 777.
  host.files_["/proc/net/tcp"] =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000:2049 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0\n"
      "   1: 0100007F:2049 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0\n";
  host.dirs_["/proc"] = {"1", "4242", "self"};
  host.dirs_["/proc/4242/fd"] = {"0", "3"};
  host.links_["/proc/4242/fd/3"] = "socket:[777]";
  host.links_["/proc/4242/fd/0"] = "/dev/null";
  host.files_["/proc/4242/comm"] = "python3\n";
  auto results = probe_ports(host, default_options());
  const CheckResult* r = find(results, "ports.dashboard");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kFail);
  CHECK(r->message.find("python3 (pid 4242)") != std::string::npos);
  CHECK(r->fix.find("dashboard") != std::string::npos);
  CHECK(status_of(results, "ports.head") == CheckStatus::kOk);
}

TEST_CASE("the node range counts free ports and warns on an ephemeral overlap") {
  FakeHostView host = FakeHostView::healthy();
  for (int p = 30000; p < 30010; ++p) host.taken_ports_.insert(p);
  host.files_["/proc/sys/net/ipv4/ip_local_port_range"] = "20000 40000\n";
  auto results = probe_ports(host, default_options());
  const CheckResult* r = find(results, "ports.node_range");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kWarn);
  CHECK(r->message.find("1991 of 2001") != std::string::npos);
  CHECK(status_of(results, "ports.ephemeral") == CheckStatus::kWarn);
  CHECK(find(results, "ports.ephemeral")->fix.find("ip_local_reserved_ports=30000-32000") != std::string::npos);

  for (int p = 30000; p <= 31500; ++p) host.taken_ports_.insert(p);
  CHECK(status_of(probe_ports(host, default_options()), "ports.node_range") == CheckStatus::kFail);
}

TEST_CASE("hostname mapped to 127.0.1.1 fails with the hosts line and a fix") {
  FakeHostView host = FakeHostView::healthy();
  host.files_["/etc/hosts"] = "127.0.0.1 localhost\n127.0.1.1 node1\n";
  host.dns_["node1"] = {"127.0.1.1"};
  auto results = probe_hostname(host, default_options());
  const CheckResult* r = find(results, "hostname.loopback");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kFail);
  CHECK(r->message.find("line 2") != std::string::npos);
  CHECK(r->fix.find("10.0.0.1 node1") != std::string::npos);
}

TEST_CASE("hostname resolving to a foreign address or nothing fails") {
  FakeHostView host = FakeHostView::healthy();
  host.dns_["node1"] = {"10.9.9.9"};
  CHECK(status_of(probe_hostname(host, default_options()), "hostname.interface") == CheckStatus::kFail);
  host.dns_.erase("node1");
  CHECK(status_of(probe_hostname(host, default_options()), "hostname.resolve") == CheckStatus::kFail);
}

TEST_CASE("an advertised node_ip that is not local fails") {
  FakeHostView host = FakeHostView::healthy();
  auto o = default_options();
  o.node_ip = "10.0.0.99";
  CHECK(status_of(probe_hostname(host, o), "hostname.node_ip") == CheckStatus::kFail);
  o.node_ip = "10.0.0.1";
  CHECK(status_of(probe_hostname(host, o), "hostname.node_ip") == CheckStatus::kOk);
}

TEST_CASE("conflicting and duplicate /etc/hosts entries") {
  FakeHostView host = FakeHostView::healthy();
  host.files_["/etc/hosts"] = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.1 node1\n10.0.0.2 node2\n"
                              "10.0.0.7 node2\n10.0.0.1 node1 # again\n";
  auto results = probe_hostname(host, default_options());
  const CheckResult* c = find(results, "hosts.conflict");
  REQUIRE(c != nullptr);
  CHECK(c->status == CheckStatus::kFail);
  CHECK(c->message.find("node2") != std::string::npos);
  CHECK(c->message.find("node1") == std::string::npos);
  CHECK(status_of(results, "hosts.duplicate") == CheckStatus::kWarn);
}

TEST_CASE("NCCL_SOCKET_IFNAME naming no interface fails; env wins over config") {
  FakeHostView host = FakeHostView::healthy();
  auto o = default_options();
  o.env["NCCL_SOCKET_IFNAME"] = "eth";
  CHECK(status_of(probe_interfaces(host, o), "interfaces.nccl_ifname") == CheckStatus::kOk);
  host.env_["NCCL_SOCKET_IFNAME"] = "ens9";
  auto results = probe_interfaces(host, o);
  const CheckResult* r = find(results, "interfaces.nccl_ifname");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kFail);
  CHECK(r->message.find("ens9") != std::string::npos);
  CHECK(r->fix.find("NCCL_SOCKET_IFNAME=eth0") != std::string::npos);
}

TEST_CASE("GLOO_SOCKET_IFNAME naming a down interface fails") {
  FakeHostView host = FakeHostView::healthy();
  host.interfaces_.push_back({"eth1", false, false, 1500, {{"10.1.0.1", 24, false}}});
  host.env_["GLOO_SOCKET_IFNAME"] = "eth1";
  auto results = probe_interfaces(host, default_options());
  const CheckResult* r = find(results, "interfaces.gloo_ifname");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kFail);
  CHECK(r->message.find("down") != std::string::npos);
}

TEST_CASE("NCCL's default skips docker and lo") {
  FakeHostView host = FakeHostView::healthy();
  auto results = probe_interfaces(host, default_options());
  const CheckResult* r = find(results, "interfaces.nccl_default");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kOk);
  CHECK(r->message.find("eth0") != std::string::npos);
  host.interfaces_.pop_back();  // only lo and docker0 left
  CHECK(status_of(probe_interfaces(host, default_options()), "interfaces.nccl_default") == CheckStatus::kWarn);
}

TEST_CASE("route to a peer from another address than the advertised one warns") {
  FakeHostView host = FakeHostView::healthy();
  host.interfaces_.push_back({"eth1", true, false, 9000, {{"192.168.5.1", 24, false}}});
  auto o = default_options();
  o.peers = {"node2"};
  o.node_ip = "192.168.5.1";
  auto results = probe_interfaces(host, o);
  const CheckResult* r = find(results, "interfaces.route");
  REQUIRE(r != nullptr);
  CHECK(r->status == CheckStatus::kWarn);
  CHECK(r->message.find("eth0") != std::string::npos);
  o.peers = {"node3"};  // does not resolve
  CHECK(status_of(probe_interfaces(host, o), "interfaces.route") == CheckStatus::kFail);
}

TEST_CASE("system limits: small /dev/shm fails, low nofile warns or fails, missing model fails") {
  FakeHostView host = FakeHostView::healthy();
  host.disks_["/dev/shm"] = {64ull << 20, 64ull << 20};
  host.nofile_ = {1024, 524288};
  host.clock_synced_ = false;
  host.dirs_["/proc"] = {"12"};
  host.files_["/proc/12/comm"] = "chronyd\n";
  auto o = default_options();
  o.model_dirs = {"/opt/models/qwen"};
  auto results = probe_system(host, o);
  CHECK(status_of(results, "system.shm") == CheckStatus::kFail);
  CHECK(status_of(results, "system.nofile") == CheckStatus::kWarn);
  CHECK(status_of(results, "system.disk_model") == CheckStatus::kFail);
  CHECK(status_of(results, "system.disk_state") == CheckStatus::kOk);
  const CheckResult* clock = find(results, "system.clock");
  REQUIRE(clock != nullptr);
  CHECK(clock->message.find("chronyd") != std::string::npos);
  host.nofile_ = {1024, 4096};
  CHECK(status_of(probe_system(host, o), "system.nofile") == CheckStatus::kFail);
}

TEST_CASE("GPUs and InfiniBand are reported") {
  FakeHostView host = FakeHostView::healthy();
  host.gpus_.driver_found = true;
  host.gpus_.driver_version = "580.65.06";
  host.gpus_.cuda_driver_version = 13000;
  host.gpus_.devices.push_back({0, "NVIDIA H100 80GB HBM3", "GPU-1", 80ull << 30, 0, 9, 0});
  host.nccl_ = "2.27.3";
  host.dirs_["/sys/class/infiniband"] = {"mlx5_0"};
  auto results = probe_gpu(host, default_options());
  CHECK(status_of(results, "gpu.devices") == CheckStatus::kOk);
  CHECK(find(results, "gpu.versions")->message.find("580.65.06, CUDA 13.0, NCCL 2.27.3") != std::string::npos);
  CHECK(find(results, "gpu.infiniband")->message.find("mlx5_0") != std::string::npos);
}
