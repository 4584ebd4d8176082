// The doctor's building blocks: port probing over loopback, model manifests,
// node facts, and a DoctorService answered by check_peers on 127.0.0.1.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "../../netcheck/fake_host_view.h"
#include "runtime/doctor/doctor_service.h"
#include "runtime/doctor/model_manifest.h"
#include "runtime/doctor/node_facts.h"
#include "runtime/doctor/peer_checker.h"
#include "runtime/doctor/port_prober.h"

using namespace llmctl;
using namespace llmctl::doctor;
namespace fs = std::filesystem;

namespace {

// A listening socket on 127.0.0.1:<kernel-chosen port>, closed on destruction.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd, 16);
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
};

fs::path make_model(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const auto& [rel, content] : files) {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel, std::ios::binary) << content;
  }
  return dir;
}

}  // namespace

TEST_CASE("port prober: ok for a listener, refused for a closed port") {
  Listener open;
  int closed_port = 0;
  {
    Listener tmp;
    closed_port = tmp.port;
  }
  auto probes = probe_ports("127.0.0.1", {open.port, closed_port});
  REQUIRE(probes.size() == 2);
  CHECK(probes[0].outcome == ProbeOutcome::kOk);
  CHECK(probes[1].outcome == ProbeOutcome::kRefused);
  CHECK(summarize_probes(probes) .find("1 of 2 ports reachable") != std::string::npos);
  CHECK(summarize_probes(probes).find("1 refused") != std::string::npos);
  CHECK(parse_probe_outcome("timeout") == ProbeOutcome::kTimeout);
  CHECK(probe_ports("not-an-ip", {1})[0].outcome == ProbeOutcome::kError);
}

TEST_CASE("model manifests: sizes, checksums and differences") {
  auto a = make_model("llmctl-model-a", {{"config.json", "{}"}, {"sub/w.bin", "abc"}});
  auto b = make_model("llmctl-model-b", {{"config.json", "{}"}, {"sub/w.bin", "abd"}, {"extra.txt", "x"}});
  auto ma = build_model_manifest(a.string(), true);
  auto mb = build_model_manifest(b.string(), true);
  REQUIRE(ma.is_ok());
  REQUIRE(mb.is_ok());
  REQUIRE(ma->files.size() == 2);
  CHECK(ma->files[1].path == "sub/w.bin");
  CHECK(ma->files[1].size_bytes == 3);
  // sha256("abc") from FIPS 180-2.
  CHECK(ma->files[1].sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto diffs = diff_manifests(*ma, ModelManifest::from_json(mb->to_json()));
  REQUIRE(diffs.size() == 2);
  CHECK(diffs[0].find("sub/w.bin has different content") != std::string::npos);
  CHECK(diffs[1] == "extra extra.txt");
  auto shallow_a = build_model_manifest(a.string(), false);
  auto shallow_b = build_model_manifest(b.string(), false);
  CHECK(diff_manifests(*shallow_a, *shallow_b) == std::vector<std::string>{"extra extra.txt"});
  CHECK_FALSE(build_model_manifest((a / "nope").string(), false).is_ok());
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST_CASE("node facts round-trip and the advertised address avoids loopback") {
  auto host = netcheck::testing::FakeHostView::healthy();
  NodeFacts f = collect_node_facts(host, "", "9.9.9");
  CHECK(f.hostname == "node1");
  CHECK(f.address == "10.0.0.1");
  CHECK(f.llmctl_version == "9.9.9");
  f.listening_ports = {1, 2};
  NodeFacts g = NodeFacts::from_json(f.to_json());
  CHECK(g.address == f.address);
  CHECK(g.listening_ports == f.listening_ports);
  host.dns_["node1"] = {"127.0.1.1"};
  CHECK(advertised_address(host, "") == "10.0.0.1");  // the first non-docker interface
  CHECK(advertised_address(host, "10.9.9.9") == "10.9.9.9");
}

TEST_CASE("check_peers against a DoctorService on loopback") {
  // The real host's resolver and interfaces, but every address is 127.0.0.1.
  netcheck::RealHostView host;
  netcheck::ProbeOptions probe;
  probe.node_name = "me";
  probe.bind_address = "127.0.0.1";
  probe.node_ip = "127.0.0.1";
  // Ports the kernel just handed out, released right before the service binds them.
  std::vector<int> ports;
  {
    std::vector<std::unique_ptr<Listener>> held;
    for (int i = 0; i < 5; ++i) held.push_back(std::make_unique<Listener>());
    for (auto& l : held) ports.push_back(l->port);
  }
  probe.ports.head = ports[0];
  probe.ports.dashboard = ports[1];
  probe.ports.client = ports[2];
  probe.ports.api = ports[3];
  probe.ports.node_range = {ports[4], ports[4]};

  DoctorServiceOptions service_options;
  service_options.probe = probe;
  service_options.token = "tok";
  service_options.version_override = "0.0.1-peer";
  auto service = DoctorService::start(service_options, host);
  REQUIRE(service.is_ok());
  REQUIRE((*service)->summary().has(ports[0]));

  PeerCheckOptions o;
  o.peers = {"127.0.0.1"};
  o.token = "tok";
  o.local = probe;
  auto results = check_peers(host, o, service->get());
  auto find = [&](const std::string& id) -> const netcheck::CheckResult* {
    for (const auto& r : results) {
      if (r.id == id) return &r;
    }
    return nullptr;
  };
  REQUIRE(find("peer.connect") != nullptr);
  CHECK(find("peer.connect")->status == netcheck::CheckStatus::kOk);
  REQUIRE(find("versions.llmctl") != nullptr);
  CHECK(find("versions.llmctl")->status == netcheck::CheckStatus::kFail);  // 0.0.1-peer vs ours
  CHECK(find("clock.offset")->status == netcheck::CheckStatus::kOk);
  CHECK(find("reach.head")->status == netcheck::CheckStatus::kOk);
  CHECK(find("reach.node_range")->status == netcheck::CheckStatus::kOk);
  CHECK(find("reach_back.api")->status == netcheck::CheckStatus::kOk);

  o.token = "wrong";
  auto refused = check_peers(host, o, nullptr);
  REQUIRE(!refused.empty());
  CHECK(refused[0].id == "peer.auth");
  CHECK(refused[0].status == netcheck::CheckStatus::kFail);
  // The listener counts (and logs) the refusal on its own thread.
  for (int i = 0; i < 200 && (*service)->num_auth_failures() == 0; ++i) ::usleep(10000);
  CHECK((*service)->num_auth_failures() == 1);
}
